"""The data contract of the history tables, and the conversion of raw SMSC rows into it.

One place defines each column (name, Arrow type, description), so the Parquet files, the DuckDB views and the
``dagster/column_schema`` metadata the UI shows can never disagree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from smsc_dagster.core import SMSCDataError

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
    Column("cost", COST_TYPE, "Cost in the account currency, exact decimal."),
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
        "When the status last changed (from last_timestamp).",
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
KNOWN_RAW_FIELDS = frozenset(
    _STRING_FIELDS
    + _CODE_FIELDS
    + ("int_id", "cost", "send_timestamp", "last_timestamp", "send_date", "last_date")
)


class RowContractError(SMSCDataError):
    """A raw row breaks the contract in a way that would lose or misfile data (no int_id, no send time...)."""


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
    Column("cost_per_delivered", pa.decimal128(18, 6), "cost / delivered; NULL when nothing was delivered."),
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
    ``send_timestamp`` raises :class:`RowContractError` naming the row, since it could not be deduplicated or
    filed into a day.
    """
    n = len(rows)
    columns: dict[str, pa.Array] = {}
    columns["int_id"] = _int_column(rows, "int_id", pa.int64(), required=True)
    send_ts = _int_column(rows, "send_timestamp", pa.int64(), required=True)
    columns["channel"] = _constant_column(channel, pa.string(), n)
    for name in _STRING_FIELDS:
        columns[name] = _string_column(rows, name)
    for name in _CODE_FIELDS:
        columns[name] = _int_column(rows, name, pa.int32())
    columns["status_class"] = _status_classes(columns["status"])
    columns["cost"] = _cost_column(rows)
    columns["currency"] = _constant_column(currency, pa.string(), n)
    columns["sent_at"] = _epoch_seconds(send_ts)
    columns["status_changed_at"] = _epoch_seconds(_int_column(rows, "last_timestamp", pa.int64()))
    columns["date"] = local_dates(columns["sent_at"], timezone)
    columns["fetched_at"] = _constant_column(fetched_at, pa.timestamp("us", tz="UTC"), n)
    # Any key outside the contract on any row (one set union instead of a set difference per row).
    has_extra = bool(set().union(*(row.keys() for row in rows)) - KNOWN_RAW_FIELDS)
    columns["extra"] = pa.array([_extra_json(row) for row in rows] if has_extra else [None] * n, pa.string())
    return pa.Table.from_arrays([columns[c.name] for c in HISTORY_COLUMNS], schema=HISTORY_SCHEMA)


def _constant_column(value: Any, type_: pa.DataType, n: int) -> pa.Array:
    """``n`` copies of ``value``: the same conversion as ``pa.array([value] * n, type_)``, without the list."""
    try:
        return pa.repeat(pa.scalar(value, type_), n)
    except Exception:  # whatever the scalar conversion rejects, the list conversion decides, as before
        return pa.array([value] * n, type_)


def _epoch_seconds(seconds: pa.Array) -> pa.Array:
    # Parquet has no second-precision timestamps; microseconds round-trip exactly.
    return seconds.cast(pa.timestamp("s", tz="UTC")).cast(pa.timestamp("us", tz="UTC"))


def local_dates(timestamps: pa.Array, timezone: str) -> pa.Array:
    """The local calendar date of each UTC timestamp in ``timezone``."""
    return pc.local_timestamp(timestamps.cast(pa.timestamp("us", tz=timezone))).cast(pa.date32())


def _status_classes(status: pa.Array) -> pa.Array:
    classes = pa.array(["other"] * len(status), pa.string())
    for label, codes in (("delivered", DELIVERED), ("failed", FAILED), ("pending", PENDING)):
        mask = pc.fill_null(pc.is_in(status, pa.array(codes, pa.int32())), False)
        classes = pc.if_else(mask, label, classes)
    return classes


def _int_column(rows: Sequence[dict[str, Any]], name: str, type_: pa.DataType, *, required: bool = False) -> pa.Array:
    values = [row.get(name) for row in rows]
    try:
        array = pa.array(values, type_)  # the common case: real JSON numbers
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Numbers and numeric strings mixed (SMSC sends int_id both ways). Plain ints and plain digit strings
        # are what _parse_int would return anyway; everything else goes through it.
        array = pa.array(
            [
                v if type(v) is int else int(v) if type(v) is str and v.isdigit() else _parse_int(v, name, i)
                for i, v in enumerate(values)
            ],
            type_,
        )
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


def _string_column(rows: Sequence[dict[str, Any]], name: str) -> pa.Array:
    values = [row.get(name) for row in rows]
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Numbers among the strings (SMSC sends id and crc as numbers): their JSON text. For a plain int that
        # is str(v), the same digits json.dumps writes, at a fraction of the cost.
        return pa.array(
            [None if v is None else v if isinstance(v, str) else str(v) if type(v) is int else json.dumps(v) for v in values],
            pa.string(),
        )


def _cost_column(rows: Sequence[dict[str, Any]]) -> pa.Array:
    values = [row.get("cost") for row in rows]
    try:
        return pa.array(values, pa.string()).cast(COST_TYPE)  # the common case: decimal strings
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([_parse_cost(v, i) for i, v in enumerate(values)], COST_TYPE)


def _parse_cost(value: Any, index: int) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, float):
        value = repr(value)  # the shortest text that round-trips: 1.95 stays 1.95, not 1.9499999...
    try:
        cost = Decimal(str(value).strip().replace(",", "."))
    except ArithmeticError:
        raise RowContractError(f"row {index + 1} has a cost that is not a number: {value!r}") from None
    if cost != cost.quantize(Decimal("0.000001")):
        raise RowContractError(f"row {index + 1} has a cost with more than 6 decimals: {value!r}")
    return cost


def _extra_json(row: dict[str, Any]) -> str | None:
    extra = {k: row[k] for k in row.keys() - KNOWN_RAW_FIELDS}
    return json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
