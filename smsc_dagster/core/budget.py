"""A request budget shared by every process, on one machine or many, that talks to one SMSC account.

SMSC allows 30 history requests an hour and 3 identical ones a minute per account; exceeding either earns
error 9 and, if repeated, a blocked IP. Every run, schedule and backfill of an account spends the same
budget, so the ledger lives in one database that all of them reach, and each request is admitted inside a
transaction that serialises the admissions of its account:

* a SQLite file (the default, for one machine): the transaction starts with ``BEGIN IMMEDIATE``, which takes
  the file's write lock up front;
* a PostgreSQL database (``postgresql://user:password@host/db``, for runs on several machines): the
  transaction locks the account's row (``SELECT ... FOR UPDATE``), created once with
  ``INSERT ... ON CONFLICT DO NOTHING``; every admission of that account, from any machine, waits for it.

One implementation serves both (SQLAlchemy Core). The ledger key names the account without its secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from .clock import Clock, SystemClock
from .errors import SMSCBudgetError

HOUR_S = 3600.0
MINUTE_S = 60.0
# Added to every computed wait so that clock skew between us and the server never lets a request in
# a hair before the server's window has moved.
MARGIN_S = 2.0
# Rows older than this are deleted when the account admits its next request.
KEEP_S = 2 * HOUR_S
# Serialises CREATE TABLE between processes creating the PostgreSQL ledger at the same moment
# (pg_advisory_xact_lock's key space is per database; this number is "SMSC" in ASCII).
SCHEMA_LOCK_ID = 0x534D5343

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


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


def is_budget_url(value: str | os.PathLike[str]) -> bool:
    """``True`` for a database URL (``postgresql://...``, ``sqlite:///...``), ``False`` for a file path."""
    return isinstance(value, str) and bool(_URL_RE.match(value))


def ledger_url(url_or_path: str | os.PathLike[str]) -> sa.URL:
    """The SQLAlchemy URL of a ledger given as a SQLite file path or a database URL.

    A plain ``postgresql://`` (or ``postgres://``) URL gets the psycopg2 driver that dagster-postgres
    installs; a URL naming its driver (``postgresql+psycopg://``) keeps it.

    Raises:
        SMSCBudgetError: a URL that cannot be parsed, an in-memory SQLite database (it cannot be shared), or a
            database other than SQLite and PostgreSQL. The message never holds the password.
    """
    if not is_budget_url(url_or_path):
        return sa.URL.create("sqlite", database=str(Path(url_or_path)))
    text = str(url_or_path)
    try:
        url = sa.make_url(text)
    except (sa.exc.ArgumentError, ValueError):
        scheme = text.split("://", 1)[0]
        raise SMSCBudgetError(
            f"the request-budget URL ({scheme}://...) cannot be parsed; expected e.g. "
            "postgresql://user:password@host:5432/database or sqlite:////path/to/budget.sqlite3"
        ) from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg2")
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database in (None, "", ":memory:"):
        raise SMSCBudgetError(
            "the request-budget ledger must be a file every process can open, not an in-memory SQLite "
            "database: use sqlite:////path/to/budget.sqlite3 or a file path"
        )
    if backend not in ("sqlite", "postgresql"):
        raise SMSCBudgetError(
            f"the request-budget ledger supports SQLite and PostgreSQL, not {backend!r} "
            f"({url.render_as_string(hide_password=True)})"
        )
    return url


# -- the schema -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Schema:
    metadata: sa.MetaData
    requests: sa.Table
    accounts: sa.Table  # one row per account: its cool-down, and the row admissions lock


def _schema(prefix: str) -> _Schema:
    """The ledger's tables. SQLite keeps the names of the original ledger file (``requests``, ``cooldowns``)
    so an existing file goes on counting; a shared database gets them prefixed with ``smsc_budget_``."""
    metadata = sa.MetaData()
    requests = sa.Table(
        f"{prefix}requests",
        metadata,
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
    )
    sa.Index(f"{prefix}requests_key_at", requests.c.key, requests.c.at)
    accounts = sa.Table(
        f"{prefix}cooldowns",
        metadata,
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("until", sa.Float, nullable=False),
    )
    return _Schema(metadata, requests, accounts)


_SCHEMAS = {"sqlite": _schema(""), "postgresql": _schema("smsc_budget_")}


# -- engines: one per URL per process ---------------------------------------------------------------------

_ENGINES: dict[tuple[int, str], sa.Engine] = {}
_ENGINES_LOCK = threading.Lock()
# Execution option of a read-only connection (SQLite: a deferred BEGIN, which takes no write lock).
_READ = "smsc_budget_read"


def _engine_for(url: sa.URL) -> sa.Engine:
    """The process's engine for ``url``. NullPool: a connection per transaction, none held between requests
    (30 an hour need no pool, and nothing is inherited by a forked process)."""
    cache_key = (os.getpid(), url.render_as_string(hide_password=False))
    with _ENGINES_LOCK:
        engine = _ENGINES.get(cache_key)
        if engine is None:
            engine = _ENGINES[cache_key] = _create_engine(url)
        return engine


def _create_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, poolclass=NullPool, connect_args={"timeout": 60})

        # pysqlite begins transactions late and on its own terms; take that over (SQLAlchemy's documented
        # recipe) so that every transaction is BEGIN IMMEDIATE: the write lock is taken before anything is
        # read, and two processes can never both read "29 used" and both send.
        @sa.event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, connection_record: Any) -> None:
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine, "begin")
        def _begin_immediate(conn: sa.Connection) -> None:
            # A read (``_READ``) begins deferred instead, so counting never waits for an admission.
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ) else "BEGIN IMMEDIATE")

        return engine
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "psycopg2" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 15
    # READ COMMITTED whatever the server's default: each statement after the row lock sees what the previous
    # holder committed.
    return sa.create_engine(url, poolclass=NullPool, isolation_level="READ COMMITTED", connect_args=connect_args)


