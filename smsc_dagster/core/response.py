"""Turning SMSC response bytes into rows or exceptions.

Kept apart from the HTTP code so the same parsing serves the client, the benchmarks and anyone holding
recorded bodies. SMSC answers errors with HTTP 200, defaults to windows-1251, and sometimes a proxy in front
of it answers with an HTML page: all of that is sorted out here.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any
from urllib.parse import quote, quote_plus

import msgspec
import numpy as np

from .errors import ERROR_CLASSES, SMSCError, SMSCResponseError

try:  # a declared dependency; without it every body takes the standard library's path (same results, slower)
    import orjson
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

# The charset SMSC uses when the request names none and, per recorded responses, what its header says then.
DEFAULT_CHARSET = "windows-1251"
EXCERPT_CHARS = 200
_CHARSET_RE = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)


def charset_of(content_type: str | None) -> str:
    """The charset named by a ``Content-Type`` header, or SMSC's default when it names none we know."""
    match = _CHARSET_RE.search(content_type or "")
    if match:
        try:
            return codecs.lookup(match.group(1)).name
        except LookupError:
            pass
    return DEFAULT_CHARSET


# The value of a credential parameter, whatever it looks like and whoever put it there (a proxy echoing the
# form, an error page quoting the URL): ``psw=...``, ``psw%3D...``, ``"psw": "..."``, ``psw: ...``. A quoted
# value runs to its closing quote, a bare one to the next ``&``, whitespace, quote, tag or separator.
_CREDENTIAL_RE = re.compile(
    r"""(?<![A-Za-z0-9_])(psw|apikey|login)(["']?\s*(?:=|%3D|:)\s*)"""
    r"""("(?:[^"\\]|\\.)*"?|'[^']*'?|&quot;.*?(?:&quot;|$)|[^&\s"'<>,;}\]]*)""",
    re.IGNORECASE,
)
_PERCENT_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_WHITESPACE_RE = re.compile(r"\s+")


def _literal(form: str) -> str:
    """A pattern matching ``form`` literally, except that any run of whitespace in it matches any run of
    whitespace (a page may wrap or collapse it) and percent escapes match in either case."""
    parts: list[str] = []
    for index, chunk in enumerate(_WHITESPACE_RE.split(form)):
        if index:
            parts.append(r"\s+")
        pos = 0
        for match in _PERCENT_RE.finditer(chunk):
            parts.append(re.escape(chunk[pos : match.start()]))
            parts.append("%(?i:" + match.group()[1:] + ")")
            pos = match.end()
        parts.append(re.escape(chunk[pos:]))
    return "".join(parts)


def secret_forms(secret: str) -> list[str]:
    """The spellings a secret can take in a body or a message: raw, whitespace-collapsed, percent-encoded
    (``quote`` with and without ``/`` kept, ``quote_plus`` as form bodies use), HTML- and JSON-escaped."""
    forms = [
        secret,
        " ".join(secret.split()),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote_plus(secret, safe="/"),
        html.escape(secret),
        html.escape(secret, quote=False),
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    ]
    unique = [f for f in dict.fromkeys(forms) if f.strip()]
    return sorted(unique, key=len, reverse=True)  # longest first: a form inside another goes with it


