"""The data contract of the history tables, and the conversion of raw SMSC rows into it.

One place defines each column (name, Arrow type, description), so the Parquet files, the DuckDB views and the
``dagster/column_schema`` metadata the UI shows can never disagree.
"""

from __future__ import annotations

import datetime as dt
import json
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from smsc_dagster.core import HISTORY_FIELDS, RawRows, SMSCDataError, digit_ints

COST_TYPE = pa.decimal128(18, 6)
DELIVERED = (1, 2, 4)
FAILED = (3, 20, 22, 23, 24, 25)
PENDING = (-2, -1, 0)


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    description: str
    required: bool = False


HISTORY_COLUMNS: tuple[Column, ...] = (
    Column("int_id", pa.int64(), "SMSC's global message id: primary key, unique and not null.", True),
    Column("id", pa.string(), "The sender's own id; shared by every recipient of one send, so not unique."),
    Column("channel", pa.string(), "'sms' or 'email': which history endpoint the row came from.", True),
    Column("phone", pa.string(), "Recipient phone number (the address for e-mail)."),
    Column("sender_id", pa.string(), "Sender name."),
    Column("message", pa.string(), "Message text."),
    Column("type", pa.int32(), "Message type code (0 SMS, 1 flash, 8 e-mail, 10 Viber...), kept as sent."),
    Column("format", pa.int32(), "Message format code, kept as sent."),
    Column("status", pa.int32(), "Status code, kept as sent (1 delivered, 0 at the operator, 20 failed...)."),
    Column("status_name", pa.string(), "SMSC's name of the status (Russian)."),
    Column(
        "status_class",
        pa.string(),
        "delivered (status 1/2/4), failed (3/20/22/23/24/25), pending (-2/-1/0) or other.",
        True,
    ),
    Column("err", pa.int32(), "Delivery error code, 0 for none; kept as sent."),
    Column("sms_cnt", pa.int32(), "Number of SMS parts (seconds for calls)."),
    Column(
        "cost",
        COST_TYPE,
        "Cost in the account currency, exact decimal (at most 6 decimals, below 10^12). Read from a decimal "
        "string or JSON number; exponent notation is exact ('1e3' is 1000). A comma is read as a decimal comma "
        "only when it cannot be a thousands separator ('14,50' is 14.5); '1,500' (1.5 or 1500?), '1,500,000', "
        "'1,500.25', NaN and Infinity fail the run naming the row.",
    ),
    Column("currency", pa.string(), "The account's currency (from balance.php), e.g. KZT."),
    Column("mccmnc", pa.string(), "Mobile country and network code of the recipient, e.g. 40101."),
    Column("country", pa.string(), "Recipient's country as SMSC names it."),
    Column("operator", pa.string(), "Recipient's operator as SMSC names it."),
    Column("region", pa.string(), "Recipient's region."),
    Column("crc", pa.string(), "SMSC's message checksum, kept as text."),
    Column("sent_at", pa.timestamp("us", tz="UTC"), "When the message was sent (from send_timestamp).", True),
    Column(
        "status_changed_at",
        pa.timestamp("us", tz="UTC"),
        "When the status last changed (from last_timestamp); NULL when SMSC sent 0 or nothing (no change yet).",
    ),
    Column("date", pa.date32(), "The partition: sent_at's local date in the pipeline's time zone.", True),
    Column("fetched_at", pa.timestamp("us", tz="UTC"), "When this row was read from SMSC.", True),
    Column("extra", pa.string(), "Fields SMSC sent that this contract does not know yet, as JSON; else NULL."),
)
HISTORY_SCHEMA = pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in HISTORY_COLUMNS])
REQUIRED_COLUMNS = tuple(c.name for c in HISTORY_COLUMNS if c.required)

