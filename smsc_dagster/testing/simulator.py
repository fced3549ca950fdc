"""A local HTTP server that behaves like SMSC's ``/sys/get.php`` history API and ``/sys/balance.php``.

It exists so the client, the request budget and the pipeline can be tested against the real protocol (HTTP,
charsets, every ``fmt``, error codes, rate limits, paging) and against the failures a real network produces,
with time driven by an injectable :class:`~smsc_dagster.core.clock.Clock` so an hour of traffic takes milliseconds.
"""

from __future__ import annotations

import argparse
import codecs
import hashlib
import json
import logging
import math
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape as xml_escape

from smsc_dagster.core.clock import Clock, SystemClock
from smsc_dagster.core.dates import add_months
from smsc_dagster.testing.account import ROW_FIELDS, SimulatedAccount

__all__ = [
    "ALL_FAULT_KINDS",
    "EXTRA_FAULT_KINDS",
    "FAULT_KINDS",
    "FaultPlan",
    "RequestRecord",
    "SMSCSimulator",
    "serve_forever",
]

logger = logging.getLogger(__name__)

# The kinds random faults are drawn from by default (scripts/fault_matrix.py walks them too). Keep it stable:
# seeded fault plans draw from it, so a new kind here would change every seeded run.
FAULT_KINDS = ("http_500", "http_502", "http_503", "reset", "slow", "truncated_json", "html", "error_4", "error_9")
# Kinds that must be asked for by name (a schedule, or ``kinds``): "echo_403" is a proxy that refuses the
# request with an HTML page echoing the raw request body, credentials and all.
EXTRA_FAULT_KINDS = ("echo_403",)
ALL_FAULT_KINDS = FAULT_KINDS + EXTRA_FAULT_KINDS

HISTORY_PATH = "/sys/get.php"
BALANCE_PATH = "/sys/balance.php"

_SECRET_PARAMS = ("login", "psw", "apikey")
_CHARSETS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "koi8-r": "koi8-r",
    "koi8r": "koi8-r",
    "windows-1251": "windows-1251",
    "cp1251": "windows-1251",
    "win-1251": "windows-1251",
}
_DEFAULT_CHARSET = "windows-1251"
_DATE_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_REDACT_RE = re.compile(r"(psw|apikey|login)=[^&\s'\"]*", re.IGNORECASE)

_ERROR_TEXT = {
    1: "parameters error",
    2: "authorise error",
    3: "message not found",
    4: "IP blocked",
    9: "duplicate request, wait a minute",
}
_TOO_MANY = "too many requests, wait a minute"
_TOO_MANY_CONCURRENT = "too many concurrent requests"

_AUTH_FAILURES_TO_BLOCK = 5
_AUTH_WINDOW = 30 * 60.0
_BLOCK_SECONDS = 30 * 60.0

_HTTP_REASONS = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Temporarily Unavailable"}


def _html_page(title: str, text: str) -> bytes:
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        f"<p>{text}</p>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    ).encode("utf-8")


_MAINTENANCE_PAGE = (
    "<!DOCTYPE html>\r\n<html><head><meta charset=\"utf-8\"><title>502 Bad Gateway</title></head>\r\n"
    "<body><h1>502 Bad Gateway</h1><p>Сервис временно недоступен, ведутся технические работы. "
    "Повторите запрос позже.</p><hr><center>nginx</center></body></html>\r\n"
).encode("utf-8")


def _echo_page(body: bytes, params: Mapping[str, str]) -> bytes:
    """A careless WAF's refusal: the raw request body, and its fields decoded, pasted into the page."""
    fields = "; ".join(f"{k}: {v}" for k, v in params.items())
    return (
        b"<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<h1>403 Forbidden</h1>\r\n"
        b"<p>Request blocked: " + body + b"</p>\r\n<p>Fields: " + fields.encode("utf-8")
        + b"</p>\r\n<hr><center>waf</center>\r\n</body>\r\n</html>\r\n"
    )


