"""Jobs, the daily refresh schedule and the rollup sensor of one account."""


import datetime as dt
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from smsc_dagster.storage import PartitionStore

from .translator import AccountNames

SCHEDULE_CRON = "30 5 * * *"  # early morning in the partitions' zone: yesterday is over, today has barely begun
AUDIT_CRON = "0 4 * * 0"  # Sunday night, before the morning refresh


def build_jobs(
    *,
    names: AccountNames,
    refresh_assets: Sequence[dg.AssetsDefinition],
    rollup_assets: Sequence[dg.AssetsDefinition],
    audit_checks: Sequence[dg.AssetChecksDefinition] = (),
) -> tuple[UnresolvedAssetJobDefinition, UnresolvedAssetJobDefinition]:
    """The refresh job (history, the per-day tables and the all-days tables of a partition range, with their
    run checks) and the rollup job (the all-days tables only). The whole-history audit checks are left to the
    audit job: selecting an asset would otherwise pull in every check on it, and the daily run would read the
    whole history every morning."""
    audit = dg.AssetSelection.checks(*audit_checks) if audit_checks else None

    def without_audit(selection: dg.AssetSelection) -> dg.AssetSelection:
        return selection - audit if audit is not None else selection

    refresh = dg.define_asset_job(
        names.refresh_job,
        selection=without_audit(dg.AssetSelection.assets(*refresh_assets, *rollup_assets)),
        description=(
            "Re-read a range of history partitions in one paging walk, recompute delivery_daily and the daily "
            "marts for them, then rebuild the rollups: run it with a partition range (the schedule does)."
        ),
    )
    rollups = dg.define_asset_job(
        names.rollup_job,
        selection=without_audit(dg.AssetSelection.assets(*rollup_assets)),
        description="Rebuild the tables over every loaded day (delivery_by_operator, _country, _sender).",
    )
    return refresh, rollups


def unsettled_blocks(
    keys: Sequence[str], stores: Sequence[PartitionStore], timezone: str, lifetime_s: float
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The runs a refresh of ``keys`` needs: contiguous blocks of days that are not settled in every
    channel, and for each skipped day why (``{day: reason}``)."""
    blocks: list[tuple[str, str]] = []
    skipped: dict[str, str] = {}
    for key in keys:
        day = dt.date.fromisoformat(key)
        states = [store.settlement(day, timezone, lifetime_s) for store in stores]
        if all(s.settled for s in states):
            skipped[key] = "settled: no pending message, read after the message lifetime"
            continue
        if blocks and blocks[-1][1] == (day - dt.timedelta(days=1)).isoformat():
            blocks[-1] = (blocks[-1][0], key)
        else:
            blocks.append((key, key))
    return blocks, skipped


def build_refresh_schedule(
    *,
    names: AccountNames,
    job: UnresolvedAssetJobDefinition,
    partitions_def: dg.DailyPartitionsDefinition,
    start: dt.date,
    lookback_days: int,
    cron: str,
    stores: Sequence[PartitionStore] = (),
    lifetime_s: float = 24 * 3600.0,
) -> dg.ScheduleDefinition:
    """Every morning, the unsettled days among the last ``lookback_days`` complete days: one run per
    contiguous block (usually one), and never a settled day."""

    @dg.schedule(
        name=names.schedule,
        job=job,
        cron_schedule=cron,
        execution_timezone=partitions_def.timezone,
        description=(
            f"Every morning, re-read the days among the last {lookback_days} that are not settled yet (a day is "
            f"settled when it holds no pending message and was read more than {lifetime_s / 3600:g} h after it "
            "ended), as one run with one paging walk per contiguous block; the rollups follow."
        ),
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
        keys = partitions_def.get_partition_keys(current_time=context.scheduled_execution_time)
        if not keys:
            return dg.SkipReason(f"no complete day since {start} yet")
        window = keys[max(0, len(keys) - lookback_days):]
        blocks, skipped = unsettled_blocks(window, stores, partitions_def.timezone, lifetime_s)
        for day, reason in skipped.items():
            context.log.info(f"{names.schedule}: not re-reading {day}: {reason}")
        if not blocks:
            return dg.SkipReason(f"every day of {window[0]}..{window[-1]} is settled")
        return [
            dg.RunRequest(
                run_key=f"refresh-{first}-{last}",
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            )
            for first, last in blocks
        ]

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