@lru_cache(maxsize=64)
def _secrets_pattern(secrets: tuple[str, ...]) -> re.Pattern[str] | None:
    forms = sorted({f for s in secrets for f in secret_forms(s)}, key=len, reverse=True)
    if not forms:
        return None
    return re.compile("|".join(_literal(f) for f in forms))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of every non-empty secret (see :func:`secret_forms`; whitespace inside it
    matched loosely) replaced by ``***``, and the value of every ``psw``/``apikey``/``login`` parameter too,
    whatever it looks like."""
    pattern = _secrets_pattern(tuple(sorted({s for s in secrets if s and s.strip()})))
    if pattern is not None:
        text = pattern.sub("***", text)
    return _CREDENTIAL_RE.sub(r"\1\2***", text)


def excerpt(text: str, secrets: Iterable[str | None] = ()) -> str:
    """A short single-line start of a body for an error message, secrets removed.

    Redaction runs over the whole text before anything is cut or collapsed, and again after collapsing, so
    neither a secret straddling the cut nor one whose whitespace collapsing changes can slip through."""
    secrets = tuple(secrets)
    short = " ".join(redact(text, secrets).split())
    return redact(short, secrets)[:EXCERPT_CHARS]


def decode_body(body: bytes, content_type: str | None, secrets: Iterable[str | None] = ()) -> str:
    """Decode a response body by the charset its header names."""
    charset = charset_of(content_type)
    try:
        return body.decode(charset)
    except UnicodeDecodeError as exc:
        text = body.decode(charset, errors="replace")
        raise SMSCResponseError(
            f"SMSC response is not valid {charset}: {exc.reason}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        ) from None


def parse_json_body(text: str, secrets: Iterable[str | None] = ()) -> Any:
    """Parse a fmt=3 body, raising the matching :class:`SMSCError` for error objects and for bodies that are
    not JSON at all (an HTML page, a truncated answer)."""
    secrets = tuple(secrets)
    stripped = text.lstrip()
    if stripped[:1] not in ("[", "{"):
        kind = "an HTML page" if stripped[:1] == "<" else "not JSON"
        raise SMSCResponseError(
            f"SMSC answered with {kind} instead of JSON: {excerpt(text, secrets)!r}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        )
    try:
        data = json.loads(text)
    except ValueError as exc:
        # A JSONDecodeError says where; a plain ValueError (an integer beyond Python's digit limit) does not.
        where = f"{exc.msg} at char {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise SMSCResponseError(
            f"SMSC answered with malformed or truncated JSON ({where} of {len(text)}): "
            f"{excerpt(text, secrets)!r}",
            excerpt=excerpt(text, secrets),
            retryable=True,
        ) from None
    if isinstance(data, dict) and "error_code" in data:
        raise error_from_body(data, secrets)
    return data


# Charsets in which digits, brackets and quotes are the ASCII bytes (what the fast path's checks read).
_ASCII_COMPATIBLE = frozenset(
    {"utf-8", "ascii", "cp1251", "koi8-r", "koi8-u", "cp866", "iso8859-5", "mac-cyrillic", "cp1252", "iso8859-1"}
)
# Every ASCII digit as "0", and what can come before a JSON number (whitespace, ":", ",", "[", a minus sign) as a
# space: an integer of 19 digits or more in the body is a space and 19 zeros in the translated body (digits
# inside a string, as in a hex id, are mostly next to letters and do not count).
_NUMBER_SHAPES = bytes.maketrans(b"0123456789 \t\n\r:,[-", b"0000000000" + b" " * 8)
_LONG_INTEGER = b" " + b"0" * 19


def parse_body(body: bytes, content_type: str | None, secrets: Iterable[str | None] = ()) -> Any:
    """A response body decoded by the charset its header names and parsed: exactly what
    ``parse_json_body(decode_body(body, content_type, secrets), secrets)`` returns or raises.

    A history page (a JSON array, the common answer) is parsed with orjson when that is sure to give the same
    objects as the standard library: straight from the bytes for UTF-8, after decoding for the other
    ASCII-compatible charsets. Anything else goes the standard way, and so does every body orjson refuses
    (NaN, Infinity, lone surrogates, bad bytes...) or could read differently: orjson reads an integer beyond
    64 bits as a float where ``json`` keeps it exact, so a body with a number of 19 digits or more (or such a
    run of digits after a space in a string) is left to ``json``; shorter integers fit either way.
    """
    data = _fast_array(body, content_type)
    if data is not None:
        return data
    secrets = tuple(secrets)
    return parse_json_body(decode_body(body, content_type, secrets), secrets)


def _fast_array(body: bytes, content_type: str | None) -> list[Any] | None:
    """The body's JSON array parsed by orjson, or ``None`` when the standard path must decide."""
    if orjson is None or body[:1] != b"[" or _LONG_INTEGER in body.translate(_NUMBER_SHAPES):
        return None
    charset = charset_of(content_type)
    if charset not in _ASCII_COMPATIBLE:
        return None
    try:
        return orjson.loads(body if charset == "utf-8" else body.decode(charset))
    except ValueError:  # orjson.JSONDecodeError and UnicodeDecodeError are both ValueErrors
        return None


def error_from_body(data: dict[str, Any], secrets: Iterable[str | None] = ()) -> SMSCError:
    """The exception for an SMSC error object ``{"error": ..., "error_code": N}``."""
    try:
        code = int(data["error_code"])
    except (TypeError, ValueError):
        return SMSCResponseError(
            f"SMSC error object with a non-numeric error_code: {excerpt(json.dumps(data, ensure_ascii=False), secrets)!r}",
            excerpt=excerpt(json.dumps(data, ensure_ascii=False), secrets),
        )
    description = redact(str(data.get("error", "")), secrets)
    cls = ERROR_CLASSES.get(code, SMSCError)
    return cls(f"SMSC error {code}: {description}", code=code)