@dataclass(frozen=True)
class FaultPlan:
    """Which requests fail, and how: scheduled by request number, or at random with a fixed seed.

    Args:
        schedule: 1-based index of a request (counting only requests on ``paths``) -> fault kind.
        probability: Chance that an unscheduled request gets a fault.
        kinds: The kinds a random fault is drawn from.
        seed: Seeds the ``random.Random`` that draws random faults, so a run is reproducible.
        paths: The request paths faults apply to (and that are counted).
    """

    schedule: Mapping[int, str] = field(default_factory=dict)
    probability: float = 0.0
    kinds: Sequence[str] = FAULT_KINDS
    seed: int = 0
    paths: Sequence[str] = (HISTORY_PATH,)

    def __post_init__(self) -> None:
        schedule = dict(self.schedule)
        for index, kind in schedule.items():
            if kind not in ALL_FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r} at request {index}; expected one of {ALL_FAULT_KINDS}")
            if not isinstance(index, int) or index < 1:
                raise ValueError(f"fault schedule keys are 1-based request numbers, got {index!r}")
        kinds = tuple(self.kinds)
        for kind in kinds:
            if kind not in ALL_FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {ALL_FAULT_KINDS}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"fault probability must be within 0..1, got {self.probability!r}")
        if self.probability > 0 and not kinds:
            raise ValueError("a fault probability needs at least one kind")
        object.__setattr__(self, "schedule", schedule)
        object.__setattr__(self, "kinds", kinds)
        object.__setattr__(self, "paths", tuple(self.paths))

    def choose(self, index: int, rng: random.Random) -> str | None:
        """The fault for the ``index``-th counted request; ``rng`` is drawn only for unscheduled ones."""
        if index in self.schedule:
            return self.schedule[index]
        if self.probability > 0 and rng.random() < self.probability:
            return rng.choice(self.kinds)
        return None


@dataclass(frozen=True)
class RequestRecord:
    """One request as the simulator saw it, with every secret removed, so tests can assert on traffic.

    ``http_status`` is 0 when the connection was reset without a response.
    """

    path: str
    method: str
    params: dict[str, str]
    account: str | None
    time: float
    http_status: int
    error_code: int | None
    rows: int
    fault: str | None


@dataclass
class _Response:
    status: int
    content_type: str
    body: bytes
    error_code: int | None = None
    rows: int = 0
    reset: bool = False


def _account_label(params: Mapping[str, str]) -> str | None:
    """Who a request claims to be, without the secret: the login, or a short hash of the API key."""
    apikey = params.get("apikey")
    if apikey:
        return "apikey:" + hashlib.sha256(apikey.encode("utf-8")).hexdigest()[:4]
    return params.get("login")


def _parse_day(value: str) -> date | None:
    match = _DATE_RE.match(value.strip())
    if not match:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _cell(value: Any) -> str:
    """A value as the text formats print it (None -> empty, containers as JSON)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


_XML_TAG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def render_rows(rows: list[dict[str, Any]], fmt: int) -> str:
    """History rows in ``fmt`` 0-3, laid out as the official API page shows them."""
    if fmt == 3:
        return json.dumps(rows, ensure_ascii=False)
    lines: list[str] = []
    if fmt == 2:
        lines.append("<list>")
        for row in rows:
            lines.append("<sms>")
            keys = list(ROW_FIELDS) + [k for k in row if k not in ROW_FIELDS and _XML_TAG_RE.match(k)]
            for key in keys:
                lines.append(f"<{key}>{xml_escape(_cell(row.get(key)))}</{key}>")
            lines.append("</sms>")
        lines.append("</list>")
        return "\n".join(lines)
    for row in rows:
        g = row.get
        if fmt == 1:
            lines.append(
                ",".join(
                    _cell(g(k))
                    for k in ("status", "last_timestamp", "err", "send_timestamp", "phone", "mccmnc", "country")
                )
                + ","
                + ",".join(_cell(g(k)) for k in ("operator", "region", "cost", "sender_id", "status_name"))
                + ", "
                + ",".join(_cell(g(k)) for k in ("message", "type", "id", "int_id", "sms_cnt", "format", "crc"))
            )
        else:
            pairs = [
                ("Status", "status"),
                ("check_time", "last_date"),
                ("err", "err"),
                ("send_date", "send_date"),
                ("phone", "phone"),
                ("mccmnc", "mccmnc"),
                ("country", "country"),
                ("operator", "operator"),
                ("region", "region"),
                ("cost", "cost"),
                ("sender_id", "sender_id"),
                ("status_name", "status_name"),
                ("message", "message"),
                ("type", "type"),
                ("ID", "id"),
                ("int_id", "int_id"),
                ("sms_cnt", "sms_cnt"),
                ("format", "format"),
                ("crc", "crc"),
            ]
            extra = [(k, k) for k in row if k not in ROW_FIELDS]
            lines.append(", ".join(f"{label} = {_cell(g(key))}" for label, key in pairs + extra))
    return "\n".join(lines)


def render_error(code: int, description: str, fmt: int) -> str:
    """An API error in the form ``fmt`` uses."""
    if fmt == 3:
        return json.dumps({"error": description, "error_code": code}, ensure_ascii=False)
    if fmt == 2:
        return f"<result>\n<error>{xml_escape(description)}</error>\n<error_code>{code}</error_code>\n</result>"
    if fmt == 1:
        return f"0,-{code}"
    return f"ERROR = {code} ({description})"


def _content_type(fmt: int, charset: str) -> str:
    kind = {3: "application/json", 2: "text/xml"}.get(fmt, "text/plain")
    return f"{kind}; charset={charset}"


class _Limits:
    """Rate-limit and IP-block state, all read and changed under one lock so checks are exact."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.history: dict[str, deque[float]] = {}
        self.identical: dict[tuple[str, tuple[tuple[str, str], ...]], deque[float]] = {}
        self.balance: dict[str, deque[float]] = {}
        self.in_flight: dict[str, int] = {}
        self.auth_failures: dict[str, deque[float]] = {}
        self.blocked_until: dict[str, float] = {}


