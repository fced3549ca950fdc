"""The request budget on both of its databases: a SQLite file and a real PostgreSQL server (tests/servers.py).

The same semantics tests run against each backend, with exact admission times on a fake clock; then the
PostgreSQL ledger is shared by two real processes on a fast clock, locked against a competing transaction, and
created by many processes at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa

from smsc_dagster import SMSCResource
from smsc_dagster.core.budget import RequestBudget, account_key, ledger_url
from smsc_dagster.core.client import SMSCClient
from smsc_dagster.core.clock import FakeClock, ScaledClock
from smsc_dagster.core.errors import SMSCBudgetError, SMSCConfigError
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .conftest import NOW
from .test_budget import WORKER


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, tmp_path) -> str:
    """Where the ledger lives: a SQLite file, or the session's PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "b.sqlite3")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def key():
    """Account keys private to this test (the PostgreSQL database is shared by the session's tests)."""
    run = uuid.uuid4().hex[:10]
    return lambda login="a": f"h-{run}|login:{login}"


def _password(url: str) -> str:
    return sa.make_url(url).password or "<the URL has no password>"


def test_thirty_first_request_waits_until_the_first_is_an_hour_old(ledger, key):
    clock = FakeClock(NOW)
    waits = []
    budget = RequestBudget(ledger, key(), clock=clock, on_wait=lambda s, r: waits.append((s, r)))
    times = []
    for i in range(31):
        clock.advance(10)
        budget.acquire(f"page {i}")
        times.append(clock.now())
    assert times[:30] == [NOW + 10 * (i + 1) for i in range(30)]
    assert times[30] == NOW + 10 + 3600 + 2  # the first request's hour, plus the skew margin
    assert waits == [(10 + 3600 + 2 - 310, "30 requests in the last hour spent")]
    assert budget.spent_last_hour() == 30  # requests 2..31
    assert budget.admitted_since(NOW) == times  # the ledger holds exactly the admitted times


def test_fourth_identical_request_within_a_minute_waits(ledger, key):
    clock = FakeClock(NOW)
    budget = RequestBudget(ledger, key(), clock=clock)
    for _ in range(3):
        budget.acquire("same")
        clock.advance(1)
    budget.acquire("other")  # a different request is not held back
    assert clock.now() == NOW + 3
    budget.acquire("same")
    assert clock.now() == NOW + 60 + 2
    assert budget.admitted_since(0) == [NOW, NOW + 1, NOW + 2, NOW + 3, NOW + 62]


def test_cool_down_is_honoured_by_another_budget_and_only_for_its_account(ledger, key):
    clock = FakeClock(NOW)
    a = RequestBudget(ledger, key("a"), clock=clock)
    b = RequestBudget(ledger, key("a"), clock=clock)  # another process of the same account
    other = RequestBudget(ledger, key("someone-else"), clock=clock)
    a.cool_down(120)
    b.cool_down(30)  # a shorter cool-down never shortens the one in force
    other.acquire("x")
    assert clock.now() == NOW  # another account is not affected
    b.acquire("x")
    assert clock.now() == NOW + 120
    assert b.spent_last_hour() == 1 and other.spent_last_hour() == 1


