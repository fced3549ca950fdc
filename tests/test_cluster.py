"""Two "machines" that share nothing but a PostgreSQL server and an S3-compatible store, as production Dagster
runs each run in its own container: the Dagster instance on Postgres (dagster-postgres), the request budget on
the same server (``SMSC_BUDGET_URL``), the data in ``s3://`` (moto's standalone server). Each machine is its
own ``DAGSTER_HOME`` and working directory; each run is its own process, configured only by environment
variables.

1. Two concurrent backfills of one account, one per machine (20 history requests each, 40 in all): the
   simulator never serves more than 30 in any rolling hour (on a clock 360x real time), never answers error 9,
   and both end with exactly the simulator's rows; both runs are recorded in the shared instance.
2. A run SIGKILLed on machine A while a request hangs resumes on machine B from the staging A left in the
   store: B asks only for the pages A had not staged, and the days end exact.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

from smsc_dagster.core.clock import ScaledClock
from smsc_dagster.storage import Layout
from smsc_dagster.testing import FaultPlan, SimulatedAccount, SMSCSimulator

from .pipeline_support import local_day_span

SPEED = 360.0  # an hour passes in 10 s: two walks could make ~100 requests an hour, so the budget binds
START = dt.datetime(2026, 11, 25, tzinfo=dt.timezone.utc).timestamp()
TIMEZONE = "Asia/Almaty"
ACCOUNT = "acme"

RUNNER = """
import sys
import dagster as dg
from smsc_dagster.definitions import definitions_from_env
first, last = sys.argv[1:3]
job = definitions_from_env().resolve_job_def("smsc_acme_refresh")
with dg.DagsterInstance.get() as instance:
    result = job.execute_in_process(
        instance=instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last,
              "smsc/test_machine": sys.argv[3]},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        raise_on_error=False,
    )
print(result.run_id, "success" if result.success else "failure")
"""

DAGSTER_YAML = """\
storage:
  postgres:
    postgres_url:
      env: SMSC_TEST_INSTANCE_URL
telemetry:
  enabled: false
"""


@pytest.fixture
def instance_url(postgres_url):
    """A fresh database for this test's Dagster instance, on the session's PostgreSQL server."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        # dagster-postgres drives psycopg2 (SQLAlchemy's default driver for postgresql:// is psycopg 3).
        yield postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1) + "/" + name
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


