"""The code location Dagster loads (``workspace.yaml``): one account configured from the environment.

| variable | meaning | default |
|---|---|---|
| ``SMSC_API_KEY`` or ``SMSC_LOGIN`` + ``SMSC_PASSWORD`` | the account's credentials | — |
| ``SMSC_START_DATE`` | first partition, ``YYYY-MM-DD`` (required, so the first partition never moves) | — |
| ``SMSC_ACCOUNT`` | the account's short name (names, paths, schema); unset: single-account names | — |
| ``SMSC_BASE_URL`` | API host | ``https://smsc.kz`` |
| ``SMSC_TIMEZONE`` | the partitions' zone | ``Asia/Almaty`` |
| ``SMSC_DATA_DIR`` | Parquet and DuckDB files: a folder, or ``s3://bucket/prefix`` (reached with the ``AWS_*`` variables) | ``./data`` |
| ``SMSC_BUDGET_URL`` | the request budget's database, e.g. ``postgresql://…`` shared by every machine | SQLite in ``DAGSTER_HOME`` |
| ``SMSC_CHANNELS`` | comma-separated ``sms``/``email`` | ``sms`` |
| ``SMSC_LOOKBACK_DAYS`` | days the schedule re-reads | ``3`` |
| ``SMSC_SETTLE_AFTER_HOURS`` | message lifetime: a day read this long after it ended, with nothing pending, is settled | ``24`` |
| ``SMSC_SCHEDULE_CRON`` | when the refresh runs, in ``SMSC_TIMEZONE`` | ``30 5 * * *`` |
| ``SMSC_PRIVACY_PHONE`` | what the history stores of recipients: ``keep``, ``hash`` or ``drop`` | ``keep`` |
| ``SMSC_PRIVACY_MESSAGE`` | what it stores of message texts: ``keep``, ``hash`` or ``drop`` | ``keep`` |
| ``SMSC_PRIVACY_KEY`` | the HMAC key (16+ characters) when something is ``hash``; read when a run starts | — |

For several accounts, write a module of your own (``build_smsc_definitions`` once per account, merged) or
use the YAML component ``smsc_dagster.SMSCAccountComponent``.
"""

from __future__ import annotations

import os
import re

import dagster as dg

from .core import SMSCConfigError
from .orchestration import SCHEDULE_CRON, SMSCResource, build_smsc_definitions


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


def definitions_from_env() -> dg.Definitions:
    """Build the :class:`dagster.Definitions` described by the ``SMSC_*`` environment variables.

    Raises:
        SMSCConfigError: naming the variable that is missing or cannot work.
    """
    start = _env("SMSC_START_DATE")
    if start is None:
        raise SMSCConfigError(
            "SMSC_START_DATE is not set: set it to the first day of history to keep, as YYYY-MM-DD (for example "
            "2026-01-01). It is required so that the first partition stays where it is instead of moving every day."
        )
    lookback = _env("SMSC_LOOKBACK_DAYS") or "3"
    if not re.fullmatch(r"[0-9]+", lookback):
        raise SMSCConfigError(f"SMSC_LOOKBACK_DAYS must be a whole number of days, at least 1, got {lookback!r}")
    try:
        return build_smsc_definitions(
            start_date=start,
            account=_env("SMSC_ACCOUNT"),
            timezone=_env("SMSC_TIMEZONE") or "Asia/Almaty",
            data_dir=_env("SMSC_DATA_DIR") or "data",
            channels=_env("SMSC_CHANNELS") or "sms",
            lookback_days=int(lookback),
            resource=SMSCResource.from_env(),
            schedule_cron=_env("SMSC_SCHEDULE_CRON") or SCHEDULE_CRON,
            privacy={"phone": _env("SMSC_PRIVACY_PHONE") or "keep", "message": _env("SMSC_PRIVACY_MESSAGE") or "keep"},
            settle_after_hours=_hours(_env("SMSC_SETTLE_AFTER_HOURS") or "24"),
        )
    except SMSCConfigError as exc:
        # Name the variable the user sets, not the builder's argument.
        raise SMSCConfigError(_env_names(str(exc))) from None


def _hours(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SMSCConfigError(f"SMSC_SETTLE_AFTER_HOURS must be a number of hours, got {value!r}") from None


_ENV_OF = {
    "settle_after_hours": "SMSC_SETTLE_AFTER_HOURS",
    "start_date": "SMSC_START_DATE",
    "account": "SMSC_ACCOUNT",
    "timezone": "SMSC_TIMEZONE",
    "data_dir": "SMSC_DATA_DIR",
    "channels": "SMSC_CHANNELS",
    "lookback_days": "SMSC_LOOKBACK_DAYS",
    "schedule_cron": "SMSC_SCHEDULE_CRON",
    "privacy.phone": "SMSC_PRIVACY_PHONE",
    "privacy.message": "SMSC_PRIVACY_MESSAGE",
    "base_url": "SMSC_BASE_URL",
    "api_timezone": "SMSC_API_TIMEZONE",
}


def _env_names(message: str) -> str:
    """``message`` with the builder's and the resource's setting names replaced by the variables that set
    them: every ``data_dir``-like name (never the ``<data_dir>`` placeholder of a path), and a leading
    ``account``/``timezone``/``channels``."""
    message = message.removeprefix("SMSCResource: ")
    for arg, env in _ENV_OF.items():
        if "_" in arg:
            message = re.sub(rf"(?<![<\w]){arg}(?![>\w])", env, message)
        elif message.startswith(arg + " "):
            message = env + message[len(arg):]
    return re.sub(r"(?<![<\w])timezone=", "SMSC_TIMEZONE=", message)


defs = definitions_from_env()
