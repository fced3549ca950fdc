"""The DuckDB warehouse: views over the Parquet partitions and the delivery tables built from them.

DuckDB allows one writing process per database file, and a process holding the file (even read-only) keeps
writers of other processes out. So writers connect briefly and retry while the file is locked, and every
Dagster step that writes here runs in the ``smsc_duckdb`` pool (limit 1). Notebooks read the Parquet files,
or open the database read-only for a query and close it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from .schema import HISTORY_SCHEMA
from .storage import PartitionStore

WAREHOUSE_FILE = "warehouse.duckdb"
SCHEMA = "smsc"
HISTORY_TABLES = {"sms": "sms_history", "email": "email_history"}
LOCK_RETRY_S = 120.0

# One row per (date, channel, country, operator, currency): the measures of issue #3, from history rows.
_MEASURES = """
    count(*)::BIGINT AS messages,
    coalesce(sum(sms_cnt), 0)::BIGINT AS sms_parts,
    count(*) FILTER (WHERE status_class = 'delivered')::BIGINT AS delivered,
    count(*) FILTER (WHERE status_class = 'failed')::BIGINT AS failed,
    count(*) FILTER (WHERE status_class = 'pending')::BIGINT AS pending,
    count(*) FILTER (WHERE status_class = 'other')::BIGINT AS other
"""
_RATES = """
    delivered::DOUBLE / messages AS delivery_rate,
    CASE WHEN delivered + failed > 0 THEN delivered::DOUBLE / (delivered + failed) END AS settled_delivery_rate,
    cost,
    currency,
    CASE WHEN delivered > 0 THEN CAST(cost / delivered AS DECIMAL(18, 6)) END AS cost_per_delivered
"""
DELIVERY_DAILY_DDL = f"""
CREATE TABLE IF NOT EXISTS {SCHEMA}.delivery_daily (
    date DATE NOT NULL, channel VARCHAR NOT NULL, country VARCHAR, operator VARCHAR,
    messages BIGINT NOT NULL, sms_parts BIGINT NOT NULL, delivered BIGINT NOT NULL, failed BIGINT NOT NULL,
    pending BIGINT NOT NULL, other BIGINT NOT NULL, delivery_rate DOUBLE, settled_delivery_rate DOUBLE,
    cost DECIMAL(38, 6), currency VARCHAR, cost_per_delivered DECIMAL(18, 6)
)
"""


def _sql_list(paths: Sequence[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


class Warehouse:
    """The DuckDB file at ``{data_dir}/warehouse.duckdb``.

    Example:
        >>> wh = Warehouse("data")
        >>> with wh.connect(read_only=True) as conn:
        ...     conn.sql("SELECT * FROM smsc.delivery_by_operator").show()
    """

    def __init__(self, data_dir: str | os.PathLike[str], *, lock_retry_s: float = LOCK_RETRY_S) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.path = self.data_dir / WAREHOUSE_FILE
        self.lock_retry_s = lock_retry_s

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file's lock (up to ``lock_retry_s``)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_retry_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield conn
        finally:
            conn.close()

    def history_store(self, channel: str) -> PartitionStore:
        return PartitionStore(self.data_dir, HISTORY_TABLES[channel])

    def refresh_views(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        """(Re)create ``smsc.<channel>_history`` views over the committed Parquet files; returns their
        names. A channel with no files yet gets no view."""
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        views = []
        for channel, table in HISTORY_TABLES.items():
            store = self.history_store(channel)
            if store.days():
                conn.execute(
                    f"CREATE OR REPLACE VIEW {SCHEMA}.{table} AS "
                    f"SELECT * FROM read_parquet('{store.glob}', hive_partitioning = false, union_by_name = true)"
                )
                views.append(f"{SCHEMA}.{table}")
        return views

    def _history_source(self, channels: Sequence[str], days: Sequence[dt.date] | None = None) -> str:
        """A SQL relation over the history files of ``channels`` (only ``days`` when given)."""
        files: list[str] = []
        for channel in channels:
            store = self.history_store(channel)
            wanted = store.days() if days is None else [d for d in days if store.path(d).exists()]
            files += [str(store.path(d)) for d in wanted]
        if not files:
            return "empty_history"
        return f"read_parquet({_sql_list(files)}, hive_partitioning = false, union_by_name = true)"

    def replace_delivery_daily(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str], first: dt.date, last: dt.date
    ) -> int:
        """Recompute ``smsc.delivery_daily`` for the days ``first``..``last`` in one transaction; returns the
        number of rows written."""
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(DELIVERY_DAILY_DDL)
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM {SCHEMA}.delivery_daily WHERE date BETWEEN ? AND ?", [first, last])
            source = self._history_source(channels, days)
            if source != "empty_history":
                conn.execute(
                    f"""
                    INSERT INTO {SCHEMA}.delivery_daily
                    SELECT date, channel, country, operator, messages, sms_parts, delivered, failed, pending,
                           other, {_RATES}
                    FROM (
                        SELECT date, channel, country, operator, currency, {_MEASURES},
                               coalesce(sum(cost), 0)::DECIMAL(38, 6) AS cost
                        FROM {source}
                        WHERE date BETWEEN ? AND ?
                        GROUP BY ALL
                    )
                    ORDER BY date, channel, country, operator
                    """,
                    [first, last],
                )
            (count,) = conn.execute(
                f"SELECT count(*) FROM {SCHEMA}.delivery_daily WHERE date BETWEEN ? AND ?", [first, last]
            ).fetchone()
            conn.execute("COMMIT")
            return int(count)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def rebuild_rollup(self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str], by: str) -> int:
        """Recreate ``smsc.delivery_by_<by>`` (``operator`` or ``country``) over every loaded day."""
        keys = {"operator": "channel, country, operator", "country": "channel, country"}[by]
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        source = self._history_source(channels)
        if source == "empty_history":
            conn.register("empty_history", HISTORY_SCHEMA.empty_table())
        conn.execute(
            f"""
            CREATE OR REPLACE TABLE {SCHEMA}.delivery_by_{by} AS
            SELECT {keys}, first_date, last_date, messages, sms_parts, delivered, failed, pending, other, {_RATES}
            FROM (
                SELECT {keys}, currency, min(date) AS first_date, max(date) AS last_date, {_MEASURES},
                       coalesce(sum(cost), 0)::DECIMAL(38, 6) AS cost
                FROM {source}
                GROUP BY ALL
            )
            ORDER BY messages DESC, {keys}
            """
        )
        (count,) = conn.execute(f"SELECT count(*) FROM {SCHEMA}.delivery_by_{by}").fetchone()
        return int(count)