class RequestBudget:
    """Admits requests to one account at most ``requests_per_hour`` an hour and at most
    ``identical_per_minute`` identical ones a minute, across processes and machines.

    Args:
        url_or_path: where the ledger lives: a SQLite file path (created with its parent directory if
            missing), or a database URL: ``sqlite:////abs/path.sqlite3``, or
            ``postgresql://user:password@host:5432/db`` for processes on several machines. Tables are
            created when missing.
        key: the account key (see :func:`account_key`).
        requests_per_hour: rolling-hour limit.
        identical_per_minute: rolling-minute limit for requests with the same fingerprint.
        clock: time source; tests inject a fake or scaled clock. Every process sharing a ledger must agree
            on the time (machines: NTP).
        on_wait: called with (seconds, reason) before each wait, to tell the user when work resumes.
        margin_s: extra wait after a window frees, covering clock skew and latency to the server (default
            2 s of real time: on a clock that runs ``speed`` times faster than real time, 2 x ``speed`` of
            its seconds, since the latency it covers is real).
        logger: where the default ``on_wait`` logs (e.g. Dagster's ``context.log``).

    Attributes:
        path: the SQLite file, or ``None`` for another database.
        url: the ledger's URL with the password masked: safe to log.

    Raises:
        SMSCBudgetError: the ledger cannot be opened or created (the message never holds a password).

    Example:
        >>> budget = RequestBudget("/tmp/budget.sqlite3", "smsc.kz|login:shop")
        >>> budget.acquire("get_messages start=01.11.2026 end=30.11.2026")  # blocks until allowed
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        key: str,
        *,
        requests_per_hour: int = 30,
        identical_per_minute: int = 3,
        clock: Clock | None = None,
        on_wait: Callable[[float, str], None] | None = None,
        margin_s: float | None = None,
        logger: logging.Logger | Any | None = None,
    ) -> None:
        if requests_per_hour < 1:
            raise ValueError(f"requests_per_hour must be at least 1, got {requests_per_hour}")
        if identical_per_minute < 1:
            raise ValueError(f"identical_per_minute must be at least 1, got {identical_per_minute}")
        self._url = ledger_url(url_or_path)
        self._dialect = self._url.get_backend_name()
        self.path = Path(self._url.database) if self._dialect == "sqlite" and self._url.database else None
        self.url = self._url.render_as_string(hide_password=True)
        self.key = key
        self.requests_per_hour = requests_per_hour
        self.identical_per_minute = identical_per_minute
        self.clock = clock or SystemClock()
        self.on_wait = on_wait or self._log_wait
        self.log = logger or logging.getLogger("smsc_dagster")
        self.margin_s = MARGIN_S * float(getattr(self.clock, "speed", 1.0)) if margin_s is None else margin_s
        self._schema = _SCHEMAS[self._dialect]
        self._open()

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path is not None else f"url={self.url!r}"
        return (
            f"RequestBudget({where}, key={self.key!r}, "
            f"requests_per_hour={self.requests_per_hour}, identical_per_minute={self.identical_per_minute})"
        )

    @property
    def _where(self) -> str:
        return f"at {self.path}" if self.path is not None else f"at {self.url}"

    def _scrub(self, exc: BaseException) -> str:
        """The driver's message of ``exc`` (not SQLAlchemy's SQL dump), without the password."""
        text = str(getattr(exc, "orig", None) or exc).strip()
        password = self._url.password
        if password:
            for form in {str(password), quote(str(password), safe=""), quote_plus(str(password))}:
                text = text.replace(form, "***")
        return text

    def _open(self) -> None:
        """Create the ledger's file and tables when missing."""
        try:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = _engine_for(self._url)
            for attempt in range(3):
                try:
                    with self._engine.begin() as conn:
                        if self._dialect == "postgresql":
                            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK_ID})
                        self._schema.metadata.create_all(conn, checkfirst=True)
                    return
                except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                    # Another process created the tables between our check and our CREATE (possible only
                    # with a tool that does not take the lock above); the next check sees them.
                    if attempt == 2:
                        raise
        except ImportError as exc:  # the URL's database driver (psycopg2 comes with dagster-postgres)
            raise SMSCBudgetError(
                f"cannot open the request-budget ledger {self._where}: its database driver is not installed "
                f"({exc}); for PostgreSQL install dagster-postgres (psycopg2)"
            ) from None
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise SMSCBudgetError(f"cannot open the request-budget ledger {self._where}: {self._scrub(exc)}") from None

    @contextmanager
    def _locked(self, what: str) -> Iterator[tuple[sa.Connection, float]]:
        """A transaction holding the account's lock, and the account's cool-down end (0 for none).

        SQLite: BEGIN IMMEDIATE already excludes every other writer. PostgreSQL: the account's row is
        created if missing (ON CONFLICT DO NOTHING waits for a concurrent creator) and locked FOR UPDATE, so
        admissions of one account queue on it while other accounts go on.
        """
        accounts = self._schema.accounts
        try:
            with self._engine.begin() as conn:
                insert = _insert_ignoring_conflicts(self._dialect, accounts, key=self.key, until=0.0)
                conn.execute(insert)
                until = conn.execute(
                    sa.select(accounts.c.until).where(accounts.c.key == self.key).with_for_update()
                ).scalar_one()
                yield conn, float(until)
        except sa.exc.SQLAlchemyError as exc:
            raise SMSCBudgetError(f"request-budget ledger {self._where} failed to {what}: {self._scrub(exc)}") from None

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
        requests = self._schema.requests
        with self._locked("admit a request") as (conn, until):
            now = self.clock.now()  # read under the lock: the previous holder's request is committed
            if until > now:
                return until - now, "SMSC answered 'too many requests' (error 9); waiting it out"
            conn.execute(sa.delete(requests).where(requests.c.key == self.key, requests.c.at < now - KEEP_S))
            mine = sa.select(requests.c.at).where(requests.c.key == self.key).order_by(requests.c.at)
            hour = list(conn.execute(mine.where(requests.c.at > now - HOUR_S)).scalars())
            same = list(
                conn.execute(mine.where(requests.c.fingerprint == digest, requests.c.at > now - MINUTE_S)).scalars()
            )
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
                conn.execute(sa.insert(requests).values(key=self.key, at=now, fingerprint=digest))
            return wait, reason

    def cool_down(self, seconds: float) -> None:
        """Make every process wait ``seconds`` before its next request: the server said error 9 anyway
        (another machine may be spending the same account's budget)."""
        accounts = self._schema.accounts
        with self._locked("record a cool-down") as (conn, until):
            new_until = self.clock.now() + seconds
            if new_until > until:
                conn.execute(sa.update(accounts).where(accounts.c.key == self.key).values(until=new_until))

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
        return len(self.admitted_since(self.clock.now() - HOUR_S))

    def admitted_since(self, since: float) -> list[float]:
        """The admission times (clock seconds) of this account's requests after ``since``, oldest first;
        the ledger keeps about two hours of them."""
        requests = self._schema.requests
        try:
            with self._engine.connect().execution_options(**{_READ: True}) as conn:
                return [
                    float(at)
                    for at in conn.execute(
                        sa.select(requests.c.at)
                        .where(requests.c.key == self.key, requests.c.at > since)
                        .order_by(requests.c.at)
                    ).scalars()
                ]
        except sa.exc.SQLAlchemyError as exc:
            raise SMSCBudgetError(f"request-budget ledger {self._where} failed to count requests: {self._scrub(exc)}") from None


def _insert_ignoring_conflicts(dialect: str, table: sa.Table, **values: Any) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the ledger's dialect."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).values(**values).on_conflict_do_nothing()
