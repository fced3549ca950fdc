"""``build_smsc_definitions``: the whole product — assets, checks, job and schedule — for one account."""


import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from .assets import build_delivery_assets, build_history_asset
from .checks import build_delivery_checks, build_history_checks
from .io_manager import IO_MANAGER_KEY, io_manager_for
from .resource import SMSCResource
from .storage import PartitionStore
from .warehouse import HISTORY_TABLES

REFRESH_JOB = "smsc_refresh"
SCHEDULE_CRON = "30 5 * * *"  # early morning in the partitions' zone: yesterday is over, today has barely begun


def build_smsc_definitions(
    *,
    start_date: str | dt.date,
    timezone: str = "Asia/Almaty",
    data_dir: str,
    channels: Sequence[str] = ("sms",),
    lookback_days: int = 3,
    resource: SMSCResource | None = None,
    key_prefix: Sequence[str] = ("smsc",),
    schedule_cron: str = SCHEDULE_CRON,
) -> dg.Definitions:
    """Everything needed to keep one SMSC account's history and delivery tables in Dagster.

    Args:
        start_date: first day of history (``YYYY-MM-DD``), the first partition.
        timezone: the zone whose local days are the partitions, and the schedule's zone.
        data_dir: where Parquet partitions and ``warehouse.duckdb`` live.
        channels: ``"sms"`` and/or ``"email"``.
        lookback_days: how many recent days the daily schedule re-reads while statuses settle (SMSC statuses
            keep changing for about two days).
        resource: the account; default reads ``SMSC_*`` environment variables (see ``definitions.py``).
        key_prefix: asset key prefix.
        schedule_cron: when the refresh runs, in ``timezone``.

    Example:
        .. code-block:: python

            import dagster as dg
            from smsc_dagster import SMSCResource, build_smsc_definitions

            defs = build_smsc_definitions(
                start_date="2026-01-01",
                data_dir="/srv/smsc",
                resource=SMSCResource(api_key=dg.EnvVar("SMSC_API_KEY")),
            )
    """
    start = dt.date.fromisoformat(start_date) if isinstance(start_date, str) else start_date
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"timezone {timezone!r} is not an IANA time zone (e.g. 'Asia/Almaty')") from None
    unknown = [c for c in channels if c not in HISTORY_TABLES]
    if unknown or not channels:
        raise ValueError(f"channels must be a non-empty subset of {sorted(HISTORY_TABLES)}, got {list(channels)}")
    if lookback_days < 1:
        raise ValueError(f"lookback_days must be at least 1, got {lookback_days}")
    data_dir = str(Path(data_dir).resolve())
    partitions_def = dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone=timezone)

    history = [
        build_history_asset(channel=c, partitions_def=partitions_def, data_dir=data_dir, key_prefix=key_prefix)
        for c in channels
    ]
    delivery = build_delivery_assets(
        history_keys=[a.key for a in history],
        channels=channels,
        partitions_def=partitions_def,
        data_dir=data_dir,
        key_prefix=key_prefix,
    )
    checks = [
        check
        for asset, channel in zip(history, channels)
        for check in build_history_checks(
            history_key=asset.key, store=PartitionStore(data_dir, HISTORY_TABLES[channel])
        )
    ]
    checks += build_delivery_checks(delivery_key=delivery[0].key, channels=channels, data_dir=data_dir)

    refresh_job = dg.define_asset_job(
        REFRESH_JOB,
        selection=dg.AssetSelection.assets(*history, *delivery),
        description=(
            "Re-read a range of history partitions in one paging walk, recompute delivery_daily for them, then "
            "rebuild the rollups: run it with a partition range (the schedule does)."
        ),
    )
    rollup_job = dg.define_asset_job(
        "smsc_rollups",
        selection=dg.AssetSelection.assets(*delivery[1:]),
        description="Rebuild delivery_by_operator and delivery_by_country over every loaded day.",
    )

    @dg.schedule(
        name="smsc_daily_refresh",
        job=refresh_job,
        cron_schedule=schedule_cron,
        execution_timezone=timezone,
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

    rollup_keys = {a.key for a in delivery[1:]}

    @dg.run_status_sensor(
        name="smsc_rollups_after_refresh",
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
        if delivery[0].key not in materialized or rollup_keys <= materialized:
            return dg.SkipReason("the run did not rewrite delivery_daily, or rebuilt the rollups itself")
        backfill_id = context.dagster_run.tags.get("dagster/backfill")
        backfill = context.instance.get_backfill(backfill_id) if backfill_id else None
        if backfill is not None and rollup_keys <= set(backfill.asset_selection or ()):
            return dg.SkipReason("the rollups are part of the same backfill, which rebuilds them in a run of their own")
        return dg.RunRequest(run_key=f"rollups-after-{context.dagster_run.run_id}")

    return dg.Definitions(
        assets=[*history, *delivery],
        asset_checks=checks,
        jobs=[refresh_job, rollup_job],
        schedules=[daily_refresh],
        sensors=[rollups_after_refresh],
        resources={"smsc": resource or SMSCResource.from_env(), IO_MANAGER_KEY: io_manager_for(data_dir)},
    )