# Raw fields the contract maps (the *_date strings are the same instants as the timestamps, in server time).
_STRING_FIELDS = ("id", "phone", "sender_id", "message", "status_name", "mccmnc", "country", "operator", "region", "crc")
_CODE_FIELDS = ("type", "format", "status", "err", "sms_cnt")
_INT64_FIELDS = ("int_id", "send_timestamp", "last_timestamp")
KNOWN_RAW_FIELDS = frozenset(HISTORY_FIELDS)
assert KNOWN_RAW_FIELDS == frozenset(_STRING_FIELDS + _CODE_FIELDS + _INT64_FIELDS + ("cost", "send_date", "last_date"))


class RowContractError(SMSCDataError):
    """A raw row breaks the contract in a way that would lose or misfile data (no int_id, no send time...)."""


# A sane Unix time for send_timestamp / last_timestamp: [2000-01-01, 2100-01-01) UTC. Anything else (0, negative,
# milliseconds, a year-2100 placeholder) would file the row into a day it does not belong to, or overflow.
UNIX_TIME_MIN = int(dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc).timestamp())
UNIX_TIME_MAX = int(dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc).timestamp())
# decimal128(18, 6): 12 digits before the point.
_COST_LIMIT = Decimal(10) ** (COST_TYPE.precision - COST_TYPE.scale)
# A plain decimal (ASCII digits, optional sign, point and exponent): what Decimal() parses, minus its extras
# (underscores, non-ASCII digits, NaN/Infinity).
_DECIMAL_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_DECIMAL_COMMA_RE = re.compile(r"[+-]?\d+,\d+", re.ASCII)
_THOUSANDS_RE = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}", re.ASCII)


# The delivery tables (DuckDB): one row per day, channel, country, operator and currency in delivery_daily;
# the rollups drop the date (and the operator) and add the first and last loaded day.
DELIVERY_COLUMNS: tuple[Column, ...] = (
    Column("date", pa.date32(), "The partition's local date.", True),
    Column("channel", pa.string(), "'sms' or 'email'.", True),
    Column("country", pa.string(), "Recipient country."),
    Column("operator", pa.string(), "Recipient operator."),
    Column("messages", pa.int64(), "Messages sent.", True),
    Column("sms_parts", pa.int64(), "SMS parts billed (sum of sms_cnt).", True),
    Column("delivered", pa.int64(), "Messages with status class 'delivered'.", True),
    Column("failed", pa.int64(), "Messages with status class 'failed'.", True),
    Column("pending", pa.int64(), "Messages still pending.", True),
    Column("other", pa.int64(), "Messages with any other status.", True),
    Column("delivery_rate", pa.float64(), "delivered / messages."),
    Column("settled_delivery_rate", pa.float64(), "delivered / (delivered + failed); NULL when both are 0."),
    Column("cost", pa.decimal128(38, 6), "Total cost, exact."),
    Column("currency", pa.string(), "Account currency."),
    Column(
        "cost_per_delivered",
        pa.decimal128(18, 6),
        "cost / delivered, exact (rounded half away from zero to 6 decimals); NULL when nothing was delivered.",
    ),
    Column(
        "cost_per_part",
        pa.decimal128(18, 6),
        "cost / sms_parts: the cost of one billed SMS part (one second for calls), exact (rounded half away from "
        "zero to 6 decimals); NULL when no part was billed.",
    ),
)
ROLLUP_DATE_COLUMNS: tuple[Column, ...] = (
    Column("first_date", pa.date32(), "First loaded day."),
    Column("last_date", pa.date32(), "Last loaded day."),
)


def rollup_columns(by: str) -> tuple[Column, ...]:
    """The columns of ``delivery_by_<by>`` (``operator`` or ``country``)."""
    dropped = {"date"} | ({"operator"} if by == "country" else set())
    return tuple(c for c in DELIVERY_COLUMNS if c.name not in dropped) + ROLLUP_DATE_COLUMNS


def duckdb_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_decimal(arrow_type):
        return f"DECIMAL({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_timestamp(arrow_type):
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    return {
        pa.int64(): "BIGINT",
        pa.int32(): "INTEGER",
        pa.string(): "VARCHAR",
        pa.date32(): "DATE",
        pa.float64(): "DOUBLE",
        pa.bool_(): "BOOLEAN",
    }[arrow_type]


