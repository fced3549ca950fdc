"""End to end through real Dagster processes: ``dagster-webserver`` and ``dagster-daemon run`` on a temporary
``DAGSTER_HOME`` with the project's ``workspace.yaml``, the code location configured by ``SMSC_*`` variables and
pointed at the simulator running in this process, driven only through the webserver's GraphQL API.

1. A partition backfill of 5 complete days of ``smsc/sms_history`` and everything downstream: the history is
   read in one run with the minimal number of requests, and ``warehouse.duckdb`` holds exactly the
   simulator's rows and their aggregates.
2. The ``smsc_daily_refresh`` schedule, turned on (cron every minute for the test), launches the lookback run
   over the last 3 complete days, which reads them in one paging walk.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest
import requests

from smsc_dagster.core.dates import api_dates
from smsc_dagster.storage import Layout
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import local_day_span

ROOT = Path(__file__).resolve().parents[1]
WORKSPACE = str(ROOT / "workspace.yaml")
BIN = Path(sys.executable).parent
# The code location's zone: Almaty, the product's home. The test's days are counted from its "today", so a
# local midnight inside the test (up to about 15 minutes of waits) would move the schedule's window under it;
# within the last hour of an Almaty day the test takes a zone whose midnight is hours away.
ZONES = ("Asia/Almaty", "Asia/Tokyo")
MIDNIGHT_MARGIN = dt.timedelta(hours=1)
API_TIMEZONE = "Europe/Moscow"  # the simulated account's zone, and SMSCResource's default api_timezone
LOCATION = "smsc_dagster"
REPOSITORY = "__repository__"  # the repository name Dagster gives a module's Definitions
HISTORY = "smsc/sms_history"
ASSETS = [HISTORY, "smsc/delivery_daily", "smsc/delivery_by_operator", "smsc/delivery_by_country"]
UNFINISHED = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

RUN_FIELDS = "runId jobName status creationTime assetSelection { path } tags { key value }"


# ------------------------------------------------------------------------------------------ the processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"<no log: {exc}>"
        return "\n".join(text.splitlines()[-lines:])

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)  # the process and every child it started (same process group)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stopped(self) -> bool:
        return self.proc.poll() is not None and not self.group_alive()


def stop_all(services: list[Service], timeout_s: float = 30.0) -> None:
    """SIGTERM every process group at once, wait for all of them, then SIGKILL whatever is left."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        for service in services:
            if not service.stopped():
                service.signal(sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and not all(s.stopped() for s in services):
            time.sleep(0.2)


@dataclass
class Dagster:
    url: str
    home: Path
    data_dir: Path
    tmp_path: Path
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)

    def spawn(self, name: str, *args: str) -> Service:
        """Start ``.venv/bin/<args>`` in its own session (process group), output to ``<tmp>/<name>.log``."""
        log = self.tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        service = Service(name, proc, log)
        self.services.append(service)
        return service

    def start_daemon(self) -> Service:
        return self.spawn("daemon", "dagster-daemon", "run", "-w", WORKSPACE)

    def gql(self, query: str, **variables: Any) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def check_alive(self) -> None:
        for s in self.services:
            assert s.proc.poll() is None, f"{s.name} exited with {s.proc.returncode}:\n{s.tail()}"

    def runs(self, **filter_: Any) -> list[dict]:
        data = self.gql(
            f"""query Runs($filter: RunsFilter) {{
                  runsOrError(filter: $filter) {{
                    __typename
                    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
                    ... on PythonError {{ message stack }}
                  }}
                }}""",
            filter=filter_,
        )["runsOrError"]
        assert data["__typename"] == "Runs", data
        return data["results"]


