"""Readers of the warehouse, and stale files: a reader that keeps the file open is named in the writer's
error, the reading pattern the package documents waits for writers, and checks over a table whose files
were deleted report a failure instead of crashing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import dagster as dg
import duckdb
import pytest

from smsc_dagster import Warehouse, WarehouseLockedError
from smsc_dagster.storage import Layout
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import QUIET, pipeline

# Opens the warehouse like the old README snippet and keeps the connection until stdin closes.
HOLDER = """
import sys, duckdb
conn = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("open", flush=True)
sys.stdin.read()
"""

CHECKS = {"int_id_unique", "date_matches_partition", "required_columns_not_null", "paging_complete",
          "reconciles_with_history"}


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds ``warehouse.duckdb`` open (``"ro"`` or ``"rw"``); yields its Popen."""
    procs = []

    def start(mode: str) -> subprocess.Popen:
        with Warehouse(Layout(tmp_path / "data")).connect() as conn:  # the file exists, as after a run
            conn.execute("CREATE SCHEMA IF NOT EXISTS smsc")
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(tmp_path / "data" / "warehouse.duckdb"), mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "open"
        return proc

    yield start
    for proc in procs:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_a_writer_blocked_by_a_reader_names_the_reader_and_its_process(tmp_path, holder):
    reader = holder("ro")
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError) as caught:
        with Warehouse(Layout(tmp_path / "data"), lock_retry_s=1).connect():
            pass
    waited = time.monotonic() - started
    message = str(caught.value)
    assert message.startswith(f"warehouse.duckdb is held open by a reader, process {reader.pid} (")
    assert "and was not released within 1 s: DuckDB lets no process write while another keeps the file open, " \
        "even read-only." in message
    assert "duckdb.connect(...warehouse.duckdb, read_only=True)" in message
    assert f"close it (or stop process {reader.pid} (" in message
    assert "Warehouse(data_dir).connect(read_only=True)" in message
    assert 1 <= waited < 5  # it retried for lock_retry_s, no longer


def test_a_reader_blocked_by_a_writer_says_a_writer_holds_it(tmp_path, holder):
    writer = holder("rw")
    with pytest.raises(WarehouseLockedError) as caught:
        with Warehouse(Layout(tmp_path / "data"), lock_retry_s=0.3).connect(read_only=True):
            pass
    assert str(caught.value).startswith(f"warehouse.duckdb is held for writing by process {writer.pid} (")


def test_the_documented_reader_waits_out_a_writer_where_plain_duckdb_fails(tmp_path, holder):
    """Warehouse.connect(read_only=True) waits while a writer holds the file; duckdb.connect fails at once."""
    path = tmp_path / "data" / "warehouse.duckdb"
    with Warehouse(Layout(tmp_path / "data")).connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS smsc")
        conn.execute("CREATE TABLE smsc.t AS SELECT 42 AS x")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), "rw"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "open"
    with pytest.raises(duckdb.IOException, match=f"PID {proc.pid}"):
        duckdb.connect(str(path), read_only=True)
    release = threading.Timer(0.5, proc.stdin.close)
    release.start()
    try:
        rows = Warehouse(tmp_path / "data", lock_retry_s=30).query("SELECT x FROM smsc.t")
    finally:
        release.join()
        proc.wait(timeout=30)
    assert rows["x"].tolist() == [42]


def test_checks_report_a_failure_after_the_history_files_are_deleted(tmp_path, clock):
    account = SimulatedAccount(seed=91, messages_per_day=200)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-01", "2026-10-03").success
        assert p.run_checks() == dict.fromkeys(CHECKS, True)
        for file in (p.data_dir / "sms_history").glob("date=*/data.parquet"):
            file.unlink()
        results = p.run_checks()
        layout = Layout(p.data_dir)
        mismatches, problem = Warehouse(layout).reconcile_delivery_daily(["sms"])
    assert set(results) == CHECKS  # every check evaluated; none crashed on the stale view
    assert results["reconciles_with_history"] is False
    others = CHECKS - {"reconciles_with_history"}
    assert {k: results[k] for k in others} == dict.fromkeys(others, True)
    assert problem is None
    assert [str(m[0]) for m in mismatches] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert all(m[2] is None and m[3] > 0 for m in mismatches)  # no history rows; delivery_daily still counts


def test_checks_report_a_failure_after_the_warehouse_file_is_deleted(tmp_path, clock):
    account = SimulatedAccount(seed=93, messages_per_day=100)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-01").success
        (p.data_dir / "warehouse.duckdb").unlink()
        evaluations = p.check_evaluations()
        assert not (p.data_dir / "warehouse.duckdb").exists()  # a check never creates it
    assert set(evaluations) == CHECKS
    reconcile = evaluations["reconciles_with_history"]
    assert reconcile.passed is False
    assert reconcile.metadata["problem"].value == (
        "<data_dir>/warehouse.duckdb does not exist: materialize smsc.delivery_daily"
    )
    assert all(e.passed for name, e in evaluations.items() if name != "reconciles_with_history")
    assert str(tmp_path) not in str({k: e.metadata for k, e in evaluations.items()})


def test_a_stale_history_view_is_dropped_by_the_next_run_and_readers_see_no_crash(tmp_path, clock):
    account = SimulatedAccount(seed=92, messages_per_day=100)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-01").success
        for file in (p.data_dir / "sms_history").glob("date=*/data.parquet"):
            file.unlink()
        assert p.run("2026-10-02").success  # re-reads one day: the view is recreated over what exists
        assert p.sql("SELECT count(*) FROM smsc.sms_history")[0][0] == len(p.truth("2026-10-02"))
        assert p.run_checks()["reconciles_with_history"] is False  # 2026-10-01 is in delivery_daily only