def sql_columns(columns: Sequence[Column]) -> str:
    """``name TYPE [NOT NULL], ...`` for a ``CREATE TABLE``."""
    return ", ".join(f"{c.name} {duckdb_type(c.type)}{' NOT NULL' if c.required else ''}" for c in columns)


def status_class(status: int | None) -> str:
    """The class of a status code, as the contract defines it."""
    if status in DELIVERED:
        return "delivered"
    if status in FAILED:
        return "failed"
    if status in PENDING:
        return "pending"
    return "other"


def rows_to_table(
    rows: Sequence[dict[str, Any]],
    *,
    channel: str,
    currency: str | None,
    timezone: str,
    fetched_at: dt.datetime,
) -> pa.Table:
    """Convert raw SMSC rows into a table of :data:`HISTORY_SCHEMA`.

    Numbers that arrive as strings are parsed, costs become exact decimals, unknown codes are kept and unknown
    fields go into ``extra`` as JSON: nothing the server sent is lost. A row without a usable ``int_id`` or
    ``send_timestamp``, with a ``send_timestamp`` (or non-zero ``last_timestamp``) outside
    [2000-01-01, 2100-01-01) UTC, or with a cost that is not an exact finite decimal raises
    :class:`RowContractError` naming the row's ``int_id``, the field and the value, since it could not be
    deduplicated or filed into its day. ``last_timestamp`` 0 or empty means "no status change yet": NULL.
    """
    n = len(rows)
    # A page read column by column (RawRows): every field whose JSON texts convert exactly is typed from them;
    # any other field (and every field of other rows) is read from the parsed rows, as below.
    typed = _typed_texts(rows) if isinstance(rows, RawRows) else {}
    plain: Any = False
    fields = None
    if len(typed) < len(_TYPED_FIELDS):
        rows = rows.rows if isinstance(rows, RawRows) else rows
        # Rows that are all plain dicts (what the client's parse gives) have each field read with a C-level
        # getter; when every row also has the same keys in the same order (every page a server sends), all of
        # them at once.
        plain = bool(rows) and set(map(type, rows)) == {dict}
        fields = _fields_by_key(rows) if plain else None
        plain = fields if fields is not None else plain
    columns: dict[str, pa.Array] = {}

    def typed_or(name: str, convert: Any, *args: Any, **kwargs: Any) -> pa.Array:
        array = typed.get(name)
        return array if array is not None else convert(rows, name, *args, plain=plain, **kwargs)

    columns["int_id"] = typed_or("int_id", _int_column, pa.int64(), required=True)
    send_ts = typed_or("send_timestamp", _int_column, pa.int64(), required=True)
    _check_unix_time(send_ts, rows, "send_timestamp", columns["int_id"])
    last_ts = typed_or("last_timestamp", _int_column, pa.int64())
    if last_ts.null_count < len(last_ts) and pc.min(last_ts).as_py() <= 0 and pc.any(pc.equal(last_ts, 0)).as_py():
        last_ts = pc.if_else(pc.equal(last_ts, 0), pa.scalar(None, pa.int64()), last_ts)
    _check_unix_time(last_ts, rows, "last_timestamp", columns["int_id"])
    columns["channel"] = _constant_column(channel, pa.string(), n)
    for name in _STRING_FIELDS:
        columns[name] = typed_or(name, _string_column)
    for name in _CODE_FIELDS:
        columns[name] = typed_or(name, _int_column, pa.int32())
    columns["status_class"] = _status_classes(columns["status"])
    columns["cost"] = typed["cost"] if "cost" in typed else _cost_column(rows, columns["int_id"], plain=plain)
    columns["currency"] = _constant_column(currency, pa.string(), n)
    columns["sent_at"] = _epoch_seconds(send_ts)
    columns["status_changed_at"] = _epoch_seconds(last_ts)
    columns["date"] = local_dates(columns["sent_at"], timezone)
    columns["fetched_at"] = _constant_column(fetched_at, pa.timestamp("us", tz="UTC"), n)
    # Any key outside the contract on any row (one set union instead of a set difference per row).
    if isinstance(rows, RawRows):
        keys = set()  # it holds documented fields only
    elif fields is not None:
        keys = set(fields)
    else:
        keys = set().union(*map(dict.keys, rows)) if plain else set().union(*(row.keys() for row in rows))
    has_extra = bool(keys - KNOWN_RAW_FIELDS)
    columns["extra"] = pa.array([_extra_json(row) for row in rows], pa.string()) if has_extra else pa.nulls(n, pa.string())
    return pa.Table.from_arrays([columns[c.name] for c in HISTORY_COLUMNS], schema=HISTORY_SCHEMA)


