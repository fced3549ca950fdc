"""The client against the simulator over real HTTP: exact rows, exact request counts, every error path."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math

import pytest

from smsc_dagster.core import errors
from smsc_dagster.core.client import SMSCClient
from smsc_dagster.core.dates import split_range
from smsc_dagster.testing import FAULT_KINDS, FaultPlan, SimulatedAccount, SMSCSimulator

from .conftest import expected, fetch_rows, wait_idle

OCT1, OCT30 = dt.date(2026, 10, 1), dt.date(2026, 10, 30)


def minimal_requests(rows: int) -> int:
    """ceil(rows / 1000), one more when the last page is exactly full (only a short page ends the walk)."""
    return rows // 1000 + 1


def test_thirty_days_of_2500_rows_come_back_once_in_the_minimal_requests(make_client, clock):
    account = SimulatedAccount(seed=1, messages_per_day=2500)
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim)
        rows = fetch_rows(client, OCT1, OCT30)
        truth = expected(sim, OCT1, OCT30)
        history = sim.history_requests()
    assert len(rows) == 75_000
    assert rows == truth
    assert len({int(r["int_id"]) for r in rows}) == 75_000
    assert len(history) == minimal_requests(75_000) == 76 == math.ceil(75_000 / 1000) + 1
    assert [r.error_code for r in history].count(9) == 0
    assert client.stats.requests == 76 and client.stats.retries == 0


@pytest.mark.parametrize("per_day, days, pages", [(1000, 1, 2), (999, 1, 1), (1001, 1, 2), (500, 4, 3), (0, 3, 1)])
def test_page_edges(make_client, clock, per_day, days, pages):
    account = SimulatedAccount(seed=2, messages_per_day=per_day)
    start = dt.date(2026, 11, 1)
    end = start + dt.timedelta(days=days - 1)
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim)
        got = list(client.iter_history(start, end))
        truth = expected(sim, start, end)
        history = sim.history_requests()
    assert [row for page in got for row in page.rows] == truth
    assert len(truth) == per_day * days
    assert len(history) == pages == len(got)
    assert got[-1].last and not any(page.last for page in got[:-1])
    # the cursor is always the smallest int_id seen so far
    for before, after in zip(got, got[1:]):
        assert after.prev_id == min(int(r["int_id"]) for r in before.rows)
    if per_day == 0:
        assert history[0].error_code == 3  # "message not found" is an empty history, not a failure


def test_range_longer_than_six_months_is_split_into_windows_walked_newest_first(make_client, clock):
    account = SimulatedAccount(seed=3, messages_per_day=lambda d: 3 if d.day == 1 else 0)
    start, end = dt.date(2025, 9, 1), dt.date(2026, 11, 30)
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim)
        rows = fetch_rows(client, start, end)
        truth = expected(sim, start, end)
        windows = [(r.params["start"], r.params["end"]) for r in sim.history_requests()]
    assert rows == truth and len(rows) == 3 * 15
    assert windows == [("01.06.2026", "30.11.2026"), ("01.12.2025", "31.05.2026"), ("01.09.2025", "30.11.2025")]
    assert windows == [(a.strftime("%d.%m.%Y"), b.strftime("%d.%m.%Y")) for a, b in split_range(start, end)]


def test_email_channel_and_phone_filter(make_client, clock):
    account = SimulatedAccount(seed=4, messages_per_day=200, emails_per_day=20)
    day = dt.date(2026, 11, 2)
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim)
        emails = fetch_rows(client, day, day, channel="email")
        assert emails == expected(sim, day, day, channel="email") and len(emails) == 20
        assert {r["type"] for r in emails} == {8}
        phone = fetch_rows(client, day, day)[5]["phone"]
        filtered = fetch_rows(client, day, day, phones=[phone])
        params = sim.history_requests()[-1].params
    assert filtered and {r["phone"] for r in filtered} == {phone}
    assert params["phone"] == phone and params["format"] == "0"


def test_api_key_auth_and_int_id_as_number_or_string(make_client, clock):
    account = SimulatedAccount(seed=5, messages_per_day=300, api_key="k-123-secret")
    day = dt.date(2026, 11, 3)
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim, login=None, password=None, api_key="k-123-secret")
        rows = fetch_rows(client, day, day)
        assert rows == expected(sim, day, day)
    kinds = {type(r["int_id"]) for r in rows}
    assert kinds == {int, str}  # the simulator mixes both, as the real server does


@pytest.mark.parametrize("charset", ["windows-1251", "koi8-r", "utf-8"])
def test_decodes_by_the_content_type_charset(make_client, clock, charset):
    account = SimulatedAccount(seed=6, messages_per_day=150)
    day = dt.date(2026, 11, 4)
    with SMSCSimulator(account, clock=clock, force_charset=charset) as sim:
        client = make_client(sim)
        rows = fetch_rows(client, day, day)
        truth = expected(sim, day, day)
        content_types = {r.params.get("charset") for r in sim.history_requests()}
    assert content_types == {"utf-8"}  # we always ask for utf-8 ...
    # ... and still decode what the server really sent: the 8-bit charsets cannot carry emoji (they become ?)
    as_sent = json.loads(json.dumps(truth, ensure_ascii=False).encode(charset, "replace").decode(charset))
    assert rows == as_sent
    assert any("Сіздің" in r["message"] or "ваш" in r["message"].lower() for r in rows)


def test_wrong_password_fails_after_exactly_one_request_and_names_the_fix(make_client, clock):
    with SMSCSimulator(SimulatedAccount(seed=7), clock=clock) as sim:
        client = make_client(sim, password="wrong-password-xyz")
        with pytest.raises(errors.SMSCAuthError) as info:
            fetch_rows(client, OCT1, OCT1)
        assert len(sim.requests) == 1
    assert info.value.code == 2 and info.value.attempts == 1
    assert "check the login and password" in str(info.value)
    assert "wrong-password-xyz" not in str(info.value)


def test_blocked_ip_stops_at_once(make_client, clock):
    with SMSCSimulator(SimulatedAccount(seed=8), clock=clock, faults=FaultPlan(schedule={1: "error_4"})) as sim:
        client = make_client(sim)
        with pytest.raises(errors.SMSCBlockedError, match="wait at least 30 minutes") as info:
            fetch_rows(client, OCT1, OCT1)
        assert len(sim.history_requests()) == 1
    assert info.value.code == 4


def test_parameter_error_is_not_retried(make_client, clock):
    with SMSCSimulator(SimulatedAccount(seed=9), clock=clock) as sim:
        client = make_client(sim)
        with pytest.raises(errors.SMSCParameterError) as info:
            client._call("/sys/get.php", {"get_messages": 1, "cnt": 5000, "start": "01.10.2026"}, budgeted=True)
        assert len(sim.history_requests()) == 1
    assert info.value.code == 1 and isinstance(info.value, errors.SMSCError)


@pytest.mark.parametrize("kind", [k for k in FAULT_KINDS if k != "error_4"])
def test_each_transient_fault_is_retried_to_the_exact_same_rows(make_client, clock, kind):
    account = SimulatedAccount(seed=10, messages_per_day=1200)
    start, end = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
    faults = FaultPlan(schedule={1: kind, 3: kind})
    with SMSCSimulator(account, clock=clock, faults=faults, slow_seconds=1.0) as sim:
        client = make_client(sim, timeout_s=0.3)
        rows = fetch_rows(client, start, end)
        truth = expected(sim, start, end)
        wait_idle(sim)  # a "slow" request the client gave up on is still being served
        history = sim.history_requests()
    assert rows == truth and len(rows) == 2400
    assert len(history) == 3 + 2  # three pages, two of them asked twice
    assert [r.fault for r in history][:4] == [kind, None, kind, None]
    assert client.stats.retries == 2


def test_retries_are_bounded_and_the_error_says_what_happened(make_client, clock):
    faults = FaultPlan(schedule={i: "http_503" for i in range(1, 10)})
    with SMSCSimulator(SimulatedAccount(seed=11), clock=clock, faults=faults) as sim:
        client = make_client(sim, max_retries=3)
        started = clock.now()
        with pytest.raises(errors.SMSCUnavailableError) as info:
            fetch_rows(client, OCT1, OCT1)
        assert len(sim.history_requests()) == 4
    assert "after 4 attempts" in str(info.value) and "HTTP 503" in str(info.value)
    assert info.value.attempts == 4
    # Backoff of 2, 4 and 8 s on the injected clock; the fourth identical request within a minute would earn
    # error 9, so the ledger holds it until the first one is a minute (plus its 2 s margin) old.
    assert clock.now() - started == pytest.approx(60 + 2)


def test_error_9_is_waited_out_and_shared_through_the_ledger(make_client, clock):
    account = SimulatedAccount(seed=12, messages_per_day=100)
    faults = FaultPlan(schedule={1: "error_9"})
    with SMSCSimulator(account, clock=clock, faults=faults) as sim:
        client = make_client(sim)
        started = clock.now()
        rows = fetch_rows(client, OCT1, OCT1)
        assert rows == expected(sim, OCT1, OCT1)
        times = [r.time for r in sim.history_requests()]
    assert len(times) == 2
    assert times[1] - times[0] >= 60  # the ledger's cool-down made the retry wait a minute
    assert clock.now() - started >= 60


def test_default_limits_never_provoke_error_9(make_client, clock):
    """31+ requests in a row: the ledger spaces them so the server's 30/hour limit is never hit."""
    account = SimulatedAccount(seed=13, messages_per_day=1500)
    start, end = dt.date(2026, 10, 1), dt.date(2026, 10, 25)  # 37,500 rows: 38 requests
    with SMSCSimulator(account, clock=clock) as sim:
        client = make_client(sim)
        rows = fetch_rows(client, start, end)
        assert rows == expected(sim, start, end)
        history = sim.history_requests()
    assert len(history) == 38
    assert all(r.error_code is None for r in history)
    times = sorted(r.time for r in history)
    assert max(sum(1 for t in times if s <= t < s + 3600) for s in times) == 30
    assert times[30] - times[0] >= 3600


