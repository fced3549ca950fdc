"""A request budget shared by every process on the machine that talks to one SMSC account.

SMSC allows 30 history requests an hour and 3 identical ones a minute per account; exceeding either earns
error 9 and, if repeated, a blocked IP. Every run, schedule and backfill of an account spends the same
budget, so the ledger lives in one SQLite file and each request is admitted inside an exclusive transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from typing import Any
from pathlib import Path

from .clock import Clock, SystemClock
from .errors import SMSCBudgetError

HOUR_S = 3600.0
MINUTE_S = 60.0
# Added to every computed wait so that clock skew between us and the server never lets a request in
# a hair before the server's window has moved.
MARGIN_S = 2.0


def default_budget_path() -> Path:
    """The ledger path used when none is configured: under ``DAGSTER_HOME`` when set, so every run of an
    instance shares it, else in the user's cache directory."""
    home = os.environ.get("DAGSTER_HOME")
    if home:
        return Path(home) / "smsc_budget.sqlite3"
    return Path.home() / ".cache" / "smsc-dagster" / "budget.sqlite3"


def account_key(host: str, *, login: str | None = None, api_key: str | None = None) -> str:
    """The ledger key of an account: host plus login, or host plus a hash of the API key (never the key)."""
    if login:
        return f"{host}|login:{login}"
    if api_key:
        return f"{host}|apikey:{hashlib.sha256(api_key.encode()).hexdigest()[:16]}"
    raise ValueError("account_key needs a login or an api_key")


class RequestBudget:
    """Admits requests to one account at most ``requests_per_hour`` an hour and at most
    ``identical_per_minute`` identical ones a minute, across processes.

    Args:
        path: the SQLite ledger file; created with its parent directory if missing.
        key: the account key (see :func:`account_key`).
        requests_per_hour: rolling-hour limit.
        identical_per_minute: rolling-minute limit for requests with the same fingerprint.
        clock: time source; tests inject a fake or scaled clock.
        on_wait: called with (seconds, reason) before each wait, to tell the user when work resumes.
        margin_s: extra wait after a window frees, covering clock skew and latency to the server.
        logger: where the default ``on_wait`` logs (e.g. Dagster's ``context.log``).

    Example:
        >>> budget = RequestBudget("/tmp/budget.sqlite3", "smsc.kz|login:shop")
        >>> budget.acquire("get_messages start=01.11.2026 end=30.11.2026")  # blocks until allowed
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        key: str,
        *,
        requests_per_hour: int = 30,
        identical_per_minute: int = 3,
        clock: Clock | None = None,
        on_wait: Callable[[float, str], None] | None = None,
        margin_s: float = MARGIN_S,
        logger: logging.Logger | Any | None = None,
    ) -> None:
        if requests_per_hour < 1:
            raise ValueError(f"requests_per_hour must be at least 1, got {requests_per_hour}")
        if identical_per_minute < 1:
            raise ValueError(f"identical_per_minute must be at least 1, got {identical_per_minute}")
        self.path = Path(path)
        self.key = key
        self.requests_per_hour = requests_per_hour
        self.identical_per_minute = identical_per_minute
        self.clock = clock or SystemClock()
        self.on_wait = on_wait or self._log_wait
        self.log = logger or logging.getLogger("smsc_dagster")
        self.margin_s = margin_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.executescript(
                    """
                    CREATE TABLE IF NOT EXISTS requests (key TEXT NOT NULL, at REAL NOT NULL,
                                                         fingerprint TEXT NOT NULL);
                    CREATE INDEX IF NOT EXISTS requests_key_at ON requests (key, at);
                    CREATE TABLE IF NOT EXISTS cooldowns (key TEXT PRIMARY KEY, until REAL NOT NULL);
                    """
                )
        except (OSError, sqlite3.Error) as exc:
            raise SMSCBudgetError(f"cannot open the request-budget ledger at {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"RequestBudget(path={str(self.path)!r}, key={self.key!r}, "
            f"requests_per_hour={self.requests_per_hour}, identical_per_minute={self.identical_per_minute})"
        )

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, which takes the write lock up front so two
        # processes can never both read "29 used" and both send.
        return sqlite3.connect(self.path, timeout=60, isolation_level=None)

    def acquire(self, fingerprint: str) -> None:
        """Block until one more request with this fingerprint fits the budget, then record it as spent."""
        digest = hashlib.sha256(fingerprint.encode()).hexdigest()
        while True:
            wait, reason = self._try_acquire(digest)
            if wait <= 0:
                return
            self.on_wait(wait, reason)
            self.clock.sleep(wait)

    def _try_acquire(self, digest: str) -> tuple[float, str]:
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = self.clock.now()
            conn.execute("DELETE FROM requests WHERE at < ?", (now - 2 * HOUR_S,))
            row = conn.execute("SELECT until FROM cooldowns WHERE key = ?", (self.key,)).fetchone()
            if row and row[0] > now:
                conn.execute("COMMIT")
                return row[0] - now, "SMSC answered 'too many requests' (error 9); waiting it out"
            hour = [
                at
                for (at,) in conn.execute(
                    "SELECT at FROM requests WHERE key = ? AND at > ? ORDER BY at",
                    (self.key, now - HOUR_S),
                )
            ]
            same = [
                at
                for (at,) in conn.execute(
                    "SELECT at FROM requests WHERE key = ? AND fingerprint = ? AND at > ? ORDER BY at",
                    (self.key, digest, now - MINUTE_S),
                )
            ]
            wait, reason = 0.0, ""
            if len(hour) >= self.requests_per_hour:
                wait = hour[len(hour) - self.requests_per_hour] + HOUR_S + self.margin_s - now
                reason = f"{self.requests_per_hour} requests in the last hour spent"
            if len(same) >= self.identical_per_minute:
                same_wait = same[len(same) - self.identical_per_minute] + MINUTE_S + self.margin_s - now
                if same_wait > wait:
                    wait = same_wait
                    reason = f"{self.identical_per_minute} identical requests in the last minute"
            if wait <= 0:
                conn.execute(
                    "INSERT INTO requests (key, at, fingerprint) VALUES (?, ?, ?)", (self.key, now, digest)
                )
            conn.execute("COMMIT")
            return wait, reason
        except sqlite3.Error as exc:
            raise SMSCBudgetError(f"request-budget ledger at {self.path} failed: {exc}") from exc
        finally:
            conn.close()

    def cool_down(self, seconds: float) -> None:
        """Make every process wait ``seconds`` before its next request: the server said error 9 anyway
        (another machine may be spending the same account's budget)."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            until = self.clock.now() + seconds
            conn.execute(
                "INSERT INTO cooldowns (key, until) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET until = max(until, excluded.until)",
                (self.key, until),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _log_wait(self, seconds: float, reason: str) -> None:
        resume = dt.datetime.fromtimestamp(self.clock.now() + seconds).astimezone()
        self.log.info(
            "SMSC request budget: %s; waiting %.0f s, resuming at %s",
            reason,
            seconds,
            resume.strftime("%Y-%m-%d %H:%M:%S %Z"),
        )

    def spent_last_hour(self) -> int:
        """How many requests of this account the ledger holds for the last rolling hour."""
        conn = self._connect()
        try:
            (count,) = conn.execute(
                "SELECT count(*) FROM requests WHERE key = ? AND at > ?", (self.key, self.clock.now() - HOUR_S)
            ).fetchone()
            return int(count)
        finally:
            conn.close()
