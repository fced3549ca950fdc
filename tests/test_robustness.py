"""Concurrent runs, bad input and secrets: nothing lost, nothing duplicated, no credential exposed."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
from decimal import Decimal
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from smsc_dagster.testing import FaultPlan, SimulatedAccount, SMSCSimulator

from .pipeline_support import READER, RUNNER, env_for, local_day_span, pipeline, row


def stored_ids(data_dir, day: str) -> list[int]:
    return pq.read_table(data_dir / "sms_history" / f"date={day}" / "data.parquet").column("int_id").to_pylist()


def truth_ids(sim, day: str) -> list[int]:
    return [int(r["int_id"]) for r in sim.expected_rows(*local_day_span(day, "Asia/Almaty"))]


def test_two_overlapping_backfills_and_a_reader_at_once(tmp_path, clock):
    account = SimulatedAccount(seed=61, messages_per_day=400)
    data_dir = tmp_path / "data"
    with SMSCSimulator(account, clock=clock) as sim:
        env = env_for(sim, tmp_path)
        seed_run = subprocess.run([sys.executable, "-c", RUNNER, "2026-10-01", "2026-10-01"], env=env,
                                  capture_output=True, text=True, timeout=300)
        assert seed_run.stdout.strip().endswith("success"), seed_run.stderr[-3000:]
        stop = tmp_path / "stop"
        reader = subprocess.Popen([sys.executable, "-c", READER, str(data_dir), str(stop)], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs = [
            subprocess.Popen([sys.executable, "-c", RUNNER, first, last], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for first, last in (("2026-10-01", "2026-10-12"), ("2026-10-06", "2026-10-18"))
        ]
        outputs = [run.communicate(timeout=600) for run in runs]
        stop.write_text("")
        reads, errors = map(int, reader.communicate(timeout=60)[0].split())
        history = sim.history_requests()
        for out, err in outputs:
            assert out.strip().endswith("success"), err[-3000:]
            assert "lock" not in err.lower()
        assert errors == 0 and reads > 5
        assert all(r.error_code in (None, 3) for r in history)  # the shared budget kept error 9 away
        assert len(history) <= 30
        for i in range(1, 19):
            day = f"2026-10-{i:02d}"
            assert stored_ids(data_dir, day) == truth_ids(sim, day), day
        import duckdb

        with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as conn:
            daily = dict(conn.execute("SELECT CAST(date AS VARCHAR), sum(messages) FROM smsc.delivery_daily GROUP BY 1").fetchall())
            (dupes,) = conn.execute("SELECT count(*) - count(DISTINCT int_id) FROM smsc.sms_history").fetchone()
        assert dupes == 0
        assert daily == {f"2026-10-{i:02d}": len(truth_ids(sim, f"2026-10-{i:02d}")) for i in range(1, 19)}


ZONE = ZoneInfo("Asia/Almaty")
NOON = int(dt.datetime(2026, 10, 20, 12, tzinfo=ZONE).timestamp())


def odd_rows() -> list[dict]:
    sparse = {"int_id": "4000000004", "send_timestamp": str(NOON + 4), "status": "1", "cost": "3.5"}
    return [
        row(4_000_000_001, NOON + 1, status=777, err=999, type=42, status_name="Новый статус", cost=12.34),
        row(4_000_000_002, NOON + 2, cost="0.005", sms_cnt="3", format=99),
        row(4_000_000_003, NOON + 3, cost=7, new_field={"a": [1, 2]}, viber_flag=True),
        sparse,  # every optional field missing, numbers as strings
    ]


def test_odd_rows_are_stored_without_losing_anything(tmp_path, clock):
    account = SimulatedAccount(seed=62, messages_per_day=0, extra_rows=odd_rows())
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-20")
        stored = {r["int_id"]: r for r in p.partition("2026-10-20")}
    assert sorted(stored) == [4_000_000_001, 4_000_000_002, 4_000_000_003, 4_000_000_004]
    first = stored[4_000_000_001]
    assert (first["status"], first["err"], first["type"], first["status_class"]) == (777, 999, 42, "other")
    assert first["cost"] == Decimal("12.34") and first["status_name"] == "Новый статус"
    second = stored[4_000_000_002]
    assert second["cost"] == Decimal("0.005") and second["sms_cnt"] == 3 and second["format"] == 99
    third = stored[4_000_000_003]
    assert third["cost"] == Decimal("7") and json.loads(third["extra"]) == {"new_field": {"a": [1, 2]}, "viber_flag": True}
    sparse = stored[4_000_000_004]
    assert sparse["cost"] == Decimal("3.5") and sparse["status_class"] == "delivered"
    assert sparse["phone"] is None and sparse["operator"] is None and sparse["status_changed_at"] is None
    assert sparse["sent_at"] == dt.datetime.fromtimestamp(NOON + 4, dt.timezone.utc)


@pytest.mark.parametrize(
    "day, bad_row, problem",
    [
        ("2026-10-20", {"send_timestamp": NOON + 9, "cost": "1.00", "status": 1}, "has no numeric int_id"),
        # the simulator serves a row without a send time with the history of its own "today"
        ("2026-11-30", {"int_id": 4_100_000_009, "cost": "1.00", "status": 1}, "has no send_timestamp"),
        ("2026-10-20", {"int_id": 4_100_000_009, "send_timestamp": NOON + 9, "cost": "one tenge"}, "cost that is not a number"),
    ],
)
def test_a_row_that_breaks_the_contract_fails_the_partition_and_keeps_the_old_one(tmp_path, clock, day, bad_row, problem):
    account = SimulatedAccount(seed=63, messages_per_day=50, extra_rows=odd_rows())
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run(day)
        path = p.data_dir / "sms_history" / f"date={day}" / "data.parquet"
        before = path.read_bytes()
        account.extra_rows.append(bad_row)
        result = p.run(day, raise_on_error=False)
        assert not result.success
        error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
        assert problem in (error.cause or error).message
        assert path.read_bytes() == before


def test_a_body_that_is_not_json_fails_naming_it_and_keeps_the_old_partition(tmp_path, clock):
    account = SimulatedAccount(seed=64, messages_per_day=50)
    with pipeline(tmp_path, account, clock=clock, max_retries=1) as p:
        p.run("2026-10-20")
        path = p.data_dir / "sms_history" / "date=2026-10-20" / "data.parquet"
        before = path.read_bytes()
        p.sim.set_faults(FaultPlan(schedule={1: "html", 2: "html"}))
        result = p.run("2026-10-20", raise_on_error=False)
        error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
        assert not result.success and path.read_bytes() == before
        message = (error.cause or error).message
        assert "failed after 2 attempts" in message and "HTML page instead of JSON" in message


def test_wrong_password_fails_after_exactly_one_request_saying_what_to_check(tmp_path, clock):
    account = SimulatedAccount(seed=65, messages_per_day=50)
    with pipeline(tmp_path, account, clock=clock, password="not-the-password") as p:
        result = p.run("2026-10-20", raise_on_error=False)
        requests = p.sim.requests
    assert not result.success
    assert len(requests) == 1 and requests[0].error_code == 2
    message = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error.cause.message
    assert "SMSC error 2" in message and "check the login and password (or API key)" in message
    assert "not retried" in message and "not-the-password" not in message


def test_no_secret_anywhere_after_backfills_including_failed_ones(tmp_path, clock, caplog, capfd):
    password, api_key = "Pw4SecretScan9931", "Key4SecretScan7731"
    account = SimulatedAccount(seed=66, messages_per_day=1200, password=password, api_key=api_key)
    caplog.set_level(logging.DEBUG)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.sim.set_faults(FaultPlan(schedule={2: "truncated_json", 4: "html", 6: "http_500", 8: "reset"}))
        assert p.run("2026-10-01", "2026-10-05").success
        p.sim.set_faults(FaultPlan(schedule={1: "error_4"}))
        assert not p.run("2026-10-06", raise_on_error=False).success
        # the same account through its API key, in a run process of its own, with a failure too
        env = env_for(p.sim, tmp_path)
        env.pop("SMSC_LOGIN"), env.pop("SMSC_PASSWORD")
        env.update(SMSC_API_KEY=api_key, SMSC_DATA_DIR=str(p.data_dir), DAGSTER_HOME=str(tmp_path / "dagster_home"))
        p.sim.set_faults(FaultPlan(schedule={1: "http_503"}))
        ok = subprocess.run([sys.executable, "-c", RUNNER, "2026-10-07", "2026-10-08"], env=env,
                            capture_output=True, text=True, timeout=300)
        p.sim.set_faults(FaultPlan(schedule={1: "error_4"}))
        failed = subprocess.run([sys.executable, "-c", RUNNER, "2026-10-09", "2026-10-09"], env=env,
                                capture_output=True, text=True, timeout=300)
        assert ok.stdout.strip().endswith("success") and not failed.stdout.strip().endswith("success")
        request_log = repr(p.sim.requests)
    captured = capfd.readouterr()
    texts = {
        "caplog": caplog.text, "stdout": captured.out, "stderr": captured.err, "request log": request_log,
        "run processes": ok.stdout + ok.stderr + failed.stdout + failed.stderr,
    }
    files = [f for f in tmp_path.rglob("*") if f.is_file()]
    assert any(f.name.endswith(".db") for f in files) and any(f.name == "data.parquet" for f in files)
    for secret in (password, api_key):
        for name, text in texts.items():
            assert secret not in text, name
        for f in files:
            assert secret.encode() not in f.read_bytes(), f