# Python's limit for reading an int from text: the standard parse refuses a page with a longer one, so must this.
_MAX_INT_DIGITS = 4300
_TYPED_FIELDS = _INT64_FIELDS + _STRING_FIELDS + _CODE_FIELDS + ("cost",)
# What an integer field's values may hold besides null: digits and minus signs (numbers, and digit strings' contents).
_INTEGER_BYTES = b"0123456789-"
# The first fields of HISTORY_FIELDS (see there), typed at once in their common form.
_INTEGER_RUN = _INT64_FIELDS + _CODE_FIELDS
_REQUIRED_FIELDS = ("int_id", "send_timestamp")
assert HISTORY_FIELDS[: len(_INTEGER_RUN)] == _INTEGER_RUN
assert set(_INT64_FIELDS) >= set(_REQUIRED_FIELDS)
_NULL_STRING = pa.scalar(None, pa.string())


class _PageValues:
    """Every value of a :class:`RawRows` page, field by field (:data:`HISTORY_FIELDS` order, ``n`` values a
    field): its *content* — a string's bytes between its quotes (escapes still in), any other value's JSON
    text — in one Arrow array gathered by one ``take``, with which values are strings and which are null."""

    def __init__(self, contents: pa.StringArray, quoted: Any, content_first: Any) -> None:
        self.contents = contents
        self.offsets = np.frombuffer(contents.buffers()[1], np.int32, len(contents) + 1)
        self.bytes = np.frombuffer(contents.buffers()[2], np.uint8)
        self.lengths = np.diff(self.offsets)
        looks_null = (content_first == 110) & (self.lengths == 4)  # a JSON text starting with "n" is null
        self.quoted = quoted
        self.null = looks_null & ~quoted
        self.quoted_null = looks_null & quoted  # perhaps the string "null"

    def integers(self, first: int, n: int) -> bool:
        """Whether values ``first`` to ``first + n`` are all nulls, numbers of digits and signs, and strings of
        them (numbers are proven integers by the cast — a fraction, an exponent, true... fail it —, strings
        must be digits and signs: " 5", "+5" are the per-value path's to judge; "", "5-" fail the cast)."""
        contents = self.bytes[self.offsets[first] : self.offsets[first + n]].tobytes()
        return not (
            contents.replace(b"null", b"").translate(None, _INTEGER_BYTES) or self.quoted_null[first : first + n].any()
        )

    def plain_numbers(self, first: int, n: int) -> bool:
        """Whether every number among values ``first`` to ``first + n`` (strings and nulls aside) is a plain
        integer — digits, perhaps a minus sign, not ``-0``, no longer than Python reads —, so that its text is
        the string the per-value path makes of it (``str`` of the int). (Each is a JSON number: digits and
        minus signs alone make one of ``-?(0|[1-9][0-9]*)``.)"""
        numbers = ~(self.quoted[first : first + n] | self.null[first : first + n])
        lengths = self.lengths[first : first + n]
        low, high = self.offsets[first], self.offsets[first + n]
        text = self.bytes[low:high][np.repeat(numbers, lengths)]
        if np.any(((text < 48) | (text > 57)) & (text != 45)):
            return False  # a fraction, an exponent, true, an object...
        starts = self.offsets[first : first + n][numbers]
        signed = starts[self.bytes[starts] == 45]
        return not (np.any(self.bytes[signed + 1] == 48) or int(lengths[numbers].max(initial=0)) > _MAX_INT_DIGITS)

    def escapes(self, first: int, n: int) -> bool:
        """Whether any of values ``first`` to ``first + n`` holds a backslash."""
        return bool((self.bytes[self.offsets[first] : self.offsets[first + n]] == 92).any())

    def unescaped(self, column: pa.StringArray, first: int, n: int) -> pa.StringArray | None:
        """``column`` (values ``first`` to ``first + n``) with every string holding an escape (a quote, a line
        break in a message) replaced by its value, parsed in one call (``None`` when one is not a string)."""
        low, high = int(self.offsets[first]), int(self.offsets[first + n])
        at = np.flatnonzero(self.bytes[low:high] == 92) + low
        if not len(at):
            return column
        escaped = np.zeros(n, bool)
        escaped[np.searchsorted(self.offsets[first : first + n + 1], at, side="right") - 1] = True
        if not self.quoted[first : first + n][escaped].all():
            return None  # (never: outside a string a backslash is not JSON)
        texts = self.contents.slice(first, n).filter(pa.array(escaped)).to_pylist()
        try:
            values = _STRING_LIST.decode(('["' + '","'.join(texts) + '"]').encode())
        except (msgspec.DecodeError, RecursionError):
            return None
        if len(values) != len(texts):
            return None
        return pc.replace_with_mask(column, pa.array(escaped), pa.array(values, pa.string()))


