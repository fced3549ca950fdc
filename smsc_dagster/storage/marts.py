"""The marts: delivery latency, failure reasons and delivery by sender, as DuckDB tables of one account's
schema, each with its column contract, and the reference codes table they name their codes from.

Every table is built in SQL from the history's Parquet files (the per-day tables) or from the per-day table
(the all-days one); the day-range replacements delete and insert ``first``..``last`` in one transaction,
like :meth:`~smsc_dagster.storage.warehouse.Warehouse.replace_delivery_daily`.

Rules every mart keeps:

* **Exact.** Counts are integers, costs exact decimals; a cost per unit is an exact decimal quotient rounded
  half away from zero to 6 decimals (never a float). Percentiles are observed values (``quantile_disc``),
  not interpolations.
* **No sum adds two currencies.** Every query that sums ``cost`` has ``currency`` in its GROUP BY key; the
  marts without a cost (latency, failure reasons) count messages only.
* **Unknown codes stay.** Failure reasons LEFT JOIN the reference names and show a code the reference does
  not know as ``unknown``; its messages are counted like any other.

The reference table ``smsc_codes`` lives in the account's schema, beside the marts that use it: each table of
an account schema belongs to that account's assets (so no two assets ever write one table), a single-account
store (schema ``smsc``) and a multi-account one work the same, and ``smsc_all.smsc_codes`` comes with the
union views like every other table (one copy per account there, so join it on ``account`` too).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from smsc_dagster.core import Channel, days_between, get_channel

from .codes import CODES_COLUMNS, CODES_TABLE, UNKNOWN, UNKNOWN_RU, codes_table
from .contract import Column, duckdb_type

if TYPE_CHECKING:
    from .warehouse import Warehouse

LATENCY_TABLE = "delivery_latency"
FAILURE_REASONS_TABLE = "failure_reasons"
SENDER_DAILY_TABLE = "delivery_by_sender_daily"
SENDER_TOTALS_TABLE = "delivery_by_sender"

# A delivered message's latency is measured only where its last status change *is* the delivery: status 1.
# For 2 (read) and 4 (link clicked) SMSC's last_timestamp is when the mail was read or the link clicked, not
# when the message arrived, so those count as delivered without a latency.
LATENCY_STATUSES = (1,)
PERCENTILES = (("latency_p50_s", 0.5), ("latency_p90_s", 0.9), ("latency_p95_s", 0.95))
WITHIN = (("within_10s_share", 10), ("within_60s_share", 60), ("within_5min_share", 300))
# Which messages failure_reasons holds: every one that failed or has a status outside the known classes, and
# every one that carries a non-zero err whatever its status (a pending message retrying after err 6...).
FAILURE_FILTER = "status_class IN ('failed', 'other') OR coalesce(err, 0) <> 0"

COST_PER_UNIT_TYPE = pa.decimal128(38, 6)  # never overflows: |cost / n| <= |cost| for n >= 1
_PERCENTILE_DOC = (
    "{p} of the measured latencies in whole seconds: quantile_disc, the nearest-rank percentile — the smallest "
    "observed latency that at least {pct}% of the measured messages do not exceed (the ceil({q}·n)-th smallest "
    "of n); an observed value, never interpolated. NULL when no latency was measured."
)

LATENCY_COLUMNS: tuple[Column, ...] = (
    Column("date", pa.date32(), "The partition's local date (the day the messages were sent).", True),
    Column("channel", pa.string(), "'sms' or 'email'.", True),
    Column("country", pa.string(), "Recipient country."),
    Column("operator", pa.string(), "Recipient operator."),
    Column("delivered", pa.int64(), "Messages with status class 'delivered' (status 1, 2 or 4).", True),
    Column(
        "with_latency",
        pa.int64(),
        "Delivered messages whose latency is measured: status 1 (delivered) with a status_changed_at at or "
        "after sent_at. The percentiles and shares are over these.",
        True,
    ),
    Column(
        "delivered_without_latency",
        pa.int64(),
        "Delivered messages without a measured latency (delivered - with_latency): no status change time "
        "(NULL), a status change time before sent_at (a clock error, never counted as 0 s), or status 2 (read) "
        "or 4 (link clicked), whose status change time is the read or the click, not the delivery.",
        True,
    ),
    *(
        Column(name, pa.int64(), _PERCENTILE_DOC.format(p=f"p{round(q * 100)}", pct=round(q * 100), q=q))
        for name, q in PERCENTILES
    ),
    Column("latency_max_s", pa.int64(), "The longest measured latency, whole seconds; NULL when none was measured."),
    *(
        Column(
            name,
            pa.float64(),
            f"Share of the measured messages delivered at most {seconds} s after sending "
            f"(with a latency <= {seconds}) / with_latency; NULL when with_latency is 0.",
        )
        for name, seconds in WITHIN
    ),
)

FAILURE_REASONS_COLUMNS: tuple[Column, ...] = (
    Column("date", pa.date32(), "The partition's local date (the day the messages were sent).", True),
    Column("channel", pa.string(), "'sms' or 'email'.", True),
    Column("country", pa.string(), "Recipient country."),
    Column("operator", pa.string(), "Recipient operator."),
    Column("status", pa.int32(), "Status code as SMSC sent it (NULL when it sent none)."),
    Column(
        "status_class", pa.string(), "The history's class of the status: failed, other, pending or delivered.", True
    ),
    Column(
        "status_name_en",
        pa.string(),
        f"English name of the status from {CODES_TABLE}; '{UNKNOWN}' for a code it does not list.",
        True,
    ),
    Column(
        "status_name_ru",
        pa.string(),
        f"Russian name of the status from {CODES_TABLE}; '{UNKNOWN_RU}' for a code it does not list.",
        True,
    ),
    Column("err", pa.int32(), "Delivery error code as SMSC sent it, 0 for none (NULL when it sent none)."),
    Column(
        "err_name_en",
        pa.string(),
        f"English name of the error from {CODES_TABLE}; '{UNKNOWN}' for a code it does not list.",
        True,
    ),
    Column(
        "err_name_ru",
        pa.string(),
        f"Russian name of the error from {CODES_TABLE}; '{UNKNOWN_RU}' for a code it does not list.",
        True,
    ),
    Column(
        "messages",
        pa.int64(),
        "Messages of this day, channel, country, operator, status and err. The table holds every message that "
        "failed, has a status outside the known classes, or carries a non-zero err; delivered and pending "
        "messages without an error are not failures and are left out.",
        True,
    ),
    Column(
        "share",
        pa.float64(),
        "messages / every message (of any status) sent that day to that channel, country and operator.",
        True,
    ),
)

_COUNT_COLUMNS: tuple[Column, ...] = (
    Column("messages", pa.int64(), "Messages sent.", True),
    Column("sms_parts", pa.int64(), "SMS parts billed (sum of sms_cnt; seconds for calls).", True),
    Column("delivered", pa.int64(), "Messages with status class 'delivered'.", True),
    Column("failed", pa.int64(), "Messages with status class 'failed'.", True),
    Column("pending", pa.int64(), "Messages still pending.", True),
    Column("other", pa.int64(), "Messages with any other status.", True),
    Column("delivery_rate", pa.float64(), "delivered / messages.", True),
    Column("cost", pa.decimal128(38, 6), "Total cost in this row's currency, exact (NULL costs count as 0).", True),
    Column("currency", pa.string(), "Account currency; part of the key, so no cost sums two currencies."),
    Column(
        "cost_per_part",
        COST_PER_UNIT_TYPE,
        "cost / sms_parts, exact, rounded half away from zero to 6 decimals; NULL when sms_parts is 0.",
    ),
    Column(
        "cost_per_delivered",
        COST_PER_UNIT_TYPE,
        "cost / delivered (what each delivered message cost, the undelivered ones' cost included), exact, "
        "rounded half away from zero to 6 decimals; NULL when nothing was delivered.",
    ),
)

SENDER_DAILY_COLUMNS: tuple[Column, ...] = (
    Column("date", pa.date32(), "The partition's local date (the day the messages were sent).", True),
    Column("sender_id", pa.string(), "Sender name as SMSC reports it."),
    Column("channel", pa.string(), "'sms' or 'email'.", True),
    Column("type", pa.int32(), "Message type code (0 SMS, 1 flash, 8 e-mail, 10 Viber...)."),
    *_COUNT_COLUMNS,
)

SENDER_TOTALS_COLUMNS: tuple[Column, ...] = (
    Column("sender_id", pa.string(), "Sender name as SMSC reports it."),
    Column("channel", pa.string(), "'sms' or 'email'.", True),
    Column("type", pa.int32(), "Message type code (0 SMS, 1 flash, 8 e-mail, 10 Viber...)."),
    Column("first_date", pa.date32(), "First loaded day of this sender, channel, type and currency.", True),
    Column("last_date", pa.date32(), "Last loaded day of this sender, channel, type and currency.", True),
    *_COUNT_COLUMNS,
)

MART_COLUMNS: dict[str, tuple[Column, ...]] = {
    LATENCY_TABLE: LATENCY_COLUMNS,
    FAILURE_REASONS_TABLE: FAILURE_REASONS_COLUMNS,
    SENDER_DAILY_TABLE: SENDER_DAILY_COLUMNS,
    SENDER_TOTALS_TABLE: SENDER_TOTALS_COLUMNS,
    CODES_TABLE: CODES_COLUMNS,
}
# The tables replaced a day range at a time (they have a date column).
DAILY_MARTS = (LATENCY_TABLE, FAILURE_REASONS_TABLE, SENDER_DAILY_TABLE)


def mart_schema(table: str) -> pa.Schema:
    """The Arrow schema of one mart (for its Parquet copy and the UI's column schema)."""
    return pa.schema([pa.field(c.name, c.type, nullable=not c.required) for c in MART_COLUMNS[table]])


def _sql_type(arrow_type: pa.DataType) -> str:
    return "BOOLEAN" if pa.types.is_boolean(arrow_type) else duckdb_type(arrow_type)


def _sql_columns(columns: Sequence[Column]) -> str:
    return ", ".join(f"{c.name} {_sql_type(c.type)}{' NOT NULL' if c.required else ''}" for c in columns)


def exact_ratio(numerator: str, denominator: str) -> str:
    """SQL for ``numerator / denominator`` (a DECIMAL with 6 decimals over a positive integer) as an exact
    DECIMAL(38, 6), rounded half away from zero; NULL when the denominator is not positive.

    DuckDB divides decimals in DOUBLE; this divides the value in millionths as integers instead.
    """
    micros = f"(({numerator}) * 1000000)::HUGEINT"
    return (
        f"CASE WHEN ({denominator}) > 0 THEN "
        f"((sign({micros}) * ((abs({micros}) * 2 + ({denominator})) // (2 * ({denominator}))))::DECIMAL(38, 0)"
        f" * 0.000001::DECIMAL(7, 6))::DECIMAL(38, 6) END"
    )


# One row per group, from history rows; shared with the warehouse's delivery_daily and rollups.
MEASURES = """
    count(*)::BIGINT AS messages,
    coalesce(sum(sms_cnt), 0)::BIGINT AS sms_parts,
    count(*) FILTER (WHERE status_class = 'delivered')::BIGINT AS delivered,
    count(*) FILTER (WHERE status_class = 'failed')::BIGINT AS failed,
    count(*) FILTER (WHERE status_class = 'pending')::BIGINT AS pending,
    count(*) FILTER (WHERE status_class = 'other')::BIGINT AS other,
    coalesce(sum(cost), 0)::DECIMAL(38, 6) AS cost
"""
# The same measures summed from per-day rows: a table over all days reads days x groups rows, not every message.
SUMMED_MEASURES = """
    sum(messages)::BIGINT AS messages,
    sum(sms_parts)::BIGINT AS sms_parts,
    sum(delivered)::BIGINT AS delivered,
    sum(failed)::BIGINT AS failed,
    sum(pending)::BIGINT AS pending,
    sum(other)::BIGINT AS other,
    coalesce(sum(cost), 0)::DECIMAL(38, 6) AS cost
"""
_PER_UNIT = f"""
    messages, sms_parts, delivered, failed, pending, other,
    delivered::DOUBLE / messages AS delivery_rate,
    cost,
    currency,
    {exact_ratio('cost', 'sms_parts')} AS cost_per_part,
    {exact_ratio('cost', 'delivered')} AS cost_per_delivered
"""
_LATENCY_S = (
    f"CASE WHEN status IN ({', '.join(map(str, LATENCY_STATUSES))}) AND status_changed_at >= sent_at "
    "THEN (epoch_us(status_changed_at) - epoch_us(sent_at)) // 1000000 END"
)


class Marts:
    """The marts of one account, in its warehouse schema.

    Args:
        warehouse: the account's :class:`~smsc_dagster.storage.warehouse.Warehouse`; the marts read its
            history files and write its schema.

    Example:
        >>> marts = Marts(Warehouse("data"))
        >>> with marts.warehouse.connect() as conn:
        ...     marts.write_codes(conn)
        ...     marts.replace_latency(conn, ["sms"], dt.date(2026, 11, 1), dt.date(2026, 11, 30))
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- the day-range marts ----------------------------------------------------------------------------

    def replace_latency(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], first: dt.date, last: dt.date
    ) -> dict[dt.date, int]:
        """Recompute ``delivery_latency`` for ``first``..``last`` (one row per day, channel, country and
        operator with a delivered message); returns the rows written for each day."""
        percentiles = ",\n".join(f"quantile_disc(latency_s, {q})::BIGINT AS {name}" for name, q in PERCENTILES)
        shares = ",\n".join(
            f"CASE WHEN count(latency_s) > 0 THEN "
            f"(count(*) FILTER (WHERE latency_s <= {seconds}))::DOUBLE / count(latency_s) END AS {name}"
            for name, seconds in WITHIN
        )
        select = f"""
            SELECT date, channel, country, operator,
                   count(*)::BIGINT AS delivered,
                   count(latency_s)::BIGINT AS with_latency,
                   (count(*) - count(latency_s))::BIGINT AS delivered_without_latency,
                   {percentiles},
                   max(latency_s)::BIGINT AS latency_max_s,
                   {shares}
            FROM (
                SELECT date, channel, country, operator, {_LATENCY_S} AS latency_s
                FROM {{source}}
                WHERE date BETWEEN ? AND ? AND status_class = 'delivered'
            )
            GROUP BY date, channel, country, operator
            ORDER BY date, channel, country, operator
        """
        return self._replace_days(conn, LATENCY_TABLE, channels, first, last, select)

    def replace_failure_reasons(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], first: dt.date, last: dt.date
    ) -> dict[dt.date, int]:
        """Recompute ``failure_reasons`` for ``first``..``last`` (one row per day, channel, country,
        operator, status and err), naming the codes from ``smsc_codes`` (written first if it is missing);
        returns the rows written for each day."""
        self._ensure_codes(conn)
        codes = self.warehouse.table(CODES_TABLE)
        select = f"""
            WITH grouped AS (
                SELECT date, channel, country, operator, status, status_class, err, count(*)::BIGINT AS messages
                FROM {{source}}
                WHERE date BETWEEN ? AND ?
                GROUP BY date, channel, country, operator, status, status_class, err
            ),
            shared AS (
                SELECT *,
                       sum(messages) OVER (PARTITION BY date, channel, country, operator) AS group_messages,
                       ({FAILURE_FILTER}) AS is_failure
                FROM grouped
            )
            SELECT m.date, m.channel, m.country, m.operator,
                   m.status, m.status_class,
                   coalesce(s.name_en, '{UNKNOWN}') AS status_name_en,
                   coalesce(s.name_ru, '{UNKNOWN_RU}') AS status_name_ru,
                   m.err,
                   coalesce(e.name_en, '{UNKNOWN}') AS err_name_en,
                   coalesce(e.name_ru, '{UNKNOWN_RU}') AS err_name_ru,
                   m.messages,
                   m.messages::DOUBLE / m.group_messages AS share
            FROM shared AS m
            LEFT JOIN {codes} AS s ON s.kind = 'status' AND s.code = m.status
            LEFT JOIN {codes} AS e ON e.kind = 'err' AND e.code = m.err
            WHERE m.is_failure
            ORDER BY m.date, m.channel, m.country, m.operator, m.messages DESC, m.status, m.err
        """
        return self._replace_days(conn, FAILURE_REASONS_TABLE, channels, first, last, select)

    def replace_sender_daily(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], first: dt.date, last: dt.date
    ) -> dict[dt.date, int]:
        """Recompute ``delivery_by_sender_daily`` for ``first``..``last`` (one row per day, sender_id,
        channel, message type and currency); returns the rows written for each day."""
        select = f"""
            SELECT date, sender_id, channel, type, {_PER_UNIT}
            FROM (
                SELECT date, sender_id, channel, type, currency, {MEASURES}
                FROM {{source}}
                WHERE date BETWEEN ? AND ?
                GROUP BY date, sender_id, channel, type, currency
            )
            ORDER BY date, sender_id, channel, type, currency
        """
        return self._replace_days(conn, SENDER_DAILY_TABLE, channels, first, last, select)

    # -- the all-days and reference tables --------------------------------------------------------------

    def rebuild_sender_totals(self, conn: duckdb.DuckDBPyConnection) -> int:
        """Recompute ``delivery_by_sender`` over every loaded day, summed from ``delivery_by_sender_daily``
        (days x groups rows, not every message); returns its rows."""
        self._ensure(conn, SENDER_DAILY_TABLE)
        self._ensure(conn, SENDER_TOTALS_TABLE)
        totals = self.warehouse.table(SENDER_TOTALS_TABLE)
        keys = "sender_id, channel, type"
        self._in_transaction(
            conn,
            f"DELETE FROM {totals}",
            f"""
            INSERT INTO {totals} BY NAME
            SELECT {keys}, first_date, last_date, {_PER_UNIT}
            FROM (
                SELECT {keys}, currency, min(date) AS first_date, max(date) AS last_date, {SUMMED_MEASURES}
                FROM {self.warehouse.table(SENDER_DAILY_TABLE)}
                GROUP BY {keys}, currency
            )
            ORDER BY messages DESC, {keys}, currency
            """,
        )
        self.warehouse.refresh_union_views(conn)
        return self._count(conn, SENDER_TOTALS_TABLE)

    def write_codes(self, conn: duckdb.DuckDBPyConnection) -> int:
        """(Re)write the reference table ``smsc_codes`` in the account's schema; returns its rows."""
        self._ensure(conn, CODES_TABLE)
        name = f"_smsc_codes_{uuid.uuid4().hex}"
        conn.register(name, codes_table())
        try:
            self._in_transaction(
                conn,
                f"DELETE FROM {self.warehouse.table(CODES_TABLE)}",
                f"INSERT INTO {self.warehouse.table(CODES_TABLE)} BY NAME "
                f"SELECT * FROM {name} ORDER BY kind DESC, code",
            )
        finally:
            conn.unregister(name)
        self.warehouse.refresh_union_views(conn)
        return self._count(conn, CODES_TABLE)

    def read_arrow(
        self, conn: duckdb.DuckDBPyConnection, table: str, first: dt.date | None = None, last: dt.date | None = None
    ) -> pa.Table:
        """One mart as an Arrow table of its contract schema (only ``first``..``last`` for a daily mart),
        e.g. to write its Parquet copy."""
        sql, params = f"SELECT * FROM {self.warehouse.table(table)}", []
        if first is not None and table in DAILY_MARTS:
            sql, params = sql + " WHERE date BETWEEN ? AND ?", [first, last or first]
        result = conn.sql(sql + " ORDER BY ALL", params=params).to_arrow_table()
        schema = mart_schema(table)
        return result.select(schema.names).cast(schema)

    # -- helpers ----------------------------------------------------------------------------------------

    def _replace_days(
        self,
        conn: duckdb.DuckDBPyConnection,
        table: str,
        channels: Sequence[str | Channel],
        first: dt.date,
        last: dt.date,
        select: str,
    ) -> dict[dt.date, int]:
        """Delete ``first``..``last`` from ``table`` and insert ``select`` (over those days' history files,
        parameters first and last) in one transaction; the rows per day."""
        self._ensure(conn, table)
        name = self.warehouse.table(table)
        source = self.warehouse._history_source([get_channel(c) for c in channels], days_between(first, last))
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM {name} WHERE date BETWEEN ? AND ?", [first, last])
            if source is not None:
                conn.execute(f"INSERT INTO {name} BY NAME {select.format(source=source)}", [first, last])
            per_day = dict(
                conn.execute(
                    f"SELECT date, count(*) FROM {name} WHERE date BETWEEN ? AND ? GROUP BY date", [first, last]
                ).fetchall()
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.warehouse.refresh_union_views(conn)
        return {day: int(per_day.get(day, 0)) for day in days_between(first, last)}

    def _ensure(self, conn: duckdb.DuckDBPyConnection, table: str) -> None:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.warehouse.schema}")
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {self.warehouse.table(table)} ({_sql_columns(MART_COLUMNS[table])})"
        )

    def _ensure_codes(self, conn: duckdb.DuckDBPyConnection) -> None:
        self._ensure(conn, CODES_TABLE)
        if not self._count(conn, CODES_TABLE):
            self.write_codes(conn)

    def _count(self, conn: duckdb.DuckDBPyConnection, table: str) -> int:
        (count,) = conn.execute(f"SELECT count(*) FROM {self.warehouse.table(table)}").fetchone()
        return int(count)

    @staticmethod
    def _in_transaction(conn: duckdb.DuckDBPyConnection, *statements: str) -> None:
        conn.execute("BEGIN TRANSACTION")
        try:
            for statement in statements:
                conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