def digit_ints(values: Iterable[Any]) -> list[int] | None:
    """``values`` as ints when every one is a non-negative ``int`` or a string of ASCII digits (``"09"`` is 9),
    else ``None``: one C-level pass that proves it (the text of every value joined is ASCII digits) and one that
    converts, instead of a type check per value. ``bool`` s, floats, signs, spaces and empty strings give ``None``."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    if not set(map(type, values)) <= {int, str}:
        return None
    text = "".join(map(str, values))
    if not (text.isascii() and text.isdigit()) or "" in values:
        return None if values else []
    return list(map(int, values))


def int_id_of(row: Any) -> int | None:
    """A row's ``int_id`` as an int; SMSC sends it as a number or a numeric string. ``None`` when absent or
    not numeric."""
    if not isinstance(row, dict):
        return None
    value = row.get("int_id")
    if type(value) is int:  # the common cases first: called once per row of every page
        return value
    if type(value) is str and value.isdigit():
        return int(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# -- history pages read column by column -----------------------------------------------------------------

#: The fields of a history row SMSC documents (see the API reference); any other is an unknown field. In the
#: order :class:`RawRows` holds their texts: the integer fields first, which the contract types in one cast.
HISTORY_FIELDS: tuple[str, ...] = (
    "int_id", "send_timestamp", "last_timestamp", "type", "format", "status", "err", "sms_cnt",
    "id", "phone", "sender_id", "message", "status_name", "mccmnc", "country", "operator", "region", "crc",
    "cost", "send_date", "last_date",
)  # fmt: skip
_NULL = msgspec.Raw(b"null")
# A row holding only documented fields, each kept as its JSON text (a slice of the body: no Python value is
# built); any other key makes the decoder refuse the page, which then goes the standard way.
_RawRow = msgspec.defstruct(
    "_RawRow",
    [(name, msgspec.Raw, _NULL) for name in HISTORY_FIELDS],
    forbid_unknown_fields=True,
    gc=False,
)
_RAW_PAGE = msgspec.json.Decoder(list[_RawRow])
_astuple = msgspec.structs.astuple
_UTF8 = "application/json; charset=utf-8"


class RawRows(Sequence[dict[str, Any]]):
    """A history page whose rows hold documented fields only, kept as the JSON text of every value.

    The texts are held in one of two forms, for :func:`smsc_dagster.storage.contract.rows_to_table` to type
    column by column without building a Python object per value:

    * :attr:`data`: every row's JSON text of each of :data:`HISTORY_FIELDS` in turn (``null`` where a row has
      none), each text followed by a line break;
    * :attr:`spans` (when :attr:`data` is ``None``): ``(buffer, starts, ends, members)``, where value ``k`` of
      row ``r`` (in the row's key order) is ``buffer[starts[r * K + k]:ends[r * K + k]]`` and is followed by
      one byte that is not part of it, ``K`` is the rows' number of keys, and ``members[f]`` is which of them is
      field ``f`` of :data:`HISTORY_FIELDS` (``-1``: no row has it, its texts are all ``null``).

    As a sequence it is the rows as dicts, parsed from the body the first time they are asked for: exactly
    what :func:`parse_body` returns (or raises: the texts are not proven UTF-8 until then, or until they are
    typed).
    """

    __slots__ = ("_body", "_count", "_int_id_text", "_rows", "data", "spans")

    def __init__(
        self,
        body: bytes,
        count: int,
        data: bytes | None = None,
        int_id_text: bytes | None = None,
        spans: tuple[bytes, Any, Any, tuple[int, ...]] | None = None,
    ) -> None:
        if (data is None) == (spans is None):
            raise ValueError("RawRows holds its texts either as data or as spans")
        self._body = body  # UTF-8
        self._count = count
        self._int_id_text = int_id_text  # the int_id texts, one a line (no final line break)
        self._rows: list[dict[str, Any]] | None = None
        self.data = data
        self.spans = spans

    def int_ids(self) -> list[int] | None:
        """Every row's ``int_id`` when each is a JSON number or a string of ASCII digits (what
        :func:`int_id_of` reads the same way), else ``None``."""
        if self._int_id_text is None:
            if self.spans is None:
                return None
            buffer, starts, ends, members = self.spans
            member = members[HISTORY_FIELDS.index("int_id")]
            if member < 0:
                return None
            keys = len(starts) // self._count
            starts, ends = starts[member::keys], ends[member::keys]
            ids = _digit_texts(buffer, starts, ends)
            if ids is not None:
                return ids
            self._int_id_text = b"\n".join(map(buffer.__getitem__, map(slice, starts.tolist(), ends.tolist())))
        digits = self._int_id_text.replace(b'"', b"")
        if not digits.replace(b"\n", b"").isdigit() or b"\n\n" in digits or digits[:1] == b"\n" or digits[-1:] == b"\n":
            return None  # a null, an empty string, a sign, a fraction...
        return list(map(int, digits.split(b"\n")))

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts: :func:`parse_body` of the body, parsed on first use."""
        if self._rows is None:
            self._rows = parse_body(self._body, _UTF8)
        return self._rows

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):  # type: ignore[no-untyped-def, override]
        return self.rows[index]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.rows)

    def __eq__(self, other: object) -> bool:
        return self.rows == (other.rows if isinstance(other, RawRows) else other)

    def __add__(self, other: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.rows + list(other)

    def __repr__(self) -> str:
        return f"RawRows({self._count} rows)"


_DIGITS = 18  # at most this many digits always fit an int64
_POWERS = 10 ** np.arange(_DIGITS - 1, -1, -1, dtype=np.int64)


def _digit_texts(buffer: bytes, starts: Any, ends: Any) -> list[int] | None:
    """The values of the JSON texts ``buffer[starts[i]:ends[i]]`` when every one is a number or a string of 1
    to 18 ASCII digits (read at once, as numbers), else ``None`` (the caller then reads them one by one)."""
    raw = np.frombuffer(buffer, np.uint8)
    quoted = raw[starts] == 34
    ends = ends - quoted
    lengths = ends - starts - quoted
    if not len(starts) or lengths.min() < 1 or lengths.max() > _DIGITS or ends.min() < _DIGITS:
        return None
    # Each text's last 18 bytes, its digits right-aligned; the bytes before a shorter one masked out.
    windows = np.lib.stride_tricks.as_strided(raw, (len(raw) - _DIGITS + 1, _DIGITS), (1, 1))[ends - _DIGITS]
    digits = windows.astype(np.int64) - 48
    inside = np.arange(_DIGITS) >= (_DIGITS - lengths)[:, None]
    if np.any(inside & ((digits < 0) | (digits > 9))):
        return None
    return (np.where(inside, digits, 0) @ _POWERS).tolist()


# A row member as msgspec.json.format(indent=1) writes it: two spaces, the key, ": ", the value (then "," unless
# it is the row's last), one a line; rows are " {" ... " }," lines between "[" and "]".
_PREFIXES = tuple(f'  "{name}": '.encode() for name in HISTORY_FIELDS)
_MEMBER_PREFIX = {prefix: index for index, prefix in enumerate(_PREFIXES)}
_WINDOW = 24  # bytes of each member line compared at once: the longest prefix (20 bytes) fits
assert max(map(len, _PREFIXES)) <= _WINDOW


@lru_cache(maxsize=64)
def _prefix_words(order: tuple[int, ...]) -> tuple[Any, Any]:
    """For rows whose keys are ``HISTORY_FIELDS[i] for i in order``: each member line's first
    :data:`_WINDOW` bytes as little-endian words, masked to its prefix, and the masks."""
    prefixes = [_PREFIXES[i] for i in order]
    expected = b"".join(p.ljust(_WINDOW, b"\0") for p in prefixes)
    mask = b"".join((b"\xff" * len(p)).ljust(_WINDOW, b"\0") for p in prefixes)
    words = _WINDOW // 8
    return (
        np.frombuffer(expected, "<u8").reshape(len(order), words),
        np.frombuffer(mask, "<u8").reshape(len(order), words),
    )


def _formatted_rows(utf8: bytes) -> RawRows | None:
    """The page as :class:`RawRows` in the :attr:`~RawRows.spans` form, when it is an array of objects that all
    have the same documented keys, each once, in the same order (what a server sends); else ``None``.

    ``msgspec.json.format`` validates the JSON as the decoder does and writes one member a line; the member
    lines are then found by position and each one's key is checked byte for byte, so the value texts come out
    of the formatted text without a Python object a value."""
    try:
        text = msgspec.json.format(utf8, indent=1)
    except (msgspec.DecodeError, RecursionError):
        return None
    breaks = np.flatnonzero(np.frombuffer(text, np.uint8) == 10)
    lines = len(breaks) + 1
    first_end = int(breaks[1]) if lines > 2 else 0
    if text[:first_end + 1] != b"[\n {\n":
        return None
    # Row 0's keys, from its member lines.
    order: list[int] = []
    start = first_end + 1
    for end in breaks[2 : len(HISTORY_FIELDS) + 3].tolist():
        line = text[start:end]
        if line in (b" },", b" }"):
            break
        cut = line.find(b'": ')
        index = _MEMBER_PREFIX.get(line[: cut + 3]) if cut > 0 else None
        if index is None:
            return None  # an undocumented key, an escaped one, a value spread over lines...
        order.append(index)
        start = end + 1
    keys = len(order)
    count, rest = divmod(lines - 2, keys + 2)
    if not keys or rest or len(set(order)) < keys:
        return None
    starts = np.empty(lines, np.int64)
    starts[0] = 0
    starts[1:] = breaks + 1
    ends = np.empty(lines, np.int64)
    ends[:-1] = breaks
    ends[-1] = len(text)
    rows = np.arange(count, dtype=np.int64) * (keys + 2) + 1  # each row's " {" line
    closing = rows + keys + 1
    raw = np.frombuffer(text, np.uint8)
    if not (
        np.all(ends[rows] - starts[rows] == 2)
        and np.all(raw[starts[rows] + 1] == 123)  # " {"
        and np.all(ends[closing[:-1]] - starts[closing[:-1]] == 3)
        and np.all(raw[starts[closing] + 1] == 125)  # " }," and the last " }"
        and ends[closing[-1]] - starts[closing[-1]] == 2
        and lines == closing[-1] + 2
        and text.endswith(b"\n]")
    ):
        return None
    members = (rows[:, None] + np.arange(1, keys + 1)).reshape(-1)  # every member line, row by row
    member_starts = starts[members]
    # Each member line's key, checked byte for byte: the first bytes of every line of every row but the last
    # at once (as words), the last row's (whose window could pass the end) one by one.
    prefixes = [_PREFIXES[i] for i in order]
    if count > 1:
        expected, mask = _prefix_words(tuple(order))
        windows = np.lib.stride_tricks.as_strided(raw, (len(text) - _WINDOW + 1, _WINDOW), (1, 1))
        try:  # (every window but the last row's ends before the text does: the last row follows it)
            words = windows[member_starts[:-keys]].view("<u8").reshape(count - 1, keys, _WINDOW // 8)
        except IndexError:
            return None
        if np.any((words & mask) != expected):
            return None  # a row with other keys, or in another order
    if not all(map(text.startswith, prefixes, member_starts[-keys:].tolist())):
        return None
    lengths = np.fromiter(map(len, prefixes), np.int64, keys)
    value_starts = (member_starts.reshape(count, keys) + lengths).reshape(-1)
    value_ends = ends[members].reshape(count, keys)
    value_ends[:, :-1] -= 1  # the comma after each member but the last
    if np.any(raw[value_ends[:, :-1]] != 44):
        return None
    value_ends = value_ends.reshape(-1)
    position = {field: member for member, field in enumerate(order)}
    fields = tuple(position.get(f, -1) for f in range(len(HISTORY_FIELDS)))
    return RawRows(utf8, count, spans=(text, value_starts, value_ends, fields))


def parse_history_body(body: bytes, content_type: str | None, secrets: Iterable[str | None] = ()) -> Any:
    """:func:`parse_body` for a history page: a JSON array of rows with documented fields only comes back as
    :class:`RawRows` (the same rows, read column by column); anything else as :func:`parse_body` returns or
    raises it.

    The page is read by msgspec with every field kept as its JSON text, in the body's charset converted to
    UTF-8 first when it is another ASCII-compatible one: formatted one member a line when every row has the
    same documented keys in the same order (what a server sends; :attr:`RawRows.spans`), else decoded into
    one ``msgspec.Raw`` a value (:attr:`RawRows.data`). A body msgspec refuses (malformed JSON, a row that is
    not an object, an unknown field, lone surrogates...) takes :func:`parse_body`, which decides as before.
    """
    if body[:1] != b"[":
        return parse_body(body, content_type, secrets)
    charset = charset_of(content_type)
    if charset not in _ASCII_COMPATIBLE:
        return parse_body(body, content_type, secrets)
    try:
        utf8 = body if charset == "utf-8" else body.decode(charset).encode("utf-8")
    except UnicodeError:
        return parse_body(body, content_type, secrets)
    formatted = _formatted_rows(utf8)
    if formatted is not None:
        return formatted
    try:
        rows = _RAW_PAGE.decode(utf8)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested beyond its depth
        return parse_body(body, content_type, secrets)
    if not rows:
        return rows
    # Field by field, one value a line: a JSON text has no raw line break outside a string and none inside
    # one (only a nested value spread over lines, never a documented field's, adds lines: see rows_to_table).
    fields = list(zip(*map(_astuple, rows)))
    data = b"\n".join(chain.from_iterable((*fields, (b"",))))
    return RawRows(utf8, len(rows), data, b"\n".join(fields[HISTORY_FIELDS.index("int_id")]))


