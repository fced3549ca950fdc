"""The SMSC history client: HTTP, paging, error mapping, retries and the request budget in one plain class.

No Dagster here: the resource builds a client, and anyone can use the client on its own.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

from .budget import RequestBudget, account_key, default_budget_path
from .channels import Channel, get_channel
from .clock import Clock, SystemClock
from .dates import split_range
from .errors import (
    SMSCAuthError,
    SMSCBlockedError,
    SMSCError,
    SMSCParameterError,
    SMSCRateLimitError,
    SMSCResponseError,
    SMSCUnavailableError,
)
from .response import RawRows, digit_ints, excerpt, int_id_of, parse_body, parse_history_body

PAGE_SIZE = 1000
# Waits between attempts after a transport fault (connection, timeout, 5xx, garbled body), and after error 9.
RETRY_BASE_S = 2.0
RETRY_CAP_S = 60.0
RATE_LIMIT_BASE_S = 60.0
RATE_LIMIT_CAP_S = 3600.0


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``host`` as an IP address, or ``None`` when it is a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine (``localhost`` or a loopback address)."""
    address = host_address(host)
    return host == "localhost" or (address is not None and address.is_loopback)


@dataclass(frozen=True)
class HistoryPage:
    """One response of the history endpoint.

    Attributes:
        rows: the raw rows as SMSC sent them (``int_id`` as number or string, ``cost`` as string...): a list of
            dicts, or for the common page a :class:`~smsc_dagster.core.response.RawRows` (the same dicts, parsed
            when first read; the history asset converts its column texts instead), each
            ``int_id`` once per walk: the rows older than the cursor; of copies within the page, the one with
            the newest ``last_timestamp``.
        window: the ``(start, end)`` dates of the request, in the API's time zone.
        number: 1-based page number within the window.
        prev_id: the cursor this page was requested with (``None`` for a window's first page).
        last: ``True`` when this page ends its window's paging (a short page, or no rows).
        requests: HTTP requests this page cost, retries included.
        next_prev_id: the cursor of the window's next page (``None`` when ``last``).
        repeated: the page's other copies of ``int_id`` s: rows at or above the cursor (already served on an
            earlier page) and the older copies of an ``int_id`` repeated within the page. Possibly a newer
            version of a row already yielded; a store that keeps the newest version takes them too.
    """

    rows: Sequence[dict[str, Any]]
    window: tuple[dt.date, dt.date]
    number: int
    prev_id: int | None
    last: bool
    requests: int
    next_prev_id: int | None = None
    repeated: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cursor(self) -> tuple[dt.date, int | None]:
        """Where the walk continues after this page, for ``iter_history(resume=...)``: the same window at
        ``next_prev_id``, or after a window's last page the next (older) window from its start."""
        if self.last:
            return (self.window[0] - dt.timedelta(days=1), None)
        return (self.window[1], self.next_prev_id)


@dataclass
class ClientStats:
    """What a client has spent so far; the pipeline reports it as run metadata.

    ``requests`` counts history requests (the budgeted ones, retries included); ``balance_requests`` the
    currency look-ups, which SMSC limits separately.
    """

    requests: int = 0
    balance_requests: int = 0
    retries: int = 0
    pages: int = 0
    rows: int = 0
    faults: dict[str, int] = field(default_factory=dict)