def test_an_admission_waits_for_a_competing_transaction_on_the_account(ledger, key):
    """The lock is the database's, not the process's: a transaction holding the account (SQLite: the file's
    write lock; PostgreSQL: the account's row, FOR UPDATE) holds every admission back until it ends."""
    clock = FakeClock(NOW)
    budget = RequestBudget(ledger, key(), clock=clock)
    budget.cool_down(0)  # the account's row exists
    if ledger.startswith("postgresql"):
        holder = psycopg2.connect(ledger)
        holder.cursor().execute("SELECT until FROM smsc_budget_cooldowns WHERE key = %s FOR UPDATE", (key(),))
    else:
        holder = sqlite3.connect(ledger, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
    done = threading.Event()
    worker = threading.Thread(target=lambda: (budget.acquire("x"), done.set()))
    worker.start()
    try:
        assert not done.wait(1.0)  # held back while the competing transaction is open
        assert budget.spent_last_hour() == 0
    finally:
        holder.commit() if ledger.startswith("postgresql") else holder.execute("COMMIT")
        holder.close()
    assert done.wait(10)
    worker.join()
    assert budget.spent_last_hour() == 1


def test_a_sqlite_url_and_a_path_are_the_same_ledger(tmp_path):
    clock = FakeClock(NOW)
    by_path = RequestBudget(tmp_path / "b.sqlite3", "h|login:a", clock=clock)
    by_url = RequestBudget(f"sqlite:///{tmp_path / 'b.sqlite3'}", "h|login:a", clock=clock)
    by_path.acquire("x")
    assert by_url.spent_last_hour() == 1 and by_url.path == by_path.path
    assert repr(by_url) == repr(by_path)


def test_no_secret_in_the_key_the_repr_or_the_url(postgres_url):
    password = _password(postgres_url)
    assert password  # the test server authenticates with a password
    key = account_key("smsc.kz", api_key="my-secret-api-key")
    budget = RequestBudget(postgres_url, key, clock=FakeClock(NOW))
    shown = repr(budget) + budget.url + budget.key
    assert password not in shown and "my-secret-api-key" not in shown
    assert budget.url == postgres_url.replace(f":{password}@", ":***@").replace("postgresql://", "postgresql+psycopg2://")
    assert repr(budget) == (
        f"RequestBudget(url={budget.url!r}, key={key!r}, requests_per_hour=30, identical_per_minute=3)"
    )
    with sa.create_engine(ledger_url(postgres_url)).connect() as conn:  # nor in the ledger's rows
        budget.acquire("x")
        budget.cool_down(5)
        stored = conn.execute(sa.text("SELECT key, fingerprint FROM smsc_budget_requests WHERE key = :k"),
                              {"k": key}).all()
        stored += conn.execute(sa.text("SELECT key, '' FROM smsc_budget_cooldowns WHERE key = :k"), {"k": key}).all()
    assert len(stored) == 2 and not any("my-secret-api-key" in k + f for k, f in stored)


def test_a_wrong_password_is_a_clear_error_without_the_password(postgres_url):
    url = sa.make_url(postgres_url).set(password="wrong-pw-0123456789")
    with pytest.raises(SMSCBudgetError) as caught:
        RequestBudget(url.render_as_string(hide_password=False), "h|login:a")
    message = str(caught.value)
    assert "wrong-pw-0123456789" not in message and _password(postgres_url) not in message
    assert message.startswith("cannot open the request-budget ledger at postgresql+psycopg2://smsc:***@127.0.0.1:")
    assert "password authentication failed" in message


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://u:pw-x@db/budget", "supports SQLite and PostgreSQL, not 'mysql'"),
        ("sqlite://", "not an in-memory SQLite database"),
        ("postgresql://u:pw-x@db:notaport/budget", "cannot be parsed"),
    ],
)
def test_unusable_urls_are_clear_errors(url, message):
    with pytest.raises(SMSCBudgetError, match=message) as caught:
        RequestBudget(url, "h|login:a")
    assert "pw-x" not in str(caught.value)


def test_many_openers_create_the_tables_at_once(postgres_url):
    """A fresh database, and eight connections opening the ledger at the same moment: no CREATE TABLE race."""
    fresh = f"smsc_fresh_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {fresh}")
    url = sa.make_url(postgres_url).set(database=fresh).render_as_string(hide_password=False)
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_and_spend(i: int) -> None:
        try:
            barrier.wait()
            RequestBudget(url, f"h|login:{i}", clock=FakeClock(NOW)).acquire("x")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_and_spend, args=(i,)) for i in range(8)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*), count(DISTINCT key) FROM smsc_budget_requests")
            assert cur.fetchone() == (8, 8)
            cur.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'smsc_budget%' ORDER BY 1")
            assert cur.fetchall() == [("smsc_budget_cooldowns",), ("smsc_budget_requests",)]
        conn.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)")
        admin.close()