_STRING_LIST = msgspec.json.Decoder(list[str])


def _page_values(rows: RawRows) -> _PageValues | None:
    """The values of ``rows`` (``None`` when its texts are not one value a line, or not UTF-8)."""
    n = len(rows)
    count = n * len(HISTORY_FIELDS)
    if rows.data is None:
        buffer, starts, ends, members = rows.spans
        keys = len(starts) // n
        member = np.array(members, np.int64)[:, None]
        order = np.arange(n, dtype=np.int64) * keys + member
        if np.any(member < 0):  # fields no row has: the text null
            order[member[:, 0] < 0] = len(starts)
            starts, ends = np.append(starts, len(buffer)), np.append(ends, len(buffer) + 4)
            buffer += b"null"
        order = order.reshape(-1)
    else:
        # Every text of every field, each with its line break. One more line than there are values means a
        # nested value spread over lines (never a documented field's): the page is read the standard way.
        buffer = rows.data
        ends = np.flatnonzero(np.frombuffer(buffer, np.uint8) == 10)
        if len(ends) != count:
            return None
        starts = np.empty(count, np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        order = np.arange(count, dtype=np.int64)
    raw = np.frombuffer(buffer, np.uint8)
    quoted = raw[starts] == 34
    inner_starts, inner_ends = starts + quoted, ends - quoted  # a string's contents: between its quotes
    content_first = raw[np.minimum(inner_starts, len(raw) - 1)]
    # Every byte of the buffer in an element: the gap before each value, its contents, ..., the rest.
    bounds = np.empty(2 * len(starts) + 2, np.int32)
    bounds[0] = 0
    bounds[1:-1:2] = inner_starts
    bounds[2:-1:2] = inner_ends
    bounds[-1] = len(buffer)
    pieces = pa.Array.from_buffers(pa.binary(), len(bounds) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(buffer)])
    contents = pieces.take(pa.array(2 * order + 1)).view(pa.string())
    try:
        contents.validate(full=True)  # proves every value UTF-8 (the standard parse refuses a page that is not)
    except pa.ArrowInvalid:
        return None
    return _PageValues(contents, quoted[order], content_first[order])