class SMSCClient:
    """Reads an SMSC account's message history, each row once, within the account's request budget.

    Credentials go in POST bodies only and never appear in logs, exception texts or ``repr``.

    Args:
        login: account login (with ``password``).
        password: account password, or its lowercase MD5.
        api_key: API key, instead of login and password.
        base_url: ``https://smsc.kz`` or another SMSC host; plain ``http://`` only on loopback.
        timeout_s: timeout of one HTTP request.
        max_retries: retries after a transient failure (connection, timeout, HTTP 5xx, garbled body, error 9).
        budget: the request budget to spend; by default a ledger at ``budget_url`` or ``budget_path``.
        budget_path: the SQLite ledger file; default under ``DAGSTER_HOME`` (see :func:`default_budget_path`).
        budget_url: instead of ``budget_path``, a database URL of the ledger shared by several machines,
            e.g. ``postgresql://user:password@host:5432/db`` (see :class:`RequestBudget`).
        requests_per_hour: the account's hourly history limit.
        identical_per_minute: the limit on identical history requests a minute.
        clock: time source for waits; tests inject a fake one.
        logger: where progress and waits are logged.
        session: a ``requests.Session`` to reuse.

    Example:
        >>> client = SMSCClient(login="shop", password=os.environ["SMSC_PASSWORD"])
        >>> for page in client.iter_history(date(2026, 11, 1), date(2026, 11, 30)):
        ...     print(len(page.rows))
    """

    def __init__(
        self,
        *,
        login: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        base_url: str = "https://smsc.kz",
        timeout_s: float = 60.0,
        max_retries: int = 5,
        budget: RequestBudget | None = None,
        budget_path: str | None = None,
        budget_url: str | None = None,
        requests_per_hour: int = 30,
        identical_per_minute: int = 3,
        clock: Clock | None = None,
        logger: logging.Logger | Any | None = None,
        session: requests.Session | None = None,
    ) -> None:
        problem = credentials_problem(login=login, password=password, api_key=api_key)
        if problem:
            raise ValueError(f"SMSCClient: {problem}")
        self.base_url = validate_base_url(base_url)
        self.host = urlsplit(self.base_url).hostname or ""
        self.login = login
        self._password = password
        self._api_key = api_key
        self.timeout_s = timeout_s
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.max_retries = max_retries
        self.clock = clock or SystemClock()
        self.log = logger or logging.getLogger("smsc_dagster")
        self.session = session or requests.Session()
        # Who this client reads for, without the secret: the host and login, or the host and a hash of the key.
        self.account_id = account_key(urlsplit(self.base_url).netloc, login=login, api_key=api_key)
        if budget_path and budget_url:
            raise ValueError("SMSCClient: give budget_path or budget_url, not both")
        self.budget = budget or RequestBudget(
            budget_url or budget_path or default_budget_path(),
            self.account_id,
            requests_per_hour=requests_per_hour,
            identical_per_minute=identical_per_minute,
            clock=self.clock,
            logger=self.log,
        )
        self.stats = ClientStats()

    def __repr__(self) -> str:
        who = f"login={self.login!r}" if self.login else "api_key=***"
        return f"SMSCClient(base_url={self.base_url!r}, {who})"

    def __enter__(self) -> SMSCClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    # -- public calls ---------------------------------------------------------------------------------

    def iter_history(
        self,
        start: dt.date,
        end: dt.date,
        *,
        channel: str | Channel = "sms",
        phones: Sequence[str] | None = None,
        resume: tuple[dt.date, int | None] | None = None,
    ) -> Iterator[HistoryPage]:
        """Yield the pages of the account's history from ``start`` to ``end`` (inclusive dates, in the API's
        time zone), newest first, each row exactly once.

        Pages of 1000 rows are walked with ``prev_id`` = the smallest ``int_id`` seen so far until a short
        page; a range longer than six months is split into windows walked newest first.

        Args:
            start: first day.
            end: last day.
            channel: ``"sms"`` (format 0) or ``"email"`` (format 8).
            phones: only these recipients (phone numbers, or addresses for e-mail).
            resume: the :attr:`HistoryPage.cursor` of the last page handled by a walk that was interrupted:
                windows newer than its date are skipped and that window continues at its ``prev_id``, so
                nothing already read is requested again.
        """
        channel = get_channel(channel)
        params: dict[str, Any] = {"get_messages": 1, "format": channel.format, "cnt": PAGE_SIZE}
        if phones:
            params["email" if channel.name == "email" else "phone"] = ",".join(str(p) for p in phones)
        for window in split_range(start, end):
            if resume is not None:
                if window[1] > resume[0]:
                    continue
                if window[1] == resume[0] and resume[1] is not None:
                    yield from self._iter_window(window, params, prev_id=resume[1])
                    continue
            yield from self._iter_window(window, params)

    def get_currency(self) -> str:
        """The account's currency (``KZT``, ``RUB``...): history rows carry costs without one."""
        data = self._call("/sys/balance.php", {"cur": 1}, budgeted=False)
        if not isinstance(data, dict) or not data.get("currency"):
            shown = excerpt(str(data), self._secrets)
            raise SMSCResponseError(f"balance response has no currency: {shown!r}", excerpt=shown)
        return str(data["currency"])

    # -- paging ---------------------------------------------------------------------------------------

    def _iter_window(
        self, window: tuple[dt.date, dt.date], base: dict[str, Any], prev_id: int | None = None
    ) -> Iterator[HistoryPage]:
        number = 0
        while True:
            number += 1
            params = {**base, "start": window[0].strftime("%d.%m.%Y"), "end": window[1].strftime("%d.%m.%Y")}
            if prev_id is not None:
                params["prev_id"] = prev_id
            before = self.stats.requests
            try:
                data = self._call("/sys/get.php", params, budgeted=True, parse=parse_history_body)
            except SMSCError as exc:
                if exc.code != 3:
                    raise
                data = []  # error 3 "message not found": on history, simply no (more) rows
            if not isinstance(data, (list, RawRows)):
                raise SMSCResponseError(
                    f"history page {number} for {params['start']}-{params['end']} is a JSON "
                    f"{type(data).__name__}, not a list of rows"
                )
            rows, repeated, smallest = self._new_rows(data, prev_id, number)
            last = len(data) < PAGE_SIZE
            if not last and smallest is None:
                raise SMSCResponseError(
                    f"history page {number} was full but brought no row older than prev_id={prev_id}: "
                    "the server is not paging; stopping instead of looping"
                )
            self.stats.pages += 1
            self.stats.rows += len(rows)
            yield HistoryPage(
                rows=rows,
                window=window,
                number=number,
                prev_id=prev_id,
                last=last,
                requests=self.stats.requests - before,
                next_prev_id=None if last else smallest,
                repeated=repeated,
            )
            if last:
                return
            prev_id = smallest

    def _new_rows(
        self, data: list[Any], prev_id: int | None, number: int
    ) -> tuple[Sequence[dict[str, Any]], list[dict[str, Any]], int | None]:
        """The page's rows older than the cursor (each ``int_id`` once, its newest copy), the other copies,
        and the smallest ``int_id`` among the new rows."""
        ids = data.int_ids() if isinstance(data, RawRows) else _plain_int_ids(data)
        if ids is not None and (not ids or ((prev_id is None or ids[0] < prev_id) and _descending(ids))):
            # The common page: every int_id a plain number or digit string, each below the cursor, newest
            # first and none twice. The loop below would keep every row in order and repeat none.
            return data if type(data) in (list, RawRows) else list(data), [], ids[-1] if ids else None
        data = data.rows if isinstance(data, RawRows) else data
        rows: list[dict[str, Any]] = []
        repeated: list[dict[str, Any]] = []
        position: dict[int, int] = {}  # int_id -> index in rows
        smallest: int | None = None
        for index, row in enumerate(data):
            int_id = int_id_of(row)
            if int_id is None:
                raise SMSCResponseError(
                    f"row {index + 1} of history page {number} has no numeric int_id "
                    f"(got {row.get('int_id') if isinstance(row, dict) else type(row).__name__!r}); "
                    "without it the history cannot be paged or deduplicated"
                )
            if prev_id is not None and int_id >= prev_id:
                repeated.append(row)  # already served on an earlier page; perhaps a newer version of it
                continue
            if int_id in position:  # twice within the page: the newest last_timestamp goes to rows
                kept = position[int_id]
                if _last_change(row) > _last_change(rows[kept]):
                    repeated.append(rows[kept])
                    rows[kept] = row
                else:
                    repeated.append(row)
                continue
            position[int_id] = len(rows)
            rows.append(row)
            if smallest is None or int_id < smallest:
                smallest = int_id
        return rows, repeated, smallest

    # -- one call with retries ------------------------------------------------------------------------

    @property
    def _secrets(self) -> tuple[str | None, ...]:
        return (self._password, self._api_key)

    def _auth(self) -> dict[str, str]:
        if self._api_key:
            return {"apikey": self._api_key}
        return {"login": self.login or "", "psw": self._password or ""}

    def _call(
        self, path: str, params: dict[str, Any], *, budgeted: bool, parse: Callable[..., Any] = parse_body
    ) -> Any:
        """POST one API call, retrying transient failures; returns the JSON parsed by ``parse``."""
        fingerprint = f"{path}?" + "&".join(f"{k}={params[k]}" for k in sorted(params))
        attempts = 0
        rate_limited = 0
        use_backup = False
        while True:
            attempts += 1
            if budgeted:
                self.budget.acquire(fingerprint)
                self.stats.requests += 1
            else:
                self.stats.balance_requests += 1
            url = self._url(path, backup=use_backup)
            use_backup = False
            wait = self._backoff(attempts)
            try:
                return self._post(url, params, parse)
            except SMSCRateLimitError as exc:
                rate_limited += 1
                wait = min(RATE_LIMIT_BASE_S * 2 ** (rate_limited - 1), RATE_LIMIT_CAP_S)
                if budgeted:
                    self.budget.cool_down(wait)
                kind, problem = "error 9", f"{exc} (too many requests)"
            except (SMSCAuthError, SMSCBlockedError, SMSCParameterError) as exc:
                raise _with_advice(exc, attempts) from None
            except SMSCResponseError as exc:
                exc.attempts = attempts
                if not exc.retryable:
                    raise
                kind, problem = "garbled response", str(exc)
            except SMSCError as exc:
                exc.attempts = attempts
                raise
            except requests.ConnectionError as exc:
                kind, problem = "connection failure", f"connection failed: {_short(exc)}"
                use_backup = self._has_backup()
            except requests.Timeout:
                kind, problem = "timeout", f"no answer within {self.timeout_s:g} s"
            except _HTTPStatusError as exc:
                kind, problem = "HTTP 5xx", str(exc)
            self.stats.faults[kind] = self.stats.faults.get(kind, 0) + 1
            if attempts > self.max_retries:
                cls = SMSCRateLimitError if rate_limited == attempts else SMSCUnavailableError
                raise cls(
                    f"SMSC {path} failed after {attempts} attempts ({self.max_retries} retries); "
                    f"last problem: {problem}",
                    code=9 if cls is SMSCRateLimitError else None,
                    attempts=attempts,
                )
            self.stats.retries += 1
            self.log.warning("SMSC %s attempt %d failed: %s; retrying in %.0f s", path, attempts, problem, wait)
            self.clock.sleep(wait)

    def _backoff(self, attempt: int) -> float:
        return min(RETRY_BASE_S * 2 ** (attempt - 1), RETRY_CAP_S)

    def _post(self, url: str, params: dict[str, Any], parse: Callable[..., Any]) -> Any:
        body = {**params, **self._auth(), "fmt": 3, "charset": "utf-8"}
        response = self.session.post(url, data=body, timeout=self.timeout_s)
        try:
            if response.status_code >= 500:
                raise _HTTPStatusError(f"HTTP {response.status_code} from {urlsplit(url).netloc}")
            if response.status_code != 200:
                # The whole body is redacted before it is cut: a proxy page may echo the request form.
                shown = excerpt(response.text, self._secrets)
                kind = " (an HTML page)" if "html" in (response.headers.get("Content-Type") or "").lower() else ""
                raise SMSCResponseError(
                    f"HTTP {response.status_code}{kind} from {url}: {shown!r}",
                    excerpt=shown,
                    retryable=False,
                )
            return parse(response.content, response.headers.get("Content-Type"), self._secrets)
        finally:
            response.close()

    def _url(self, path: str, *, backup: bool) -> str:
        parts = urlsplit(self.base_url)
        netloc = f"www2.{parts.netloc}" if backup else parts.netloc
        return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}{path}"

    def _has_backup(self) -> bool:
        # SMSC documents www2.<host> as the backup host; it exists only for real names, not for addresses.
        return host_address(self.host) is None and self.host != "localhost" and not self.host.startswith("www2.")


