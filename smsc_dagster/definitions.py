"""The code location Dagster loads (``workspace.yaml``): the pipeline configured from the environment.

| variable | meaning | default |
|---|---|---|
| ``SMSC_API_KEY`` or ``SMSC_LOGIN`` + ``SMSC_PASSWORD`` | the account's credentials | — |
| ``SMSC_BASE_URL`` | API host | ``https://smsc.kz`` |
| ``SMSC_START_DATE`` | first partition, ``YYYY-MM-DD`` | 90 days ago |
| ``SMSC_TIMEZONE`` | the partitions' zone | ``Asia/Almaty`` |
| ``SMSC_DATA_DIR`` | Parquet and DuckDB files | ``./data`` |
| ``SMSC_CHANNELS`` | comma-separated ``sms``/``email`` | ``sms`` |
| ``SMSC_LOOKBACK_DAYS`` | days the schedule re-reads | ``3`` |
| ``SMSC_SCHEDULE_CRON`` | when the refresh runs, in ``SMSC_TIMEZONE`` | ``30 5 * * *`` |
"""

from __future__ import annotations

import datetime as dt
import os

from .pipeline import SCHEDULE_CRON, build_smsc_definitions
from .resource import SMSCResource


def definitions_from_env():
    """Build the :class:`dagster.Definitions` described by the ``SMSC_*`` environment variables."""
    start = os.environ.get("SMSC_START_DATE") or (dt.date.today() - dt.timedelta(days=90)).isoformat()
    return build_smsc_definitions(
        start_date=start,
        timezone=os.environ.get("SMSC_TIMEZONE") or "Asia/Almaty",
        data_dir=os.environ.get("SMSC_DATA_DIR") or "data",
        channels=tuple(c.strip() for c in (os.environ.get("SMSC_CHANNELS") or "sms").split(",") if c.strip()),
        lookback_days=int(os.environ.get("SMSC_LOOKBACK_DAYS") or 3),
        resource=SMSCResource.from_env(),
        schedule_cron=os.environ.get("SMSC_SCHEDULE_CRON") or SCHEDULE_CRON,
    )


defs = definitions_from_env()