def _typed_texts(rows: RawRows) -> dict[str, pa.Array]:
    """The columns of every field of ``rows`` whose JSON texts convert exactly as the per-value conversion
    would convert the parsed values — integers from numbers and digit strings, strings from strings (those
    with escapes parsed) and from integers, costs from decimal strings — typed from the texts by Arrow, no
    Python object a value. A field with any other text (a float, a sign in a string, a value beyond its type,
    a missing required value...) is left out, for the caller to convert from the parsed rows."""
    values = _page_values(rows)
    if values is None:
        return {}
    n = len(rows)
    shape = (len(HISTORY_FIELDS), n)
    nulls = values.null.reshape(shape).sum(axis=1)
    strings = values.quoted.reshape(shape).sum(axis=1)
    typed: dict[str, pa.Array] = {}
    # The integer fields first, all at once in their common form (numbers, or strings of digits); below, the
    # fields that run left out, one by one, and the others (a string field of strings: its contents as they are).
    _type_integer_run(typed, values, nulls)
    for index, name in enumerate(HISTORY_FIELDS):
        if name in typed:
            continue
        start = index * n
        if name not in _TYPED_FIELDS:  # send_date, last_date: not kept, but what is not a string is the parse's
            if strings[index] + nulls[index] < n:
                rows.rows  # noqa: B018  (raises what the standard parse raises, e.g. for 5000 digits)
            continue
        integer = name in _INTEGER_RUN
        if integer and not values.integers(start, n):
            continue
        column = values.contents.slice(start, n)
        if nulls[index]:
            column = pc.if_else(values.null[start : start + n], _NULL_STRING, column)
        try:
            if integer:
                column = column.cast(pa.int64() if name in _INT64_FIELDS else pa.int32())
                if column.null_count and name in _REQUIRED_FIELDS:
                    continue  # a required value missing: the per-value path names the row
            elif name in _STRING_FIELDS:
                if strings[index] + nulls[index] < n and not values.plain_numbers(start, n):
                    continue  # a number that is not a plain integer (1.5, -0, 5000 digits), true, an object...
                column = values.unescaped(column, start, n)
                if column is None:
                    continue
            else:  # cost
                if strings[index] + nulls[index] < n or values.escapes(start, n):
                    continue  # numbers are the per-value path's (it reads floats by their shortest repr)
                column = column.cast(COST_TYPE)  # the cast the per-value path tries first on decimal strings
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not that type, or beyond it
            continue
        typed[name] = column
    return typed


def _type_integer_run(typed: dict[str, pa.Array], values: _PageValues, nulls: Any) -> None:
    """Type the integer fields at once when all their values are integer texts and fit their types; the
    fields of a run that does not are left to the per-field conversion."""
    n = len(values.contents) // len(HISTORY_FIELDS)
    size = len(_INTEGER_RUN) * n
    if not values.integers(0, size):
        return
    column = values.contents.slice(0, size)
    if nulls[: len(_INTEGER_RUN)].any():
        column = pc.if_else(values.null[:size], _NULL_STRING, column)
    try:
        wide = column.cast(pa.int64())
        codes = wide.slice(len(_INT64_FIELDS) * n).cast(pa.int32())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # not integers, or beyond their types
        return
    for index, name in enumerate(_INT64_FIELDS):
        array = wide.slice(index * n, n)
        if not (array.null_count and name in _REQUIRED_FIELDS):  # (a missing required value: the per-value path)
            typed[name] = array
    for index, name in enumerate(_CODE_FIELDS):
        typed[name] = codes.slice(index * n, n)


