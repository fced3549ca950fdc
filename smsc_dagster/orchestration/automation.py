"""Jobs, the daily refresh schedule and the rollup sensor of one account."""


import datetime as dt
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from .translator import AccountNames

SCHEDULE_CRON = "30 5 * * *"  # early morning in the partitions' zone: yesterday is over, today has barely begun
AUDIT_CRON = "0 4 * * 0"  # Sunday night, before the morning refresh


def build_jobs(
    *,
    names: AccountNames,
    refresh_assets: Sequence[dg.AssetsDefinition],
    rollup_assets: Sequence[dg.AssetsDefinition],
) -> tuple[UnresolvedAssetJobDefinition, UnresolvedAssetJobDefinition]:
    """The refresh job (history, the per-day tables and the all-days tables of a partition range) and the
    rollup job (the all-days tables only)."""
    refresh = dg.define_asset_job(
        names.refresh_job,
        selection=dg.AssetSelection.assets(*refresh_assets, *rollup_assets),
        description=(
            "Re-read a range of history partitions in one paging walk, recompute delivery_daily and the daily "
            "marts for them, then rebuild the rollups: run it with a partition range (the schedule does)."
        ),
    )
    rollups = dg.define_asset_job(
        names.rollup_job,
        selection=dg.AssetSelection.assets(*rollup_assets),
        description="Rebuild the tables over every loaded day (delivery_by_operator, _country, _sender).",
    )
    return refresh, rollups


def build_refresh_schedule(
    *,
    names: AccountNames,
    job: UnresolvedAssetJobDefinition,
    partitions_def: dg.DailyPartitionsDefinition,
    start: dt.date,
    lookback_days: int,
    cron: str,
) -> dg.ScheduleDefinition:
    """Every morning, one run over the last ``lookback_days`` complete days."""

    @dg.schedule(
        name=names.schedule,
        job=job,
        cron_schedule=cron,
        execution_timezone=partitions_def.timezone,
        description=(
            f"Every morning, re-read the last {lookback_days} days as one run with one paging walk, while "
            "statuses settle; the rollups follow when it succeeds."
        ),
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        keys = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason(f"no complete day since {start} yet")
        first, last = keys[max(0, len(keys) - lookback_days)], keys[-1]
        return dg.RunRequest(
            run_key=f"refresh-{first}-{last}",
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
        )

    return daily_refresh


def build_rollup_sensor(
    *,
    names: AccountNames,
    rollup_job: UnresolvedAssetJobDefinition,
    delivery_key: dg.AssetKey,
    rollup_keys: set[dg.AssetKey],
) -> dg.SensorDefinition:
    """After any successful run that rewrote ``delivery_daily`` without the rollups, rebuild them."""

    @dg.run_status_sensor(
        name=names.rollup_sensor,
        run_status=dg.DagsterRunStatus.SUCCESS,
        request_job=rollup_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "After any successful run that rewrote delivery_daily (the schedule's refresh, a backfill launched "
            "from the UI), rebuild the rollups over every loaded day."
        ),
    )
    def rollups_after_refresh(context: dg.RunStatusSensorContext) -> dg.RunRequest | dg.SkipReason:
        records = context.instance.get_records_for_run(
            run_id=context.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=100_000
        ).records
        materialized = {r.event_log_entry.dagster_event.asset_key for r in records if r.event_log_entry.dagster_event}
        if delivery_key not in materialized or rollup_keys <= materialized:
            return dg.SkipReason("the run did not rewrite delivery_daily, or rebuilt the rollups itself")
        backfill_id = context.dagster_run.tags.get("dagster/backfill")
        backfill = context.instance.get_backfill(backfill_id) if backfill_id else None
        if backfill is not None and rollup_keys <= set(backfill.asset_selection or ()):
            return dg.SkipReason("the rollups are part of the same backfill, which rebuilds them in a run of their own")
        return dg.RunRequest(run_key=f"rollups-after-{context.dagster_run.run_id}")

    return rollups_after_refresh


def build_audit(
    *,
    names: AccountNames,
    audit_checks: Sequence[dg.AssetChecksDefinition],
    timezone: str,
    cron: str = AUDIT_CRON,
) -> tuple[UnresolvedAssetJobDefinition, dg.ScheduleDefinition]:
    """The audit job (the whole-history checks only, no request to SMSC) and its weekly schedule."""
    job = dg.define_asset_job(
        names.audit_job,
        selection=dg.AssetSelection.checks(*audit_checks),
        description=(
            "Whole-history audit: an int_id stored in two partitions, a day damaged after it was written, "
            "delivery_daily drifting from the history. Reads every stored partition with a memory cap; spends "
            "no SMSC request."
        ),
    )
    schedule = dg.ScheduleDefinition(
        name=names.audit_schedule,
        job=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        description="Once a week, the whole-history audit (the daily runs check only the days they wrote).",
    )
    return job, schedule