def wait_for(
    what: str, probe: Callable[[], Any], timeout_s: float, dagster: Dagster | None = None, every_s: float = 1.0
) -> Any:
    """Poll ``probe`` until it returns something truthy (returned), within a bounded time."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if dagster is not None:
            dagster.check_alive()
        try:
            last = probe()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}; last: {last!r}")


def materialized(dagster: Dagster, run_id: str) -> set[tuple[str, str | None]]:
    """The (asset key, partition) pairs a run materialized."""
    data = dagster.gql(
        """query Run($id: ID!) { runOrError(runId: $id) { __typename
             ... on Run { assetMaterializations { assetKey { path } partition } } } }""",
        id=run_id,
    )["runOrError"]
    assert data["__typename"] == "Run", data
    return {("/".join(m["assetKey"]["path"]), m["partition"]) for m in data["assetMaterializations"]}


def tags_of(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def keys_of(run: dict) -> set[str]:
    return {"/".join(k["path"]) for k in run["assetSelection"] or []}


# ------------------------------------------------------------------------------------------- the fixtures


@pytest.fixture
def account() -> SimulatedAccount:
    # A distinctive password, so the scan at the end can look for it in everything the processes wrote.
    return SimulatedAccount(seed=41, messages_per_day=300, timezone=API_TIMEZONE, password="E2e-Secret-Pw-5521")


@pytest.fixture
def sim(account) -> Iterator[SMSCSimulator]:
    with SMSCSimulator(account) as simulator:  # wall clock: the Dagster processes run on real time too
        yield simulator


def zone_away_from_midnight(now: dt.datetime) -> str:
    """The first of ``ZONES`` whose next local midnight is more than ``MIDNIGHT_MARGIN`` after ``now``."""
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name))
        if dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), local.tzinfo) - local > MIDNIGHT_MARGIN:
            return name
    raise AssertionError(f"every zone of {ZONES} is within {MIDNIGHT_MARGIN} of midnight at {now:%H:%M} UTC")


def test_the_zone_keeps_midnight_away():
    utc = dt.timezone.utc
    assert zone_away_from_midnight(dt.datetime(2026, 12, 1, 12, 0, tzinfo=utc)) == "Asia/Almaty"
    assert zone_away_from_midnight(dt.datetime(2026, 12, 1, 17, 59, tzinfo=utc)) == "Asia/Almaty"  # 22:59 there
    assert zone_away_from_midnight(dt.datetime(2026, 12, 1, 18, 0, tzinfo=utc)) == "Asia/Tokyo"  # 23:00 there
    assert zone_away_from_midnight(dt.datetime(2026, 12, 1, 18, 59, tzinfo=utc)) == "Asia/Tokyo"
    assert zone_away_from_midnight(dt.datetime(2026, 12, 1, 19, 0, tzinfo=utc)) == "Asia/Almaty"  # 00:00 there


@pytest.fixture
def timezone() -> str:
    return zone_away_from_midnight(dt.datetime.now(dt.timezone.utc))


@pytest.fixture
def today(timezone) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


@pytest.fixture
def dagster(tmp_path, sim, account, timezone, today, request) -> Iterator[Dagster]:
    """The webserver and the daemon as subprocesses (own process groups), stopped whatever happens."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    data_dir = tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSC_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        DAGSTER_DISABLE_TELEMETRY="1",
        PYTHONUNBUFFERED="1",
        SMSC_LOGIN=account.login,
        SMSC_PASSWORD=account.password,
        SMSC_BASE_URL=sim.base_url,
        SMSC_DATA_DIR=str(data_dir),
        SMSC_START_DATE=(today - dt.timedelta(days=21)).isoformat(),
        SMSC_TIMEZONE=timezone,
        SMSC_BUDGET_PATH=str(tmp_path / "budget.sqlite3"),
        SMSC_SCHEDULE_CRON="* * * * *",
    )
    dagster = Dagster(
        url=f"http://127.0.0.1:{port}/graphql", home=home, data_dir=data_dir, tmp_path=tmp_path, env=env
    )
    failed_before = request.session.testsfailed
    ok = False
    try:
        # The daemon is started by the test, once there is work for it (see start_daemon).
        dagster.spawn("webserver", "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", WORKSPACE)
        wait_for("the code location to load in the webserver", lambda: _location_loaded(dagster), 90, dagster)
        ok = True
        yield dagster
    finally:
        stop_all(dagster.services)
        if not ok or request.session.testsfailed > failed_before:
            for service in dagster.services:
                print(f"\n===== {service.name} (exit {service.proc.returncode}), last lines of {service.log} =====")
                print(service.tail())
        leftover = [s.name for s in dagster.services if s.group_alive()]
        assert not leftover, f"processes left running: {leftover}"


