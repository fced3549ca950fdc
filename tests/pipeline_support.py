"""Helpers for the pipeline tests: a real Dagster instance, the simulator and the package's Definitions."""

from __future__ import annotations

import contextlib
import math
import os
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pyarrow.parquet as pq

from smsc_dagster import SMSCResource, build_smsc_definitions
from smsc_dagster.testing import SMSCSimulator

QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class Pipeline:
    sim: SMSCSimulator
    defs: dg.Definitions
    instance: dg.DagsterInstance
    data_dir: Path
    timezone: str

    ran: list[str] = field(default_factory=list)

    def run(self, first: str, last: str | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        """One run of the refresh job over the partitions ``first``..``last`` (history, daily, rollups)."""
        self.ran += [first, last or first]
        job = self.defs.resolve_job_def("smsc_refresh")
        return job.execute_in_process(
            instance=self.instance,
            tags=range_tags(first, last or first),
            run_config=QUIET,
            raise_on_error=kwargs.pop("raise_on_error", True),
            **kwargs,
        )

    def run_checks(self, first: str | None = None, last: str | None = None) -> dict[str, bool]:
        """Each run check's outcome over ``first``..``last`` (see :meth:`check_evaluations`)."""
        return {name: e.passed for name, e in self.check_evaluations(first, last).items()}

    def check_evaluations(self, first: str | None = None, last: str | None = None) -> dict[str, dg.AssetCheckEvaluation]:
        """The run checks (partitioned like their assets) over ``first``..``last``, by default every day the
        test's runs covered: a check-only run with the partition-range tags, as a refresh run carries them."""
        first = first or min(self.ran)
        last = last or max(self.ran)
        run_checks = [c for c in self.defs.asset_checks if not any(k.name.startswith("audit_") for k in c.check_keys)
                      and all(k.name != "reconciles_with_delivery_daily" for k in c.check_keys)]
        job = dg.define_asset_job("__run_checks", selection=dg.AssetSelection.checks(*run_checks))
        defs = dg.Definitions.merge(self.defs, dg.Definitions(jobs=[job]))
        result = defs.resolve_job_def("__run_checks").execute_in_process(
            instance=self.instance, tags=range_tags(first, last), run_config=QUIET, raise_on_error=False
        )
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    def run_audit(self) -> dict[str, dg.AssetCheckEvaluation]:
        """The account's audit job (whole history): check name -> evaluation."""
        result = self.defs.resolve_job_def("smsc_audit").execute_in_process(
            instance=self.instance, run_config=QUIET, raise_on_error=False
        )
        return {e.check_name: e for e in result.get_asset_check_evaluations()}

    def partition(self, day: str, table: str = "sms_history") -> list[dict]:
        path = self.data_dir / table / f"date={day}" / "data.parquet"
        return pq.read_table(path).to_pylist()

    def sql(self, query: str, *params) -> list[tuple]:
        with duckdb.connect(str(self.data_dir / "warehouse.duckdb"), read_only=True) as conn:
            return conn.execute(query, list(params)).fetchall()

    def truth(self, day: str, channel: str = "sms") -> list[dict]:
        """The simulator's rows of the local day ``day`` in the pipeline's zone, newest first."""
        start, end = local_day_span(day, self.timezone)
        return self.sim.expected_rows(start, end, channel=channel)


def range_tags(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def local_day_span(day: str, timezone: str) -> tuple[float, float]:
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), zone)
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


@contextlib.contextmanager
def pipeline(
    tmp_path: Path,
    account,
    *,
    clock=None,
    timezone: str = "Asia/Almaty",
    start_date: str = "2026-09-01",
    channels=("sms",),
    lookback_days: int = 3,
    faults=None,
    **resource_kwargs,
) -> Iterator[Pipeline]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with SMSCSimulator(account, clock=clock, faults=faults) as sim:
        config = {
            "login": account.login,
            "password": account.password,
            "base_url": sim.base_url,
            "api_timezone": account.timezone,
            "budget_path": str(tmp_path / "budget.sqlite3"),
            **resource_kwargs,
        }
        resource = SMSCResource(**config)
        defs = build_smsc_definitions(
            start_date=start_date,
            timezone=timezone,
            data_dir=str(tmp_path / "data"),
            channels=channels,
            lookback_days=lookback_days,
            resource=resource,
        )
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            yield Pipeline(sim, defs, instance, tmp_path / "data", timezone)


def row(int_id: int, send_ts: int, **fields) -> dict:
    """A raw SMSC row with every documented field, for hand-built test histories."""
    base = {
        "status": 1, "last_date": "", "last_timestamp": send_ts + 30, "err": 0, "send_date": "",
        "send_timestamp": send_ts, "phone": "77011234567", "cost": "14.50", "sender_id": "SMSC.KZ",
        "status_name": "Доставлено", "message": "Тест", "mccmnc": "40101", "country": "Казахстан",
        "operator": "Beeline KZ", "region": "Алматы", "type": 0, "id": 1, "int_id": int_id, "sms_cnt": 1,
        "format": 0, "crc": 0,
    }
    base.update(fields)
    return base


# A Dagster run in its own process, as a user's would be: the package's Definitions configured from SMSC_*.
RUNNER = """
import os, sys
import dagster as dg
from smsc_dagster.definitions import definitions_from_env
first, last = sys.argv[1:3]
job = definitions_from_env().resolve_job_def("smsc_refresh")
result = job.execute_in_process(
    instance=dg.DagsterInstance.get(),
    tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
)
print("success" if result.success else "failure")
"""


def env_for(sim, tmp_path: Path) -> dict[str, str]:
    """The environment of a process that runs the package's code location against ``sim``."""
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSC_")}
    env.update(
        DAGSTER_HOME=str(home),
        SMSC_LOGIN=sim.account.login,
        SMSC_PASSWORD=sim.account.password,
        SMSC_BASE_URL=sim.base_url,
        SMSC_DATA_DIR=str(tmp_path / "data"),
        SMSC_START_DATE="2026-09-01",
        SMSC_TIMEZONE="Asia/Almaty",
    )
    return env




# A notebook-style reader: polls the Parquet files and the warehouse (read-only) until a stop file appears.
READER = """
import sys, time, duckdb
from smsc_dagster.storage import Warehouse
data_dir, stop_file = sys.argv[1], sys.argv[2]
import os
reads = errors = 0
while not os.path.exists(stop_file):
    try:
        duckdb.sql(f"SELECT count(*) FROM read_parquet('{data_dir}/sms_history/date=*/data.parquet')").fetchall()
        with Warehouse(data_dir).connect(read_only=True) as con:
            con.execute("SELECT count(*) FROM smsc.delivery_daily").fetchall()
        reads += 1
    except Exception as exc:
        errors += 1
        print(type(exc).__name__, exc, file=sys.stderr)
    time.sleep(0.02)
print(reads, errors)
"""


def outcome(fn, *args):
    """``("ok", value)`` or ``("error", type, message)``: comparable across two paths that must agree."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - any difference counts
        return ("error", type(exc).__name__, str(exc))


def same_objects(a, b) -> bool:
    """Equal values of equal types all the way down (1 and 1.0 and True differ; NaN equals NaN). Iterative, so
    values nested as deep as a body can nest them compare too."""
    pending = [(a, b)]
    while pending:
        a, b = pending.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            if list(a) != list(b):
                return False
            pending += [(a[k], b[k]) for k in a]
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            pending += zip(a, b)
        elif isinstance(a, float) and math.isnan(a):
            if not math.isnan(b):
                return False
        elif a != b:
            return False
    return True