def _count_since(times: deque[float], since: float) -> int:
    """Entries newer than ``since``; drops the old ones (arrival order is nearly sorted)."""
    while times and times[0] <= since:
        times.popleft()
    return sum(1 for t in times if t > since)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""
    timeout = 30  # idle keep-alive connections end by themselves

    server: _Server

    def version_string(self) -> str:
        return "nginx"

    def setup(self) -> None:
        super().setup()
        self.server.sim._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._track(self.connection, False)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.sim._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self.server.sim._handle(self, "POST")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("%s %s -> %s", self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s", _REDACT_RE.sub(r"\1=***", format % args))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    sim: SMSCSimulator


class SMSCSimulator:
    """A threaded local SMSC server over a :class:`SimulatedAccount`, usable as a context manager.

    Args:
        account: The account served; default ``SimulatedAccount()``.
        accounts: More accounts served on the same host, each with its own login (or API key), history,
            balance and limits — as SMSC serves every customer on one host.
        clock: Time for rate limits, IP blocks, status settling and the request log; default wall clock.
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        faults: Injected failures; None for none.
        rate_limits: False turns off every rate limit (error 9), e.g. for benchmarks.
        requests_per_hour: Accepted history requests allowed in any rolling hour.
        identical_per_minute: Identical history requests allowed in any rolling minute.
        max_concurrent: This many requests in flight at once for the account is refused.
        balance_per_minute: Accepted balance requests allowed in any rolling minute.
        force_charset: Encode every response in this charset whatever the request asked.
        slow_seconds: Real seconds the "slow" fault waits before serving.
    """

    def __init__(
        self,
        account: SimulatedAccount | None = None,
        *,
        accounts: Sequence[SimulatedAccount] = (),
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultPlan | None = None,
        rate_limits: bool = True,
        requests_per_hour: int = 30,
        identical_per_minute: int = 3,
        max_concurrent: int = 15,
        balance_per_minute: int = 10,
        force_charset: str | None = None,
        slow_seconds: float = 3.0,
    ) -> None:
        if force_charset is not None:
            codecs.lookup(force_charset)  # fail now, not inside a request
        self.account = account if account is not None else SimulatedAccount()
        self.accounts: tuple[SimulatedAccount, ...] = (self.account, *accounts)
        logins = [a.login for a in self.accounts]
        if len(set(logins)) != len(logins):
            raise ValueError(f"simulated accounts need distinct logins, got {logins}")
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.host = host
        self._requested_port = port
        self.faults = faults
        self.rate_limits = rate_limits
        self.requests_per_hour = requests_per_hour
        self.identical_per_minute = identical_per_minute
        self.max_concurrent = max_concurrent
        self.balance_per_minute = balance_per_minute
        self.force_charset = force_charset
        self.slow_seconds = slow_seconds

        self._limits = _Limits()
        self._log_lock = threading.Lock()
        self._log: dict[int, RequestRecord | None] = {}  # arrival number -> record (None while in flight)
        self._arrivals = 0
        self._fault_index = 0
        self._fault_rng = random.Random(faults.seed if faults is not None else 0)
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "stopped"
        return f"SMSCSimulator({self.account!r}, {where})"

    # --------------------------------------------------------------------------------------- lifecycle

    def start(self) -> SMSCSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        server = _Server((self.host, self._requested_port), _Handler)
        server.sim = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"smsc-sim-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and close the listening socket."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        with self._log_lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> SMSCSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (only while started)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        return f"http://{self.host}:{self.port}"

    # ----------------------------------------------------------------------------------- observation

    @property
    def requests(self) -> list[RequestRecord]:
        """Every finished request in arrival order (a copy)."""
        with self._log_lock:
            return [r for r in self._log.values() if r is not None]

    def history_requests(self) -> list[RequestRecord]:
        """The ``get_messages`` requests to ``/sys/get.php`` only."""
        return [r for r in self.requests if r.path == HISTORY_PATH and r.params.get("get_messages") == "1"]

    def set_faults(self, faults: FaultPlan | None) -> None:
        """Replace the fault plan mid-test; its schedule counts requests from the next one on."""
        with self._log_lock:
            self.faults = faults
            self._fault_index = 0
            self._fault_rng = random.Random(faults.seed if faults is not None else 0)

    def reset_log(self) -> None:
        """Forget the logged requests (limits and fault counters are kept; requests in flight stay)."""
        with self._log_lock:
            self._log = {k: v for k, v in self._log.items() if v is None}

    def expected_rows(
        self, start_ts: float, end_ts: float, channel: str = "sms", account: SimulatedAccount | None = None
    ) -> list[dict[str, Any]]:
        """Ground truth at the simulator's current clock time: see :meth:`SimulatedAccount.rows_between`."""
        acc = account if account is not None else self.account
        return acc.rows_between(start_ts, end_ts, now=self.clock.now(), channel=channel)

    @property
    def in_flight(self) -> int:
        """Requests currently being served for the account (for tests of the concurrency limit)."""
        with self._limits.lock:
            return sum(self._limits.in_flight.values())

    @property
    def unfinished(self) -> int:
        """Requests received and not yet in :attr:`requests` (answered and logged): every request being served,
        including one past :attr:`in_flight`'s count but not logged yet."""
        with self._log_lock:
            return sum(record is None for record in self._log.values())

    # ----------------------------------------------------------------------------------------- serving

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._log_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _open_slot(self) -> int:
        with self._log_lock:
            self._arrivals += 1
            self._log[self._arrivals] = None
            return self._arrivals

    def _close_slot(self, slot: int, record: RequestRecord) -> None:
        with self._log_lock:
            self._log[slot] = record

    def _handle(self, h: _Handler, method: str) -> None:
        now = self.clock.now()
        slot = self._open_slot()
        split = urlsplit(h.path)
        path = split.path
        try:
            length = int(h.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        body = h.rfile.read(length) if length > 0 else b""
        params: dict[str, str] = dict(parse_qsl(split.query, keep_blank_values=True))
        ctype = (h.headers.get("Content-Type") or "").lower()
        if body and (not ctype or "application/x-www-form-urlencoded" in ctype):
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))

        fault: str | None = None
        if self.faults is not None and path in self.faults.paths:
            with self._log_lock:
                self._fault_index += 1
                fault = self.faults.choose(self._fault_index, self._fault_rng)

        try:
            response = self._respond(h, path, params, now, fault, body=body)
        except Exception:  # pragma: no cover - a bug in the simulator must still answer
            logger.exception("simulator failed on %s", path)
            response = _Response(500, "text/html; charset=utf-8", _html_page("500 Internal Server Error", ""))
        if fault == "truncated_json":
            response.body = response.body[: len(response.body) // 2]

        safe_params = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
        self._close_slot(
            slot,
            RequestRecord(
                path=path,
                method=method,
                params=safe_params,
                account=_account_label(params),
                time=now,
                http_status=0 if response.reset else response.status,
                error_code=response.error_code,
                rows=response.rows,
                fault=fault,
            ),
        )
        if response.reset:
            self._reset(h)
            return
        try:
            h.send_response(response.status)
            h.send_header("Content-Type", response.content_type)
            h.send_header("Content-Length", str(len(response.body)))
            h.end_headers()
            h.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    @staticmethod
    def _reset(h: _Handler) -> None:
        """Abort the connection so the client sees a reset, not a clean close."""
        h.close_connection = True
        conn = h.connection
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.close()
        h.rfile.close()  # the last reference: the socket really closes now, with an RST

    def _charset(self, params: Mapping[str, str]) -> str:
        if self.force_charset is not None:
            return self.force_charset
        return _CHARSETS.get(params.get("charset", "").strip().lower(), _DEFAULT_CHARSET)

    @staticmethod
    def _fmt(params: Mapping[str, str]) -> int:
        try:
            fmt = int(params.get("fmt", "0") or 0)
        except ValueError:
            return 0
        return fmt if fmt in (0, 1, 2, 3) else 0

    def _text(self, text: str, fmt: int, charset: str, *, error: int | None = None, rows: int = 0) -> _Response:
        return _Response(
            200, _content_type(fmt, charset), text.encode(charset, errors="replace"), error_code=error, rows=rows
        )

    def _error(self, code: int, fmt: int, charset: str, description: str | None = None) -> _Response:
        return self._text(render_error(code, description or _ERROR_TEXT[code], fmt), fmt, charset, error=code)

    def _respond(
        self, h: _Handler, path: str, params: dict[str, str], now: float, fault: str | None, *, body: bytes = b""
    ) -> _Response:
        if path not in (HISTORY_PATH, BALANCE_PATH):
            return _Response(404, "text/html; charset=utf-8", _html_page("404 Not Found", "The page was not found."))
        fmt = self._fmt(params)
        charset = self._charset(params)

        # Faults come from the infrastructure in front of the API: they preempt everything.
        if fault in ("http_500", "http_502", "http_503"):
            status = int(fault[-3:])
            title = f"{status} {_HTTP_REASONS[status]}"
            return _Response(status, "text/html; charset=utf-8", _html_page(title, title))
        if fault == "reset":
            return _Response(0, "", b"", reset=True)
        if fault == "html":
            return _Response(200, "text/html; charset=utf-8", _MAINTENANCE_PAGE)
        if fault == "echo_403":
            return _Response(403, "text/html; charset=utf-8", _echo_page(body, params))
        if fault == "error_4":
            return self._error(4, fmt, charset)
        if fault == "error_9":
            return self._error(9, fmt, charset)

        ip = h.client_address[0]
        limits = self._limits
        with limits.lock:
            if now < limits.blocked_until.get(ip, -math.inf):
                return self._error(4, fmt, charset)
        acc = self._authenticated(params)
        if acc is None:
            with limits.lock:
                failures = limits.auth_failures.setdefault(ip, deque())
                failures.append(now)
                if _count_since(failures, now - _AUTH_WINDOW) >= _AUTH_FAILURES_TO_BLOCK:
                    limits.blocked_until[ip] = now + _BLOCK_SECONDS
                    failures.clear()
            return self._error(2, fmt, charset)

        who = acc.login
        with limits.lock:
            if self.rate_limits and limits.in_flight.get(who, 0) + 1 >= self.max_concurrent:
                return self._error(9, fmt, charset, _TOO_MANY_CONCURRENT)
            limits.in_flight[who] = limits.in_flight.get(who, 0) + 1
        try:
            if fault == "slow":
                time.sleep(self.slow_seconds)
            if path == BALANCE_PATH:
                return self._balance(acc, params, now, fmt, charset)
            if params.get("get_messages") != "1":
                return self._error(1, fmt, charset)
            refused = self._admit_history(acc, params, now, count=fault != "truncated_json")
            if refused is not None:
                return self._error(9, fmt, charset, refused)
            return self._history(acc, params, now, fmt, charset)
        finally:
            with limits.lock:
                limits.in_flight[who] -= 1

    def _authenticated(self, params: Mapping[str, str]) -> SimulatedAccount | None:
        """The account the credentials open, or ``None``."""
        apikey = params.get("apikey")
        if apikey:
            return next((a for a in self.accounts if a.check_api_key(apikey)), None)
        login, psw = params.get("login"), params.get("psw")
        if login is None or psw is None:
            return None
        return next((a for a in self.accounts if a.login == login and a.check_password(psw)), None)

    def _admit_history(self, acc: SimulatedAccount, params: Mapping[str, str], now: float, *, count: bool) -> str | None:
        """Apply the identical-per-minute and per-hour limits; record an admitted request if ``count``.

        Returns the error description when refused. Windows are half-open, ``(now - window, now]``: a request
        exactly one hour after another no longer shares its hour.
        """
        if not self.rate_limits:
            return None
        who = acc.login
        key = (who, tuple(sorted((k, v) for k, v in params.items() if k not in _SECRET_PARAMS)))
        limits = self._limits
        with limits.lock:
            same = limits.identical.setdefault(key, deque())
            hourly = limits.history.setdefault(who, deque())
            if _count_since(same, now - 60.0) >= self.identical_per_minute:
                return _ERROR_TEXT[9]
            if _count_since(hourly, now - 3600.0) >= self.requests_per_hour:
                return _TOO_MANY
            if count:
                same.append(now)
                hourly.append(now)
            if len(limits.identical) > 10_000:  # forget keys whose minute has passed
                for k in [k for k, v in limits.identical.items() if not v or v[-1] <= now - 60.0]:
                    del limits.identical[k]
        return None

    def _balance(self, acc: SimulatedAccount, params: Mapping[str, str], now: float, fmt: int, charset: str) -> _Response:
        if self.rate_limits:
            with self._limits.lock:
                times = self._limits.balance.setdefault(acc.login, deque())
                if _count_since(times, now - 60.0) >= self.balance_per_minute:
                    return self._error(9, fmt, charset, _TOO_MANY)
                times.append(now)
        balance = acc.balance
        currency = acc.currency if params.get("cur") == "1" else None
        if fmt == 3:
            payload: dict[str, str] = {"balance": balance}
            if currency:
                payload["currency"] = currency
            text = json.dumps(payload, ensure_ascii=False)
        elif fmt == 2:
            text = f"<result>\n<balance>{balance}</balance>\n" + (
                f"<currency>{currency}</currency>\n" if currency else ""
            ) + "</result>"
        elif fmt == 1:
            text = balance + (f",{currency}" if currency else "")
        else:
            text = balance + (f", {currency}" if currency else "")
        return self._text(text, fmt, charset)

    def _history(self, acc: SimulatedAccount, params: Mapping[str, str], now: float, fmt: int, charset: str) -> _Response:
        bad = self._error(1, fmt, charset)
        fmt_kind = (params.get("format") or "0").strip()
        if fmt_kind not in ("0", "8"):
            return bad
        channel = "email" if fmt_kind == "8" else "sms"
        try:
            cnt = int(params.get("cnt") or 1000)
            prev_raw = params.get("prev_id")
            prev_id = int(prev_raw) if prev_raw not in (None, "") else None
        except ValueError:
            return bad
        if not 1 <= cnt <= 1000:
            return bad

        start_raw, end_raw = params.get("start"), params.get("end")
        start_day = _parse_day(start_raw) if start_raw else None
        end_day = _parse_day(end_raw) if end_raw else None
        if (start_raw and start_day is None) or (end_raw and end_day is None):
            return bad
        if start_day is not None:
            last_day = end_day if end_day is not None else start_day
            if last_day < start_day or last_day > add_months(start_day, 6):
                return bad
            start_ts, end_ts = acc.day_range(start_day, last_day)
        else:
            # No start: the newest messages, at most six months back.
            anchor = end_day if end_day is not None else acc.local_date(now)
            start_ts = acc.day_start(add_months(anchor, -6))
            end_ts = acc.day_start(end_day + timedelta(days=1)) if end_day is not None else math.inf

        phones = params.get("phone")
        emails = params.get("email")
        rows = acc.history(
            start_ts,
            end_ts,
            now=now,
            channel=channel,
            cnt=cnt,
            prev_id=prev_id,
            phones=phones.split(",") if phones and channel == "sms" else None,
            emails=emails.split(",") if emails and channel == "email" else None,
        )
        if not rows:
            return self._error(3, fmt, charset)
        return self._text(render_rows(rows, fmt), fmt, charset, rows=len(rows))


def serve_forever(port: int, seed: int, host: str = "127.0.0.1") -> None:
    """Run a simulator on wall-clock time until Ctrl-C, for trying the pipeline by hand."""
    account = SimulatedAccount(seed=seed)
    with SMSCSimulator(account, host=host, port=port) as sim:
        print(f"SMSC simulator listening on {sim.base_url}  (seed={seed})", flush=True)
        print(f"demo credentials (simulator only): login={account.login} psw={account.password}", flush=True)
        print(f"try: {sim.base_url}{HISTORY_PATH}?get_messages=1&fmt=3&charset=utf-8&cnt=5&login=...&psw=...")
        print("Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m smsc_dagster.testing.simulator [--port N] [--seed N] [--host H]``."""
    parser = argparse.ArgumentParser(description="Local SMSC.kz history API simulator")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    serve_forever(args.port, args.seed, host=args.host)


if __name__ == "__main__":
    main()
