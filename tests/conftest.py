"""Shared fixtures: a fake clock, and a client wired to a running simulator."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from smsc_dagster.core.client import SMSCClient
from smsc_dagster.core.clock import FakeClock

from .servers import postgres_url as postgres_url  # noqa: F401  (a real PostgreSQL server, session-wide)
from .servers import s3_env as s3_env, s3_server as s3_server  # noqa: F401  (a real S3-compatible server)

# A fixed "now" for the simulated world: 2026-11-30 12:00 UTC.
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc).timestamp()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def make_client(tmp_path: Path, clock: FakeClock):
    """Build a client for a simulator, with a private budget ledger and the test's fake clock."""
    clients: list[SMSCClient] = []

    def make(sim, **kwargs) -> SMSCClient:
        account = sim.account
        kwargs.setdefault("login", account.login)
        kwargs.setdefault("password", account.password)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("budget_path", str(tmp_path / "budget.sqlite3"))
        client = SMSCClient(base_url=sim.base_url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def fetch_rows(client: SMSCClient, start: dt.date, end: dt.date, **kwargs) -> list[dict]:
    return [row for page in client.iter_history(start, end, **kwargs) for row in page.rows]


def expected(sim, start: dt.date, end: dt.date, channel: str = "sms") -> list[dict]:
    """The simulator's ground truth for whole server-zone days ``start``..``end``."""
    start_ts, end_ts = sim.account.day_range(start, end)
    return sim.expected_rows(start_ts, end_ts, channel=channel)


def wait_idle(sim, timeout_s: float = 10.0) -> None:
    """Wait (real time, bounded) until the simulator has finished and logged every request it received."""
    deadline = time.monotonic() + timeout_s
    while sim.unfinished and time.monotonic() < deadline:
        time.sleep(0.02)