def _plain_int_ids(data: list[Any]) -> list[int] | None:
    """Each row's ``int_id`` when every one is an ``int`` or a string of ASCII digits (what
    :func:`int_id_of` reads the same way), else ``None``."""
    try:
        values = list(map(_INT_ID, data)) if type(data) is list else [row["int_id"] for row in data]
    except (TypeError, KeyError):  # a row that is not an object, or has no int_id
        return None
    ids = digit_ints(values)  # the common page: non-negative numbers and digit strings, read in one pass
    if ids is not None:
        return ids
    ids = [v if type(v) is int else int(v) if type(v) is str and v.isascii() and v.isdigit() else None for v in values]
    return None if None in ids else ids  # type: ignore[return-value]


_INT_ID = operator.itemgetter("int_id")


def _descending(ids: list[int]) -> bool:
    """Whether every id is smaller than the one before it."""
    return all(map(operator.gt, ids, ids[1:]))


def _last_change(row: dict[str, Any]) -> int:
    """A row's ``last_timestamp`` for choosing between two copies: -1 when missing, 0 or not a number."""
    value = row.get("last_timestamp")
    try:
        seconds = int(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        return -1
    return seconds if seconds > 0 else -1


class _HTTPStatusError(Exception):
    """An HTTP 5xx: transient by nature, retried."""


def _short(exc: Exception) -> str:
    return type(exc).__name__ + (": " + str(exc).split("(Caused by")[-1].strip(" )")[:160] if str(exc) else "")


def _with_advice(exc: SMSCError, attempts: int) -> SMSCError:
    advice = {
        SMSCAuthError: (
            "check the login and password (or API key), and the account's IP allow-list; not retried, since "
            "five failed logins in 30 minutes block the IP for 30 minutes"
        ),
        SMSCBlockedError: (
            "SMSC has temporarily blocked this IP; wait at least 30 minutes before trying again, since every "
            "request meanwhile extends the block"
        ),
        SMSCParameterError: "the request was rejected as malformed; not retried",
    }[type(exc)]
    new = type(exc)(f"{exc} — {advice} (after {attempts} attempt{'s' if attempts != 1 else ''})", code=exc.code)
    new.attempts = attempts
    return new


def credentials_problem(*, login: str | None, password: str | None, api_key: str | None) -> str | None:
    """What is wrong with a set of credentials (``None`` when they can work): one rule for the client and
    the resource."""
    if api_key:
        return "set either api_key or login and password, not both" if login or password else None
    if login and password:
        return None
    missing = "password" if login else "login" if password else "api_key, or login and password"
    return f"no SMSC credentials: {missing} missing"


def validate_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, or a ``ValueError`` that says what is wrong with it."""
    try:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
    except ValueError:  # e.g. an unbalanced [ of an IPv6 host
        parts = None
    if parts is None:
        raise ValueError(f"base_url must look like https://smsc.kz, got {base_url!r}")
    if parts.username or parts.password or parts.query:
        raise ValueError("base_url must not carry credentials or a query string; configure login/password or api_key")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base_url must look like https://smsc.kz, got {base_url!r}")
    try:
        port = parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"base_url has a port that is not a number in 1..65535: {base_url!r}")
    if parts.fragment:
        raise ValueError(f"base_url must not carry a #fragment, got {base_url!r}")
    if parts.scheme != "https" and not is_loopback(parts.hostname):
        raise ValueError(
            f"base_url must use https:// (credentials travel in the request body); plain http is allowed only "
            f"for loopback hosts such as the simulator, got {base_url!r}"
        )
    return base_url.rstrip("/")