class Machine:
    """A machine of the cluster: its own DAGSTER_HOME and working directory; runs are processes on it."""

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        self.name = name
        self.home = root / name / "dagster_home"
        self.work = root / name / "work"
        self.home.mkdir(parents=True)
        self.work.mkdir(parents=True)
        (self.home / "dagster.yaml").write_text(DAGSTER_YAML)
        self.env = {**env, "DAGSTER_HOME": str(self.home)}

    def start_run(self, first: str, last: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", RUNNER, first, last, self.name], cwd=self.work, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )


def _cluster(tmp_path, sim, clock, s3, instance_url, budget_url, data_dir) -> tuple[Machine, Machine]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSC_", "AWS_", "DAGSTER_"))}
    env.update(s3.env())
    env.update(
        SMSC_TEST_INSTANCE_URL=instance_url,
        SMSC_BUDGET_URL=budget_url,
        SMSC_LOGIN=sim.account.login,
        SMSC_PASSWORD=sim.account.password,
        SMSC_BASE_URL=sim.base_url,
        SMSC_ACCOUNT=ACCOUNT,
        SMSC_DATA_DIR=data_dir,
        SMSC_START_DATE="2026-09-01",
        SMSC_TIMEZONE=TIMEZONE,
        SMSC_CLOCK_SPEED=str(clock.speed),
        SMSC_CLOCK_ORIGIN=repr(clock.origin),
        SMSC_CLOCK_START=repr(clock.start),
    )
    return Machine(tmp_path, "machine_a", env), Machine(tmp_path, "machine_b", env)


def _assert_exact(sim, data_dir: str, first: str, last: str) -> None:
    layout = Layout(data_dir, ACCOUNT)
    day = dt.date.fromisoformat(first)
    while day <= dt.date.fromisoformat(last):
        stored = layout.store("sms").read(day).column("int_id").to_pylist()
        truth = [int(r["int_id"]) for r in sim.expected_rows(*local_day_span(day.isoformat(), TIMEZONE))]
        assert stored == truth, day
        day += dt.timedelta(days=1)


def _server_day(local_first: str) -> str:
    """The first server day (dd.mm.yyyy) a backfill of local days from ``local_first`` asks for."""
    return (dt.date.fromisoformat(local_first) - dt.timedelta(days=1)).strftime("%d.%m.%Y")


def _pages(sim, account, first: str, last: str) -> int:
    """The requests of one paging walk over the server days covering ``first``..``last``."""
    start = dt.date.fromisoformat(first) - dt.timedelta(days=1)
    rows = len(sim.expected_rows(*account.day_range(start, dt.date.fromisoformat(last))))
    return rows // 1000 + 1


def _set_duckdb_pool(instance_url: str, env: dict[str, str], home: Path) -> None:
    """``dagster instance concurrency set smsc_duckdb 1``, as the deployment guide says, on the shared instance."""
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "instance", "concurrency", "set", "smsc_duckdb", "1"],
        env={**env, "DAGSTER_HOME": str(home)}, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_two_machines_share_the_budget_and_end_exact(tmp_path, s3_env, postgres_url, instance_url):
    clock = ScaledClock(speed=SPEED, origin=time.time(), start=START)
    account = SimulatedAccount(seed=61, messages_per_day=1000)
    data_dir = f"s3://{s3_env.new_bucket()}/smsc"
    ranges = [("2026-09-02", "2026-09-20"), ("2026-10-02", "2026-10-20")]
    with SMSCSimulator(account, clock=clock) as sim:
        a, b = _cluster(tmp_path, sim, clock, s3_env, instance_url, postgres_url, data_dir)
        _set_duckdb_pool(instance_url, a.env, a.home)
        procs = [a.start_run(*ranges[0]), b.start_run(*ranges[1])]
        outcomes = []
        for proc in procs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0 and out.strip().endswith("success"), (out, err[-4000:])
            outcomes.append(out.split()[0])
        history = sim.history_requests()
        # Each backfill walks its server days once: one request per 1,000 rows, and one more that ends the walk
        # (a short page, or error 3 after a full one).
        minimal = [_pages(sim, account, first, last) for first, last in ranges]
        by_range = [sum(1 for r in history if r.params["start"] == _server_day(first)) for first, _ in ranges]
        assert by_range == minimal
        assert sum(minimal) > 30  # more than one rolling hour's allowance in all
        assert not [r for r in history if r.error_code == 9]
        served = sorted(r.time for r in history)
        assert max(sum(1 for t in served if s <= t < s + 3600) for s in served) == 30
        for first, last in ranges:
            _assert_exact(sim, data_dir, first, last)
    # Both runs, from two DAGSTER_HOMEs, are in the one instance on Postgres.
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": instance_url}}}) as instance:
        runs = {r.run_id: r for r in instance.get_runs()}
        assert set(outcomes) <= set(runs)
        assert sorted(runs[i].tags["smsc/test_machine"] for i in outcomes) == ["machine_a", "machine_b"]
        assert all(runs[i].status == dg.DagsterRunStatus.SUCCESS for i in outcomes)


def test_a_run_killed_on_one_machine_resumes_on_the_other(tmp_path, s3_env, postgres_url, instance_url):
    clock = ScaledClock(speed=SPEED, origin=time.time(), start=START)
    account = SimulatedAccount(seed=62, messages_per_day=1000)
    data_dir = f"s3://{s3_env.new_bucket()}/smsc"
    first, last = "2026-10-01", "2026-10-15"  # 16 server days of 1,000 rows: 16 pages and the one that ends the walk
    with SMSCSimulator(account, clock=clock, slow_seconds=300) as sim:
        a, b = _cluster(tmp_path, sim, clock, s3_env, instance_url, postgres_url, data_dir)
        sim.set_faults(FaultPlan(schedule={7: "slow"}))  # the 7th request hangs: 6 pages are staged by then
        proc = a.start_run(first, last)
        deadline = time.monotonic() + 240
        while sim.in_flight == 0 or len(sim.history_requests()) < 6:
            assert proc.poll() is None, proc.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "machine A never reached its 7th request"
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        staging = Layout(data_dir, ACCOUNT).staging_dir
        states = list(staging.glob("sms_history/*/state.json"))
        assert len(states) == 1
        assert json.loads(states[0].read_text())["pages"] == 6
        assert not Layout(data_dir, ACCOUNT).store("sms").days()  # nothing committed, nothing half-visible

        sim.set_faults(None)
        sim.reset_log()
        out, err = b.start_run(first, last).communicate(timeout=600)
        assert out.strip().endswith("success"), err[-4000:]
        assert _pages(sim, account, first, last) == 17
        assert len(sim.history_requests()) == 17 - 6  # B did not re-spend the pages A staged
        _assert_exact(sim, data_dir, first, last)
        assert not list(staging.glob("sms_history/*/*"))