def _constant_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` copies of ``value``: the same conversion as ``pa.array([value] * n, type_)``, without the list."""
    try:
        return pa.repeat(pa.scalar(value, type_), n)
    except Exception:  # whatever the scalar conversion rejects, the list conversion decides, as before
        return pa.array([value] * n, type_)


def _check_unix_time(seconds: pa.Array, rows: Sequence[dict[str, Any]], name: str, int_ids: pa.Array) -> None:
    """Raise :class:`RowContractError` for the first value outside [2000-01-01, 2100-01-01) UTC (nulls pass)."""
    if len(seconds) == seconds.null_count:
        return
    low, high = pc.min_max(seconds).values()
    if low.as_py() >= UNIX_TIME_MIN and high.as_py() < UNIX_TIME_MAX:  # the common case, in one pass
        return
    bad = pc.or_(pc.less(seconds, UNIX_TIME_MIN), pc.greater_equal(seconds, UNIX_TIME_MAX))
    if not pc.any(bad).as_py():
        return
    index = pc.index(bad, True).as_py()
    raise RowContractError(
        f"row with int_id={int_ids[index].as_py()}: {name}={rows[index].get(name)!r} is not a Unix time between "
        "2000-01-01 and 2100-01-01 (UTC)"
        + ("; the row cannot be filed into its day" if name == "send_timestamp" else "")
    )


def _epoch_seconds(seconds: pa.Array) -> pa.Array:
    # Parquet has no second-precision timestamps; microseconds round-trip exactly.
    return seconds.cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("us", tz="UTC"))


def local_dates(timestamps: pa.Array, timezone: str) -> pa.Array:
    """The local calendar date of each UTC timestamp in ``timezone``."""
    return pc.local_timestamp(timestamps.cast(pa.timestamp("us", tz=timezone))).cast(pa.date32())


# status_class of each code from -2 to 25 (by code + 2), then "other" (any other code, and NULL).
_LOW_CODE = min(DELIVERED + FAILED + PENDING)
_CLASS_NAMES = pa.array(["delivered", "failed", "pending", "other"], pa.string())
_CODE_CLASS = np.full(max(DELIVERED + FAILED + PENDING) - _LOW_CODE + 2, 3, np.int8)
for _index, _codes in enumerate((DELIVERED, FAILED, PENDING)):
    _CODE_CLASS[np.array(_codes) - _LOW_CODE] = _index


def _status_classes(status: pa.Array) -> pa.Array:
    """:func:`status_class` of every status code (``other`` for NULL and unknown codes)."""
    codes = status.fill_null(_LOW_CODE - 1).to_numpy().astype(np.int64) - _LOW_CODE
    codes[(codes < 0) | (codes >= len(_CODE_CLASS))] = len(_CODE_CLASS) - 1
    return _CLASS_NAMES.take(pa.array(_CODE_CLASS[codes]))


def _fields_by_key(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[Any, ...]] | None:
    """Each field's values (a tuple, in row order) when every row is a ``dict`` with the same keys in the same
    order, read in one pass (``zip`` over the rows' values) instead of one pass a field; else ``None``."""
    orders = set(map(tuple, map(dict.keys, rows)))
    if len(orders) != 1:
        return None
    return dict(zip(orders.pop(), zip(*map(dict.values, rows))))


def _values(
    rows: Sequence[dict[str, Any]], name: str, plain: bool | dict[str, tuple[Any, ...]]
) -> Sequence[Any]:
    """``[row.get(name) for row in rows]``; for ``plain`` rows (every one a ``dict``) read with
    ``operator.itemgetter`` when every row has the field, a fifth faster than the comprehension; ``plain`` may
    also be the fields already read (:func:`_fields_by_key`), a field missing from every row being all NULL."""
    if type(plain) is dict:
        values = plain.get(name)
        return values if values is not None else [None] * len(rows)
    if plain:
        try:
            return list(map(operator.itemgetter(name), rows))
        except KeyError:
            pass
    return [row.get(name) for row in rows]


def _int_column(
    rows: Sequence[dict[str, Any]],
    name: str,
    type_: pa.DataType,
    *,
    required: bool = False,
    plain: Any = False,
) -> pa.Array:
    values = _values(rows, name, plain)
    try:
        array = pa.array(values, type_)  # the common case: real JSON numbers
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        # Numbers and numeric strings mixed (SMSC sends int_id both ways). Plain ints and plain digit strings
        # are what _parse_int would return anyway (all of them at once when every value is one); everything
        # else goes through it.
        parsed = digit_ints(values)
        if parsed is None:
            parsed = [
                v if type(v) is int else int(v) if type(v) is str and v.isdigit() else _parse_int(v, name, i)
                for i, v in enumerate(values)
            ]
        try:
            array = pa.array(parsed, type_)
        except (pa.ArrowInvalid, OverflowError):  # a number beyond int64 (int32 for the codes)
            limit = 2 ** (type_.bit_width - 1)
            index = next(i for i, v in enumerate(parsed) if v is not None and not -limit <= v < limit)
            raise RowContractError(
                f"row with int_id={rows[index].get('int_id')!r}: {name}={values[index]!r} does not fit {type_}"
            ) from None
    if required and array.null_count:
        index = array.is_null().to_pylist().index(True)
        raise RowContractError(
            f"row {index + 1} has no {name} (int_id={rows[index].get('int_id')!r}): "
            f"{name} is required to {'deduplicate and page' if name == 'int_id' else 'file the row into its day'}"
        )
    return array


def _parse_int(value: Any, name: str, index: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise RowContractError(f"row {index + 1} has a non-integer {name}: {value!r}")


def _string_column(rows: Sequence[dict[str, Any]], name: str, *, plain: Any = False) -> pa.Array:
    values = _values(rows, name, plain)
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Numbers among the strings (SMSC sends id and crc as numbers): their JSON text. For a plain int that
        # is str(v), the same digits json.dumps writes, at a fraction of the cost.
        kinds = set(map(type, values))
        if kinds == {int}:  # every value a number (crc): Arrow writes the same digits as str()
            try:
                return pa.array(values, pa.int64()).cast(pa.string())
            except (pa.ArrowInvalid, OverflowError):  # beyond int64
                pass
        if kinds <= {int, str}:  # numbers and strings (id): str() of each, in one C-level pass
            return pa.array(list(map(str, values)), pa.string())
        return pa.array(
            [None if v is None else v if isinstance(v, str) else str(v) if type(v) is int else json.dumps(v) for v in values],
            pa.string(),
        )


def _cost_column(rows: Sequence[dict[str, Any]], int_ids: pa.Array, *, plain: Any = False) -> pa.Array:
    values = _values(rows, "cost", plain)
    try:
        # The common case: decimal strings. Arrow's parser takes what _parse_cost takes (a point, an exponent),
        # rejects everything else, including more than 6 decimals, and the slow path below names the row.
        return pa.array(values, pa.string()).cast(COST_TYPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([_parse_cost(v, i, int_ids) for i, v in enumerate(values)], COST_TYPE)


def _parse_cost(value: Any, index: int, int_ids: pa.Array) -> Decimal | None:
    """One cost as an exact decimal, or a :class:`RowContractError` naming the row and the value.

    Accepted: decimal strings and JSON numbers, exponent notation included ("1e3" is exactly 1000), and a
    decimal comma when it cannot be read as a thousands separator ("14,50" is 14.5). Rejected: "1,500" (1.5 or
    1500?), any other comma ("1,500,000", "1,500.25"), NaN and infinities, more than 6 decimals, 10^12 or more.
    """
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 1.95 stays 1.95, not 1.9499999...
    text = str(value).strip()
    row = f"row {index + 1} (int_id={int_ids[index].as_py()})"
    if "," in text:
        if _THOUSANDS_RE.fullmatch(text):
            raise RowContractError(
                f"{row} has an ambiguous cost {value!r}: a thousands separator or a decimal comma? "
                "Refusing to guess between the two readings"
            )
        if not _DECIMAL_COMMA_RE.fullmatch(text):
            raise RowContractError(f"{row} has a cost that is not a number: {value!r} (commas are not thousands separators here)")
        text = text.replace(",", ".")
    try:
        cost = Decimal(text)
    except ArithmeticError:
        raise RowContractError(f"{row} has a cost that is not a number: {value!r}") from None
    if not cost.is_finite():
        raise RowContractError(f"{row} has a cost that is not a finite number: {value!r}")
    if not _DECIMAL_RE.fullmatch(text):  # Decimal() also reads "1_000" and non-ASCII digits
        raise RowContractError(f"{row} has a cost that is not a number: {value!r}")
    if abs(cost) >= _COST_LIMIT:
        raise RowContractError(f"{row} has a cost of 10^12 or more, beyond decimal(18,6): {value!r}")
    if cost != cost.quantize(Decimal("0.000001")):
        raise RowContractError(f"{row} has a cost with more than 6 decimals: {value!r}")
    return cost


def _extra_json(row: dict[str, Any]) -> str | None:
    extra = {k: row[k] for k in row.keys() - KNOWN_RAW_FIELDS}
    return json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