def _location_loaded(dagster: Dagster) -> bool:
    data = dagster.gql(
        """{ repositoriesOrError { __typename
               ... on RepositoryConnection { nodes { name location { name } } }
               ... on PythonError { message } } }"""
    )["repositoriesOrError"]
    if data["__typename"] != "RepositoryConnection":
        raise AssertionError(f"code location failed to load: {data}")
    return any(n["location"]["name"] == LOCATION and n["name"] == REPOSITORY for n in data["nodes"])


# ------------------------------------------------------------------------------------------------ ground truth


def truth(sim: SMSCSimulator, day: dt.date, timezone: str) -> list[dict]:
    return sim.expected_rows(*local_day_span(day.isoformat(), timezone))


def read_warehouse(data_dir: Path, query: str) -> list[tuple]:
    """A short read-only query, retried while a pipeline writer holds the file's lock."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
                return conn.execute(query).fetchall()
        except duckdb.IOException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# ------------------------------------------------------------------------------------------------------ test


LAUNCH_BACKFILL = """
mutation Launch($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { id status isAssetBackfill partitionNames error { message stack } }
    ... on PythonError { message }
    ... on Error { message }
  }
}"""

SCHEDULE = {
    "repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "scheduleName": "smsc_daily_refresh"
}

SCHEDULE_TICKS = """
query Ticks($selector: ScheduleSelector!) {
  scheduleOrError(scheduleSelector: $selector) {
    __typename
    ... on Schedule { scheduleState { status ticks(limit: 20) { timestamp status runIds runKeys skipReason } } }
  }
}"""

START_SCHEDULE = """
mutation Start($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}"""

STOP_SCHEDULE = """
mutation Stop($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message stack }
    ... on Error { message }
  }
}"""


def test_backfill_and_schedule_through_webserver_and_daemon(dagster, sim, account, timezone, today):
    zone = ZoneInfo(timezone)
    # Five complete local days ending the day before yesterday: their server-side (Moscow) window is over too,
    # so the ground truth cannot grow while the test runs.
    days = [today - dt.timedelta(days=n) for n in range(6, 1, -1)]
    partitions = [d.isoformat() for d in days]

    # ---------------------------------------------------------------- 1. the backfill, launched over GraphQL
    launched = dagster.gql(
        LAUNCH_BACKFILL,
        params={
            "assetSelection": [{"path": key.split("/")} for key in ASSETS],
            "partitionNames": partitions,
            "title": "e2e backfill",
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]
    # Started now, the daemon's first backfill iteration finds the backfill (they come every 30 s).
    dagster.start_daemon()

    def backfill_done():
        b = dagster.gql(BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        assert b["__typename"] == "PartitionBackfill", b
        return b if b["status"] in BACKFILL_DONE else None

    backfill = wait_for("the backfill to finish", backfill_done, 240, dagster, every_s=2)
    backfill_runs = dagster.runs(tags=[{"key": "dagster/backfill", "value": backfill_id}])
    summary = [
        (r["status"], sorted(keys_of(r)), tags_of(r).get("dagster/asset_partition_range_start"),
         tags_of(r).get("dagster/asset_partition_range_end"))
        for r in backfill_runs
    ]
    assert backfill["status"] == "COMPLETED_SUCCESS", (backfill, summary)
    assert backfill["isAssetBackfill"] is True
    assert backfill["partitionNames"] == partitions

    history_runs = [r for r in backfill_runs if HISTORY in keys_of(r)]
    assert len(history_runs) == 1, summary  # BackfillPolicy.single_run(): the whole range in one run
    (history_run,) = history_runs
    assert history_run["status"] == "SUCCESS"
    assert keys_of(history_run) == {HISTORY, "smsc/delivery_daily"}, summary
    assert (tags_of(history_run)["dagster/asset_partition_range_start"],
            tags_of(history_run)["dagster/asset_partition_range_end"]) == (partitions[0], partitions[-1])
    assert materialized(dagster, history_run["runId"]) == {(key, p) for key in ASSETS[:2] for p in partitions}
    assert all(r["status"] == "SUCCESS" for r in backfill_runs), summary
    rolled_up = set().union(*(keys_of(r) for r in backfill_runs))
    assert rolled_up == set(ASSETS), summary

    # The minimal request count for the server-side window of the five days: one paging walk.
    api_start, api_end = api_dates(days[0], days[-1], timezone, API_TIMEZONE)
    api_rows = len(sim.expected_rows(*account.day_range(api_start, api_end)))
    history_requests = sim.history_requests()
    assert len(history_requests) == api_rows // 1000 + 1, [(r.params, r.rows) for r in history_requests]
    assert {(r.params["start"], r.params["end"]) for r in history_requests} == {
        (f"{api_start:%d.%m.%Y}", f"{api_end:%d.%m.%Y}")
    }
    assert all(r.error_code is None for r in history_requests)
    assert sum(r.rows for r in history_requests) == api_rows

    # The warehouse holds exactly the simulator's rows, per local day, and their aggregates.
    truths = {d: truth(sim, d, timezone) for d in days}
    assert all(truths.values())
    stored_ids = read_warehouse(
        dagster.data_dir,
        "SELECT date, list(int_id ORDER BY int_id) FROM smsc.sms_history GROUP BY date ORDER BY date",
    )
    assert stored_ids == [(d, sorted(int(r["int_id"]) for r in truths[d])) for d in days]
    daily = read_warehouse(
        dagster.data_dir,
        "SELECT date, sum(messages)::BIGINT, sum(cost) FROM smsc.delivery_daily GROUP BY date ORDER BY date",
    )
    assert daily == [(d, len(truths[d]), sum(Decimal(str(r["cost"])) for r in truths[d])) for d in days]
    total_rows = sum(len(t) for t in truths.values())
    total_cost = sum(Decimal(str(r["cost"])) for t in truths.values() for r in t)
    by_operator = read_warehouse(
        dagster.data_dir,
        "SELECT sum(messages)::BIGINT, sum(cost), min(first_date), max(last_date) FROM smsc.delivery_by_operator",
    )
    assert by_operator == [(total_rows, total_cost, days[0], days[-1])]
    by_country = read_warehouse(
        dagster.data_dir, "SELECT sum(messages)::BIGINT, sum(cost) FROM smsc.delivery_by_country"
    )
    assert by_country == [(total_rows, total_cost)]

    # ---------------------------------------------------------------- 2. the schedule, turned on over GraphQL
    store = Layout(dagster.data_dir).store("sms")
    settled = {
        d for d in (today - dt.timedelta(days=n) for n in (3, 2, 1)) if store.settlement(d, timezone, 24 * 3600).settled
    }
    seen_before = len(sim.history_requests())
    started = dagster.gql(START_SCHEDULE, selector=SCHEDULE)["startSchedule"]
    assert started["__typename"] == "ScheduleStateResult", started
    assert started["scheduleState"]["status"] == "RUNNING"

    def scheduled_run():
        runs = dagster.runs(tags=[{"key": "dagster/schedule_name", "value": "smsc_daily_refresh"}])
        return runs[-1] if runs else None  # newest first: the first tick's run is the last one

    run = wait_for("a tick of smsc_daily_refresh to launch a run", scheduled_run, 150, dagster, every_s=1)
    # One tick is the point; the next one (a minute later) would launch another run: a schedule's run_key
    # dedupes only within a tick (Dagster filters on the tick's scheduled time too), not across ticks.
    stopped = dagster.gql(STOP_SCHEDULE, id=started["scheduleState"]["id"])["stopRunningSchedule"]
    assert stopped["__typename"] == "ScheduleStateResult" and stopped["scheduleState"]["status"] == "STOPPED", stopped

    def finished():
        (r,) = dagster.runs(runIds=[run["runId"]])
        return r if r["status"] not in UNFINISHED else None

    run = wait_for("the scheduled run to finish", finished, 180, dagster, every_s=2)
    tags = tags_of(run)
    ticks = dagster.gql(SCHEDULE_TICKS, selector=SCHEDULE)["scheduleOrError"]["scheduleState"]["ticks"]
    assert [(t["status"], t["runIds"], t["runKeys"]) for t in ticks] == [
        ("SUCCESS", [run["runId"]], [tags["dagster/run_key"]])
    ]
    (tick,) = ticks
    # The tick's local date (its scheduled time, in the schedule's zone) decides the lookback window: the last
    # 3 complete days.
    tick_day = dt.datetime.fromtimestamp(tick["timestamp"], zone).date()
    window = [tick_day - dt.timedelta(days=n) for n in (3, 2, 1)]
    # Only the unsettled days of the window are re-read: the backfilled days that held no pending message and
    # were read more than a day after they ended were settled when the schedule ticked; the rest follow.
    assert tick_day == today
    lookback = [d for d in window if d not in settled]
    assert lookback == window[len(settled):]  # the settled ones are the oldest: one contiguous block
    assert run["status"] == "SUCCESS", (run, dagster.runs())
    assert run["jobName"] == "smsc_refresh"
    assert (tags["dagster/asset_partition_range_start"], tags["dagster/asset_partition_range_end"]) == (
        lookback[0].isoformat(),
        lookback[-1].isoformat(),
    )
    assert tags["dagster/run_key"] == f"refresh-{lookback[0]}-{lookback[-1]}"
    assert {m for m in materialized(dagster, run["runId"]) if m[0] in ASSETS} == {
        *((key, d.isoformat()) for key in ASSETS[:2] for d in lookback), *((key, None) for key in ASSETS[2:])
    }  # history, delivery_daily and the rollups, all in the one run
    assert len(dagster.runs(tags=[{"key": "dagster/schedule_name", "value": "smsc_daily_refresh"}])) == 1

    walk = sim.history_requests()[seen_before:]
    refresh_start, refresh_end = api_dates(lookback[0], lookback[-1], timezone, API_TIMEZONE)
    assert {(r.params["start"], r.params["end"]) for r in walk} == {
        (f"{refresh_start:%d.%m.%Y}", f"{refresh_end:%d.%m.%Y}")
    }  # one paging walk over the whole lookback window
    # The walk pages backwards from the newest row at its first request, so it saw exactly those rows.
    seen = len(account.rows_between(*account.day_range(refresh_start, refresh_end), now=walk[0].time))
    assert len(walk) == seen // 1000 + 1 and sum(r.rows for r in walk) == seen
    assert all(r.error_code is None for r in walk)

    refreshed = read_warehouse(
        dagster.data_dir,
        "SELECT date, list(int_id ORDER BY int_id) FROM smsc.sms_history "
        f"WHERE date >= DATE '{lookback[0]}' GROUP BY date ORDER BY date",
    )
    assert refreshed == [(d, sorted(int(r["int_id"]) for r in truth(sim, d, timezone))) for d in lookback]
    # Nothing is left running when the processes are stopped (the rollups sensor's run is long finished).
    wait_for("every run to finish", lambda: not dagster.runs(statuses=UNFINISHED), 60, dagster, every_s=2)

    # ---------------------------------------------------------------- 3. no credential in anything written
    # Instance storage (runs, event logs, schedules), compute logs, data files and the processes' own logs.
    written = [f for f in dagster.tmp_path.rglob("*") if f.is_file()]
    compute_logs = [f for f in written if f.suffix in (".out", ".err", ".complete") and "compute_logs" in str(f)]
    assert compute_logs, "expected the run workers' compute logs under DAGSTER_HOME"
    assert [str(f) for f in written if account.password.encode() in f.read_bytes()] == []
