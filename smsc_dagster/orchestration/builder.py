"""``build_smsc_definitions``: the whole product — assets, checks, jobs, schedule and sensor — for one
account; several calls (one per account) merge into one code location."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence

import dagster as dg
from dagster._utils.schedules import is_valid_cron_string

from smsc_dagster.core import Channel, SMSCConfigError, check_timezone, parse_channels, parse_date
from smsc_dagster.storage import ROLLUPS, Layout, Privacy, check_account

from .assets import build_delivery_assets, build_history_asset, build_mart_assets
from .automation import SCHEDULE_CRON, build_audit, build_jobs, build_refresh_schedule, build_rollup_sensor
from .checks import build_audit_checks, build_delivery_checks, build_history_checks, build_rollup_checks
from .io_manager import SMSCTablesIOManager
from .resource import SMSCResource
from .translator import AccountNames, SMSCTranslator


def check_lookback_days(value: object, *, setting: str = "lookback_days") -> int:
    """A lookback of at least one day, or an :class:`SMSCConfigError` naming ``setting``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SMSCConfigError(f"{setting} must be a whole number of days, at least 1, got {value!r}")
    return value


def check_cron(value: object, *, setting: str = "schedule_cron") -> str:
    if not isinstance(value, str) or not is_valid_cron_string(value):
        raise SMSCConfigError(f"{setting} must be a cron expression such as '30 5 * * *', got {value!r}")
    return value


def _setting(check, value, setting):
    try:
        return check(value, setting=setting)
    except SMSCConfigError:
        raise
    except ValueError as exc:
        raise SMSCConfigError(str(exc)) from None


