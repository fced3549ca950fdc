"""The request budget: exact admission times on a fake clock, and two real processes sharing one ledger."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import textwrap
import time

import pytest

from smsc_dagster.core.budget import RequestBudget, account_key
from smsc_dagster.core.clock import FakeClock, ScaledClock
from smsc_dagster.core.errors import SMSCBudgetError
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .conftest import NOW


def test_thirty_first_request_waits_until_the_first_is_an_hour_old(tmp_path):
    clock = FakeClock(NOW)
    waits = []
    budget = RequestBudget(tmp_path / "b.sqlite3", "h|login:a", clock=clock, on_wait=lambda s, r: waits.append(r))
    times = []
    for i in range(31):
        clock.advance(10)
        budget.acquire(f"page {i}")
        times.append(clock.now())
    assert times[29] == NOW + 300
    assert times[30] == NOW + 10 + 3600 + 2  # the first request's hour, plus the skew margin
    assert waits == ["30 requests in the last hour spent"]
    assert budget.spent_last_hour() == 30  # requests 2..31


def test_fourth_identical_request_within_a_minute_waits(tmp_path):
    clock = FakeClock(NOW)
    budget = RequestBudget(tmp_path / "b.sqlite3", "h|login:a", clock=clock)
    for _ in range(3):
        budget.acquire("same")
        clock.advance(1)
    budget.acquire("other")  # a different request is not held back
    assert clock.now() == NOW + 3
    budget.acquire("same")
    assert clock.now() == NOW + 60 + 2


def test_cool_down_is_seen_by_every_budget_on_the_same_ledger(tmp_path):
    clock = FakeClock(NOW)
    a = RequestBudget(tmp_path / "b.sqlite3", "h|login:a", clock=clock)
    b = RequestBudget(tmp_path / "b.sqlite3", "h|login:a", clock=clock)
    other = RequestBudget(tmp_path / "b.sqlite3", "h|login:someone-else", clock=clock)
    a.cool_down(120)
    other.acquire("x")
    assert clock.now() == NOW  # another account is not affected
    b.acquire("x")
    assert clock.now() == NOW + 120


def test_account_key_never_holds_the_api_key():
    key = account_key("smsc.kz", api_key="my-secret-api-key")
    assert "my-secret-api-key" not in key and key.startswith("smsc.kz|apikey:")
    assert account_key("smsc.kz", login="shop") == "smsc.kz|login:shop"


def test_unwritable_ledger_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SMSCBudgetError, match="cannot open the request-budget ledger"):
        RequestBudget(blocker / "budget.sqlite3", "k")


WORKER = textwrap.dedent(
    """
    import datetime as dt, hashlib, json, sys
    from smsc_dagster.core.budget import RequestBudget, account_key
    from smsc_dagster.core.client import SMSCClient
    from smsc_dagster.core.clock import ScaledClock

    base_url, ledger, speed, origin, start, end = sys.argv[1:7]
    clock = ScaledClock(speed=float(speed), origin=float(origin), start=float(sys.argv[7]))
    # The margin covers request latency; on a clock running `speed` times fast, latency grows as much.
    budget = RequestBudget(ledger, account_key(base_url.split("//")[1], login="demo"), clock=clock,
                           margin_s=1.0 * float(speed))
    client = SMSCClient(login="demo", password="demo-password", base_url=base_url, clock=clock, budget=budget)
    ids = [int(r["int_id"]) for p in client.iter_history(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
           for r in p.rows]
    print(json.dumps({"rows": len(ids), "digest": hashlib.sha256(json.dumps(ids).encode()).hexdigest(),
                      "requests": client.stats.requests}))
    """
)


def test_two_processes_share_one_budget_and_both_finish_complete(tmp_path):
    """Two processes need 40 requests together; the hour allows 30, so one of them must wait on the shared
    ledger. On a clock 240x faster than real time, that hour passes in 15 s."""
    speed, origin = 240.0, time.time()
    clock = ScaledClock(speed=speed, origin=origin, start=NOW)
    account = SimulatedAccount(seed=21, messages_per_day=1000)  # 1000 a day: 20 days = 21 requests
    ranges = [("2026-09-01", "2026-09-19"), ("2026-10-01", "2026-10-19")]  # 19,000 rows, 20 requests each
    with SMSCSimulator(account, clock=clock) as sim:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, sim.base_url, str(tmp_path / "ledger.sqlite3"), str(speed),
                 str(origin), start, end, str(NOW)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for start, end in ranges
        ]
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        history = sim.history_requests()
        truths = []
        for start, end in ranges:
            s, e = account.day_range(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
            ids = [int(r["int_id"]) for r in sim.expected_rows(s, e)]
            truths.append({"rows": len(ids), "digest": __import__("hashlib").sha256(json.dumps(ids).encode()).hexdigest()})
    assert [{k: r[k] for k in ("rows", "digest")} for r in results] == truths
    assert [r["requests"] for r in results] == [20, 20]
    assert len(history) == 40
    # no error 9 ever; the only error is 3 ("not found") for each walk's empty last page (19,000 rows)
    assert sorted(r.error_code for r in history if r.error_code is not None) == [3, 3]
    times = sorted(r.time for r in history)
    assert max(sum(1 for t in times if s <= t < s + 3600) for s in times) == 30