def test_two_processes_share_the_postgres_ledger_and_never_exceed_the_hour(postgres_url):
    """Two real processes walk 40 pages through the simulator with one PostgreSQL ledger; the hour allows 30,
    so one of them waits on the other's admissions. An hour passes in 5 s on a clock 720x real time."""
    speed, origin = 720.0, time.time()
    clock = ScaledClock(speed=speed, origin=origin, start=NOW)
    account = SimulatedAccount(seed=21, messages_per_day=1000)  # 1000 a day: 19 days = 20 requests
    ranges = [("2026-09-01", "2026-09-19"), ("2026-10-01", "2026-10-19")]
    with SMSCSimulator(account, clock=clock) as sim:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, sim.base_url, postgres_url, str(speed), str(origin), start, end,
                 str(NOW)],
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
            truths.append({"rows": len(ids), "digest": hashlib.sha256(json.dumps(ids).encode()).hexdigest()})
        key = account_key(sim.base_url.split("//")[1], login="demo")
    assert [{k: r[k] for k in ("rows", "digest")} for r in results] == truths
    assert [r["requests"] for r in results] == [20, 20]
    assert len(history) == 40
    assert sorted(r.error_code for r in history if r.error_code is not None) == [3, 3]  # never error 9
    served = sorted(r.time for r in history)
    assert max(sum(1 for t in served if s <= t < s + 3600) for s in served) == 30
    # The ledger's own record: the 40 admissions, never more than 30 in any rolling hour, and the 31st only
    # once the first had left the hour (plus the margin the workers use: one real second).
    admitted = RequestBudget(postgres_url, key, clock=clock).admitted_since(NOW - 1)
    assert len(admitted) == 40
    assert max(sum(1 for t in admitted if s <= t < s + 3600) for s in admitted) == 30
    assert admitted[30] >= admitted[0] + 3600 + speed


# -- configuration ----------------------------------------------------------------------------------------


def test_budget_path_and_budget_url_together_are_an_error(tmp_path, postgres_url):
    resource = SMSCResource(api_key="k", budget_path=str(tmp_path / "b"), budget_url=postgres_url)
    with pytest.raises(SMSCConfigError, match="budget_path and budget_url are both set") as caught:
        resource.validate()
    assert _password(postgres_url) not in str(caught.value)
    with pytest.raises(ValueError, match="budget_path or budget_url, not both"):
        SMSCClient(api_key="k", budget_path=str(tmp_path / "b"), budget_url=postgres_url)


def test_resource_budget_url_reaches_the_client_and_stays_out_of_repr(postgres_url):
    resource = SMSCResource(login="shop", password="pw", budget_url=postgres_url)
    assert _password(postgres_url) not in repr(resource)
    with resource.get_client(clock=FakeClock(NOW)) as client:
        assert client.budget.path is None and client.budget.url.startswith("postgresql+psycopg2://smsc:***@")
        assert client.budget.key == "smsc.kz|login:shop"
        assert _password(postgres_url) not in repr(client.budget)


def test_from_env_reads_the_budget_url_as_an_env_var(monkeypatch, postgres_url):
    monkeypatch.setenv("SMSC_API_KEY", "from-env")
    monkeypatch.delenv("SMSC_BUDGET_PATH", raising=False)
    monkeypatch.setenv("SMSC_BUDGET_URL", postgres_url)
    resource = SMSCResource.from_env()
    assert isinstance(resource.budget_url, dg.EnvVar) and resource.budget_url == "SMSC_BUDGET_URL"
    assert resource.budget_path is None
    seen = {}

    @dg.asset
    def probe(smsc: SMSCResource) -> None:
        client = smsc.get_client(clock=FakeClock(NOW))
        seen["url"] = client.budget.url

    assert dg.materialize([probe], resources={"smsc": resource}).success
    assert seen["url"].startswith("postgresql+psycopg2://smsc:***@127.0.0.1:")
    monkeypatch.delenv("SMSC_BUDGET_URL")
    assert SMSCResource.from_env().budget_url is None


def test_an_unsupported_budget_url_fails_validation():
    with pytest.raises(SMSCConfigError, match="budget_url: the request-budget ledger supports SQLite and PostgreSQL"):
        SMSCResource(api_key="k", budget_url="mysql://u:pw@db/x").validate()