def build_smsc_definitions(
    *,
    start_date: str | dt.date,
    data_dir: str | os.PathLike[str],
    timezone: str = "Asia/Almaty",
    channels: Sequence[str] | str = ("sms",),
    lookback_days: int = 3,
    resource: SMSCResource | None = None,
    account: str | None = None,
    key_prefix: Sequence[str] = ("smsc",),
    translator: SMSCTranslator | None = None,
    schedule_cron: str = SCHEDULE_CRON,
    settle_after_hours: float = 24.0,
    privacy: Privacy | Mapping[str, str] | None = None,
) -> dg.Definitions:
    """Everything needed to keep one SMSC account's history and delivery tables in Dagster.

    Args:
        start_date: first day of history (``YYYY-MM-DD``), the first partition.
        data_dir: where Parquet partitions and ``warehouse.duckdb`` live; several accounts may share one.
        timezone: the zone whose local days are the partitions, and the schedule's zone. Recorded in the
            store on the first run; another zone over the same store is refused.
        channels: ``"sms"`` and/or ``"email"``.
        lookback_days: how many recent days the daily schedule re-reads while statuses settle (SMSC statuses
            keep changing for about two days).
        resource: the account; default reads ``SMSC_*`` environment variables (see ``definitions.py``).
        account: a short name (``[a-z][a-z0-9_]*``) for this account. When given, every name derives from it:
            asset keys ``[*key_prefix, account, table]``, jobs, schedule, sensor, resource and IO manager
            keys, the API pool, the group, the storage folder and the DuckDB schema ``smsc_<account>``.
            Without it, the single-account names and paths.
        key_prefix: asset key prefix (a shortcut for a translator that changes keys).
        translator: builds each table's :class:`dagster.AssetSpec`; subclass :class:`SMSCTranslator`.
        schedule_cron: when the refresh runs, in ``timezone``.
        settle_after_hours: the message lifetime: a day read this long after it ended, with no pending
            message, is settled and the daily refresh no longer re-reads it (SMSC's ``valid`` is at most 24 h).
        privacy: what the history tables store of recipients and texts: a :class:`Privacy` or a mapping
            such as ``{"phone": "hash", "message": "drop"}``; each of ``phone`` and ``message`` is ``keep``
            (default), ``hash`` (keyed SHA-256 hex, the key read from the environment variable ``key_env``,
            default ``SMSC_PRIVACY_KEY``, when a run starts) or ``drop`` (NULL). Metadata is masked whatever
            the setting.

    Raises:
        SMSCConfigError: a setting that cannot work, named, before anything runs.

    Example:
        .. code-block:: python

            import dagster as dg
            from smsc_dagster import SMSCResource, build_smsc_definitions

            defs = dg.Definitions.merge(
                build_smsc_definitions(
                    account="acme", start_date="2026-01-01", data_dir="/srv/smsc",
                    resource=SMSCResource(api_key=dg.EnvVar("ACME_SMSC_API_KEY")),
                ),
                build_smsc_definitions(
                    account="globex", start_date="2026-03-01", data_dir="/srv/smsc",
                    resource=SMSCResource(login=dg.EnvVar("GLOBEX_SMSC_LOGIN"),
                                          password=dg.EnvVar("GLOBEX_SMSC_PASSWORD")),
                ),
            )
    """
    start = _setting(parse_date, start_date, "start_date")
    timezone = _setting(check_timezone, timezone, "timezone")
    chosen: tuple[Channel, ...] = _setting(parse_channels, channels, "channels")
    lookback_days = check_lookback_days(lookback_days)
    if isinstance(settle_after_hours, bool) or not isinstance(settle_after_hours, (int, float)) or not (
        0 <= settle_after_hours <= 24 * 14
    ):
        raise SMSCConfigError(f"settle_after_hours must be a number of hours from 0 to 336, got {settle_after_hours!r}")
    schedule_cron = check_cron(schedule_cron)
    account = check_account(account)
    privacy = Privacy.coerce(privacy)
    if isinstance(key_prefix, str):
        key_prefix = [key_prefix]
    if not isinstance(data_dir, (str, os.PathLike)) or not str(data_dir).strip():
        raise SMSCConfigError(f"data_dir must be a directory path, got {data_dir!r}")
    if resource is not None and not isinstance(resource, SMSCResource):
        raise SMSCConfigError(f"resource must be an SMSCResource, got {type(resource).__name__}")
    resource = SMSCResource.from_env() if resource is None else resource
    # base_url, api_timezone and the limits, when given as plain values, are checked now; credentials and
    # EnvVar values when a run starts (SMSCResource.validate), still before any request.
    resource.validate_settings()
    layout = Layout(data_dir, account)
    # A store filed in another zone (or for another account) is refused here, at load, before any run.
    layout.check_manifest(timezone=timezone)
    names = AccountNames(account)
    translator = translator or SMSCTranslator()
    partitions_def = dg.DailyPartitionsDefinition(start_date=start.isoformat(), timezone=timezone)

    history = [
        build_history_asset(
            channel=c, layout=layout, partitions_def=partitions_def, key_prefix=key_prefix, translator=translator,
            privacy=privacy, lifetime_s=settle_after_hours * 3600.0,
        )
        for c in chosen
    ]
    delivery = build_delivery_assets(
        history_keys=[a.key for a in history],
        channels=chosen,
        layout=layout,
        partitions_def=partitions_def,
        key_prefix=key_prefix,
        translator=translator,
    )
    # Run checks follow the run's partitions; the audit reads the whole history, weekly.
    checks = [
        check
        for asset, channel in zip(history, chosen)
        for check in build_history_checks(
            history_key=asset.key, layout=layout, channel=channel, partitions_def=partitions_def
        )
    ]
    checks += build_delivery_checks(
        delivery_key=delivery[0].key, channels=chosen, layout=layout, partitions_def=partitions_def
    )
    checks += build_rollup_checks(
        rollup_keys={by: a.key for by, a in zip(ROLLUPS, delivery[1:])}, layout=layout
    )
    audit_checks = build_audit_checks(
        history_keys={c: a.key for c, a in zip(chosen, history)}, delivery_key=delivery[0].key, layout=layout
    )
    audit_job, audit_schedule = build_audit(names=names, audit_checks=audit_checks, timezone=timezone)

    marts = build_mart_assets(
        history_keys=[a.key for a in history],
        channels=chosen,
        layout=layout,
        partitions_def=partitions_def,
        key_prefix=key_prefix,
        translator=translator,
    )
    codes, daily_marts, sender_totals = marts[0], marts[1:-1], marts[-1]
    rollups = [*delivery[1:], sender_totals]
    refresh_job, rollup_job = build_jobs(
        names=names, refresh_assets=[*history, delivery[0], codes, *daily_marts], rollup_assets=rollups,
        audit_checks=audit_checks,
    )
    schedule = build_refresh_schedule(
        names=names, job=refresh_job, partitions_def=partitions_def, start=start,
        lookback_days=lookback_days, cron=schedule_cron,
        stores=[layout.store(c) for c in chosen], lifetime_s=settle_after_hours * 3600.0,
    )
    sensor = build_rollup_sensor(
        names=names, rollup_job=rollup_job, delivery_key=delivery[0].key, rollup_keys={a.key for a in rollups}
    )
    return dg.Definitions(
        assets=[*history, *delivery, *marts],
        asset_checks=[*checks, *audit_checks],
        jobs=[refresh_job, rollup_job, audit_job],
        schedules=[schedule, audit_schedule],
        sensors=[sensor],
        resources={
            names.resource_key: resource,
            names.io_manager_key: SMSCTablesIOManager.for_layout(layout),
        },
    )