def test_backup_host_is_used_only_on_connection_failure():
    client = SMSCClient(login="a", password="b", base_url="https://smsc.kz", budget_path=":memory:")
    assert client._url("/sys/get.php", backup=True) == "https://www2.smsc.kz/sys/get.php"
    assert client._has_backup()
    local = SMSCClient(login="a", password="b", base_url="http://127.0.0.1:9", budget_path=":memory:")
    assert not local._has_backup()


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://smsc.kz", "must use https://"),
        ("ftp://smsc.kz", "must look like"),
        ("https://user:pw@smsc.kz", "must not carry credentials"),
        ("smsc.kz", "must look like"),
    ],
)
def test_base_url_is_validated(url, problem):
    with pytest.raises(ValueError, match=problem) as info:
        SMSCClient(login="a", password="b", base_url=url, budget_path=":memory:")
    assert "pw@" not in str(info.value)


def test_missing_credentials_are_named():
    with pytest.raises(ValueError, match="password missing"):
        SMSCClient(login="shop")
    with pytest.raises(ValueError, match="not both"):
        SMSCClient(login="shop", password="x", api_key="y")


def test_credentials_never_reach_logs_reprs_or_errors(make_client, clock, caplog):
    password, api_key = "pw-Very-Secret-123", "key-Very-Secret-456"
    account = SimulatedAccount(seed=14, messages_per_day=1100, password=password, api_key=api_key)
    faults = FaultPlan(schedule={1: "truncated_json", 2: "html", 3: "http_500", 4: "reset", 5: "error_9"})
    texts = []
    caplog.set_level(logging.DEBUG)
    with SMSCSimulator(account, clock=clock, faults=faults) as sim:
        for creds in ({"password": password}, {"login": None, "password": None, "api_key": api_key}):
            client = make_client(sim, **creds)
            texts.append(repr(client))
            fetch_rows(client, OCT1, OCT1)
        for creds in ({"password": password + "x"}, {"login": None, "password": None, "api_key": api_key + "x"}):
            with pytest.raises(errors.SMSCAuthError) as info:
                fetch_rows(make_client(sim, **creds), OCT1, OCT1)
            texts.append(str(info.value))
        texts.append(repr(sim.requests))
    texts.append(caplog.text)
    assert "retrying" in caplog.text  # the faults were logged ...
    for text in texts:
        assert password not in text and api_key not in text  # ... without the secrets
