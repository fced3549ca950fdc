"""The DuckDB warehouse, and every SQL string of the package: views over the Parquet partitions, the
delivery tables built from them, and the queries the checks run.

DuckDB allows one writing process per database file, and a process holding the file (even read-only) keeps
writers of other processes out. So writers connect briefly and retry while the file is locked, and every
Dagster step that writes here runs in the ``smsc_duckdb`` pool (limit 1). Readers use
:meth:`Warehouse.connect` with ``read_only=True``, which also retries, and close the connection after the
query; a reader that keeps a connection open blocks the pipeline's writers (they name its process).

With ``data_dir`` in an object store (``s3://…``) the warehouse file is an object of the store: a writer
downloads it, works on the local copy and uploads it when its block ends without error (refusing when
another writer replaced it meanwhile); a reader works on a fresh copy. Each write also exports this
account's tables as Parquet, ``{account folder}/{table}/data.parquet``, so a laptop reads everything with
:func:`connect` without DuckDB's S3 extension.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import pyarrow.parquet as pq

from smsc_dagster.core import CHANNELS, Channel, SMSCDataError, SMSCError, days_between, get_channel

from .contract import DELIVERY_COLUMNS, REQUIRED_COLUMNS, sql_columns
from .filesystem import RemotePath, StorePath, arrow_file, attach
from .layout import ACCOUNT_RE, DEFAULT_SCHEMA, MANIFEST_FILE, UNION_SCHEMA, WAREHOUSE_FILE, Layout
from .marts import MEASURES as _MEASURES, SUMMED_MEASURES as _SUMMED_MEASURES, exact_ratio
from .partitions import DATA_FILE, PAGING_COMPLETE, PartitionStore, file_metadata

LOCK_RETRY_S = 120.0
# The checks read Parquet in an in-memory DuckDB with this cap and a spill directory, so a GROUP BY over
# years of history stays small instead of growing with it.
CHECK_MEMORY_LIMIT = "96MB"
ROLLUPS = ("operator", "country")
_ROLLUP_KEYS = {"operator": "channel, country, operator", "country": "channel, country"}

_RATES = f"""
    delivered::DOUBLE / messages AS delivery_rate,
    CASE WHEN delivered + failed > 0 THEN delivered::DOUBLE / (delivered + failed) END AS settled_delivery_rate,
    cost,
    currency,
    ({exact_ratio("cost", "delivered")})::DECIMAL(18, 6) AS cost_per_delivered,
    ({exact_ratio("cost", "sms_parts")})::DECIMAL(18, 6) AS cost_per_part
"""
_PID_RE = re.compile(r"PID (\d+)")
_HOLDER_RE = re.compile(r"lock is held in (.+?) \(PID")


class WarehouseLockedError(SMSCError):
    """Another process held ``warehouse.duckdb`` for longer than the writer waits: usually a notebook that
    opened it with ``duckdb.connect(...)`` and kept the connection."""


def _locked_message(error: str, read_only: bool, waited_s: float) -> str:
    """Why a connection gave up, from DuckDB's lock error (which names the holding process and, when only
    readers hold the file, says it could still be opened read-only)."""
    pid = _PID_RE.search(error)
    program = _HOLDER_RE.search(error)
    who = f"process {pid.group(1)}" if pid else "another process"
    if program:
        who += f" ({program.group(1).rsplit('/', 1)[-1]})"
    waited = f"was not released within {waited_s:g} s"
    how = (
        "Read with `with smsc_dagster.Warehouse(data_dir).connect(read_only=True) as conn:` (or "
        "Warehouse(data_dir).query(sql)), which waits for the pipeline's writers and releases the file when the "
        "block ends, or read the Parquet files directly."
    )
    if not read_only and "read-only mode" in error:
        return (
            f"warehouse.duckdb is held open by a reader, {who}, and {waited}: DuckDB lets no process write while "
            f"another keeps the file open, even read-only. Usually a notebook or script that called "
            f"duckdb.connect(...warehouse.duckdb, read_only=True) and kept the connection: close it (or stop {who}). "
            + how
        )
    if read_only:
        return (
            f"warehouse.duckdb is held for writing by {who}, and {waited}. The pipeline's steps write only "
            f"briefly; a longer hold is a process that opened the file with duckdb.connect(...) without "
            f"read_only=True and kept it: close it (or stop {who}). " + how
        )
    return (
        f"warehouse.duckdb is held for writing by {who}, and {waited}: another writer (a script's "
        f"duckdb.connect(...) kept open, or a step outside the smsc_duckdb pool). Close it (or stop {who}). " + how
    )


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sql_list(paths: Sequence[str]) -> str:
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"


def history_view_sql(name: str, store: PartitionStore) -> str:
    """``CREATE OR REPLACE VIEW name`` over every committed partition file of ``store``."""
    return (
        f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({sql_string(store.glob)}, "
        "hive_partitioning = false, union_by_name = true)"
    )


def by_copies(duplicate: tuple) -> tuple:
    """The order of :meth:`HistoryQueries.duplicate_ids`: most copies first, then ``int_id`` (NULL last)."""
    return (-duplicate[1], duplicate[0] is None, duplicate[0] or 0)


def parquet_source(files: Sequence[str], *, filename: bool = False) -> str:
    """A SQL relation over exactly these Parquet files."""
    extra = ", filename = true" if filename else ""
    return f"read_parquet({sql_list(files)}, hive_partitioning = false, union_by_name = true{extra})"


class Warehouse:
    """The DuckDB file of a ``data_dir`` (``warehouse.duckdb``), seen from one account's :class:`Layout`.

    Args:
        layout: the account whose schema this object writes (``smsc`` or ``smsc_<account>``); a plain path
            means the single, unnamed account.
        lock_retry_s: how long a connection waits for another process's lock.

    Example:
        >>> from smsc_dagster import Warehouse
        >>> with Warehouse("data").connect(read_only=True) as conn:
        ...     conn.sql("SELECT * FROM smsc.delivery_by_operator").show()
    """

    def __init__(self, layout: Layout | str, *, lock_retry_s: float = LOCK_RETRY_S) -> None:
        self.layout = layout if isinstance(layout, Layout) else Layout(layout)
        self.path = self.layout.warehouse_path
        self.schema = self.layout.schema
        self.lock_retry_s = lock_retry_s

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file's lock (up to ``lock_retry_s``), and
        closed when the ``with`` block ends. This is how to read the warehouse while the pipeline runs:
        ``duckdb.connect(path, read_only=True)`` fails at once whenever a writer holds the file, and a
        connection kept open keeps the pipeline's writers out.

        Example:
            >>> with Warehouse("data").connect(read_only=True) as conn:
            ...     df = conn.sql("SELECT * FROM smsc.delivery_daily").df()

        Raises:
            WarehouseLockedError: the lock was not released in time; the message says whether a reader or a
                writer holds the file, and names its process.
        """
        if isinstance(self.path, RemotePath):
            with self._remote_connect(read_only=read_only) as conn:
                yield conn
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_retry_s
        delay = 0.05
        while True:
            try:
                conn = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                if time.monotonic() > deadline:
                    raise WarehouseLockedError(_locked_message(str(exc), read_only, self.lock_retry_s)) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _remote_connect(self, *, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """:meth:`connect` for a warehouse object in a store: a local copy, uploaded again (with this
        account's tables exported as Parquet) when a writer's block ends without error."""
        remote = self.path
        assert isinstance(remote, RemotePath)
        workdir = Path(tempfile.mkdtemp(prefix="smsc_warehouse_"))
        try:
            local = workdir / remote.name
            before = remote.version()
            if before is not None:
                with remote.open("rb") as source, open(local, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            conn = duckdb.connect(str(local), read_only=read_only)
            try:
                attach(conn, self.layout.data_dir)
                yield conn
                if read_only:
                    return
                exports = self._export_tables(conn, workdir)
            finally:
                conn.close()
            if remote.version() != before:
                raise WarehouseLockedError(
                    f"{WAREHOUSE_FILE} in the store was replaced by another writer while this step worked on "
                    f"its copy: this step's changes were not uploaded. Run every DuckDB writer in the "
                    f"smsc_duckdb pool with a limit of 1 (on the Dagster instance every run shares), and re-run."
                )
            for table, path in exports.items():
                _upload(path, self.layout.root / table / DATA_FILE)
            _upload(local, remote)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _export_tables(self, conn: duckdb.DuckDBPyConnection, workdir: Path) -> dict[str, Path]:
        """This account's warehouse tables, each written to a local Parquet file (to be uploaded)."""
        tables = [t for (t,) in conn.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? ORDER BY 1", [self.schema]
        ).fetchall()]
        exports = {}
        for table in tables:
            path = workdir / f"{table}.parquet"
            conn.execute(
                f"COPY (SELECT * FROM {self.table(table)}) TO {sql_string(str(path))} (FORMAT parquet, COMPRESSION zstd)"
            )
            exports[table] = path
        return exports

    def query(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        """The result of one read-only query as a DataFrame, through :meth:`connect` (so it waits for the
        pipeline's writers, and holds the file only while the query runs).

        Example:
            >>> Warehouse("data").query("SELECT * FROM smsc.delivery_by_operator")
        """
        with self.connect(read_only=True) as conn:
            return conn.execute(sql, list(params or [])).df()

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}"

    # -- views ------------------------------------------------------------------------------------------

    def refresh_views(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        """(Re)create this account's ``<schema>.<channel>_history`` views over its committed Parquet files,
        drop the views of tables with no files left, and refresh the ``smsc_all`` union views; returns the
        history views that exist."""
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        views = []
        for channel in CHANNELS.values():
            store = self.layout.store(channel)
            if store.days():
                conn.execute(history_view_sql(self.table(channel.table), store))
                views.append(self.table(channel.table))
            else:
                conn.execute(f"DROP VIEW IF EXISTS {self.table(channel.table)}")
        self.refresh_union_views(conn)
        return views

    def refresh_union_views(self, conn: duckdb.DuckDBPyConnection) -> list[str]:
        """``smsc_all.<table>``: every named account's table of that name, with an ``account`` column."""
        relations = conn.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name LIKE 'smsc\\_%' ESCAPE '\\' "
            "AND database_name = current_database() "
            "UNION SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name LIKE 'smsc\\_%' ESCAPE '\\' "
            "AND database_name = current_database() "
            "ORDER BY 1, 2"
        ).fetchall()
        by_table: dict[str, list[str]] = {}
        for schema, table in relations:
            if schema != UNION_SCHEMA and schema != DEFAULT_SCHEMA:
                by_table.setdefault(table, []).append(schema)
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {UNION_SCHEMA}")
        existing = {t for (t,) in conn.execute(
            "SELECT view_name FROM duckdb_views() WHERE schema_name = ?", [UNION_SCHEMA]
        ).fetchall()}
        for table in existing - set(by_table):
            conn.execute(f"DROP VIEW IF EXISTS {UNION_SCHEMA}.{table}")
        for table, schemas in by_table.items():
            union = " UNION ALL BY NAME ".join(
                f"SELECT '{schema.removeprefix(DEFAULT_SCHEMA + '_')}' AS account, * FROM {schema}.{table}"
                for schema in schemas
            )
            conn.execute(f"CREATE OR REPLACE VIEW {UNION_SCHEMA}.{table} AS {union}")
        return sorted(by_table)

    def _history_source(
        self, channels: Sequence[Channel], days: Sequence[dt.date] | None = None, *, readable_only: bool = False
    ) -> str | None:
        """A SQL relation over the history files of ``channels`` (only ``days`` when given; only the files
        that read whole when ``readable_only``), or ``None``."""
        files: list[StorePath] = []
        for channel in channels:
            store = self.layout.store(channel)
            wanted = store.days() if days is None else [d for d in days if store.path(d).exists()]
            files += [store.path(d) for d in wanted]
        if readable_only:
            files = [f for f in files if _reads_whole(f)]
        return parquet_source([str(f) for f in files]) if files else None

    # -- delivery tables --------------------------------------------------------------------------------

    def in_batches(
        self, conn: duckdb.DuckDBPyConnection, ranges: Sequence[tuple[dt.date, dt.date]]
    ) -> Iterator[tuple[dt.date, dt.date]]:
        """``ranges``, for a step that replaces a backfill's days through ``conn`` one range at a time: on one
        DuckDB thread (a second keeps buffers of its own, which add up over a long range) and with a CHECKPOINT
        between ranges, so the rows already replaced wait on disk, not in memory. The step's peak then follows
        the range, not the backfill."""
        conn.execute("SET threads = 1")
        for i, (lo, hi) in enumerate(ranges):
            yield lo, hi
            if i + 1 < len(ranges):
                conn.execute("CHECKPOINT")


    def _ensure_delivery_daily(self, conn: duckdb.DuckDBPyConnection) -> None:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {self.table('delivery_daily')} ({sql_columns(DELIVERY_COLUMNS)})")
        # A table written before cost_per_part existed gains it (NULL until its days are recomputed).
        conn.execute(f"ALTER TABLE {self.table('delivery_daily')} ADD COLUMN IF NOT EXISTS cost_per_part DECIMAL(18, 6)")

    def replace_delivery_daily(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], first: dt.date, last: dt.date
    ) -> dict[dt.date, int]:
        """Recompute ``delivery_daily`` for the days ``first``..``last`` in one transaction; returns the
        number of rows written for each day."""
        channels = [get_channel(c) for c in channels]
        self._ensure_delivery_daily(conn)
        conn.execute("BEGIN TRANSACTION")
        try:
            conn.execute(f"DELETE FROM {self.table('delivery_daily')} WHERE date BETWEEN ? AND ?", [first, last])
            source = self._history_source(channels, days_between(first, last))
            if source is not None:
                conn.execute(
                    f"""
                    INSERT INTO {self.table('delivery_daily')}
                    SELECT date, channel, country, operator, messages, sms_parts, delivered, failed, pending,
                           other, {_RATES}
                    FROM (
                        SELECT date, channel, country, operator, currency, {_MEASURES}
                        FROM {source}
                        WHERE date BETWEEN ? AND ?
                        GROUP BY ALL
                    )
                    ORDER BY date, channel, country, operator
                    """,
                    [first, last],
                )
            per_day = dict(
                conn.execute(
                    f"SELECT date, count(*) FROM {self.table('delivery_daily')} WHERE date BETWEEN ? AND ? GROUP BY date",
                    [first, last],
                ).fetchall()
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.refresh_union_views(conn)
        return {day: int(per_day.get(day, 0)) for day in days_between(first, last)}

    def day_figures(
        self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], first: dt.date, last: dt.date
    ) -> dict[dt.date, dict[str, Any]]:
        """Per day of ``first``..``last``, what the UI plots for ``delivery_daily``: messages, delivered,
        delivery rate, cost (per currency; ``cost`` itself only when the day has one currency) and the
        median and 90th-percentile delivery latency in seconds (nearest rank, status-1 deliveries)."""
        figures: dict[dt.date, dict[str, Any]] = {
            day: {"messages": 0, "delivered": 0, "costs": {}} for day in days_between(first, last)
        }
        for day, currency, messages, delivered, cost in conn.execute(
            f"SELECT date, currency, sum(messages), sum(delivered), sum(cost) FROM {self.table('delivery_daily')} "
            "WHERE date BETWEEN ? AND ? GROUP BY ALL ORDER BY ALL",
            [first, last],
        ).fetchall():
            entry = figures[day]
            entry["messages"] += int(messages)
            entry["delivered"] += int(delivered)
            entry["costs"][currency] = cost
        source = self._history_source([get_channel(c) for c in channels], days_between(first, last))
        if source is not None:
            for day, p50, p90 in conn.execute(
                f"""
                SELECT date,
                       quantile_disc(epoch(status_changed_at) - epoch(sent_at), 0.5),
                       quantile_disc(epoch(status_changed_at) - epoch(sent_at), 0.9)
                FROM {source}
                WHERE status = 1 AND status_changed_at >= sent_at AND date BETWEEN ? AND ?
                GROUP BY date
                """,
                [first, last],
            ).fetchall():
                figures[day]["latency_p50_s"] = float(p50)
                figures[day]["latency_p90_s"] = float(p90)
        return figures

    def rebuild_rollup(self, conn: duckdb.DuckDBPyConnection, by: str) -> int:
        """Recreate ``delivery_by_<by>`` (``operator`` or ``country``) over every loaded day, summed from
        ``delivery_daily`` (days x groups rows, not every message)."""
        keys = _ROLLUP_KEYS[by]
        self._ensure_delivery_daily(conn)
        conn.execute(
            f"""
            CREATE OR REPLACE TABLE {self.table('delivery_by_' + by)} AS
            SELECT {keys}, first_date, last_date, messages, sms_parts, delivered, failed, pending, other, {_RATES}
            FROM (
                SELECT {keys}, currency, min(date) AS first_date, max(date) AS last_date, {_SUMMED_MEASURES}
                FROM {self.table('delivery_daily')}
                GROUP BY ALL
            )
            ORDER BY messages DESC, {keys}
            """
        )
        self.refresh_union_views(conn)
        (count,) = conn.execute(f"SELECT count(*) FROM {self.table('delivery_by_' + by)}").fetchone()
        return int(count)

    def rollup_from_history(self, conn: duckdb.DuckDBPyConnection, channels: Sequence[str | Channel], by: str) -> list[tuple]:
        """What ``delivery_by_<by>`` must hold, computed from every history row (for tests and the audit)."""
        keys = _ROLLUP_KEYS[by]
        source = self._history_source([get_channel(c) for c in channels])
        if source is None:
            return []
        return conn.execute(
            f"""
            SELECT {keys}, first_date, last_date, messages, sms_parts, delivered, failed, pending, other, {_RATES}
            FROM (
                SELECT {keys}, currency, min(date) AS first_date, max(date) AS last_date, {_MEASURES}
                FROM {source}
                GROUP BY ALL
            )
            ORDER BY messages DESC, {keys}
            """
        ).fetchall()

    def preview(self, conn: duckdb.DuckDBPyConnection, table: str, limit: int = 10) -> Any:
        """The first rows of one of this account's tables, as a DataFrame."""
        return conn.execute(f"SELECT * FROM {self.table(table)} LIMIT {int(limit)}").df()

    def read_table(self, conn: duckdb.DuckDBPyConnection, table: str, days: Sequence[dt.date] | None = None) -> Any:
        """One of this account's tables as a DataFrame (only ``days`` when given)."""
        if days is None:
            return conn.execute(f"SELECT * FROM {self.table(table)}").df()
        return conn.execute(
            f"SELECT * FROM {self.table(table)} WHERE date BETWEEN ? AND ? ORDER BY ALL", [min(days), max(days)]
        ).df()

    # -- what the checks ask ----------------------------------------------------------------------------

    def reconcile_delivery_daily(
        self, channels: Sequence[str | Channel], days: Sequence[dt.date] | None = None
    ) -> tuple[list[tuple], str | None]:
        """Per day and channel, where ``delivery_daily``'s message counts and cost sums differ from the
        history's stored files (only ``days`` when given: a run's partitions). Returns ``(mismatches,
        problem)``: ``problem`` says why nothing could be compared (the warehouse file or the table is
        missing, or a stored file could not be read), without machine paths, as it goes into check metadata."""
        source = self._history_source([get_channel(c) for c in channels], days)
        if not self.path.exists():
            if source is None:
                return [], None
            return [], f"<data_dir>/{self.path.name} does not exist: materialize {self.table('delivery_daily')}"
        try:
            return self._reconcile(source, days)
        except (duckdb.IOException, duckdb.InvalidInputException):
            # A damaged or vanished partition file: compare with what reads whole, and say so.
            readable = self._history_source([get_channel(c) for c in channels], days, readable_only=True)
            try:
                mismatches, problem = self._reconcile(readable, days)
            except duckdb.Error as exc:
                detail = str(exc).replace(str(self.layout.data_dir), "<data_dir>")
                return [], f"could not compare {self.table('delivery_daily')} with the history: {detail}"
            return mismatches, problem or "some history partitions could not be read and were left out"

    def _reconcile(self, source: str | None, days: Sequence[dt.date] | None) -> tuple[list[tuple], str | None]:
        where = f"WHERE date BETWEEN DATE '{min(days)}' AND DATE '{max(days)}'" if days else ""
        with self.connect(read_only=True) as conn:
            exists = conn.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = 'delivery_daily'",
                [self.schema],
            ).fetchone()[0]
            if not exists:
                return ([], None) if source is None else ([], f"{self.table('delivery_daily')} does not exist")
            history = (
                f"SELECT date, channel, count(*) AS messages, coalesce(sum(cost), 0) AS cost FROM {source} GROUP BY ALL"
                if source
                else "SELECT NULL::DATE AS date, NULL::VARCHAR AS channel, 0 AS messages, 0 AS cost WHERE false"
            )
            mismatches = conn.execute(
                f"""
                WITH h AS ({history}),
                     d AS (SELECT date, channel, sum(messages) AS messages, sum(cost) AS cost
                           FROM {self.table('delivery_daily')} {where} GROUP BY ALL)
                SELECT coalesce(h.date, d.date) AS date, coalesce(h.channel, d.channel),
                       h.messages, d.messages, h.cost, d.cost
                FROM h FULL OUTER JOIN d ON h.date = d.date AND h.channel = d.channel
                WHERE h.messages IS DISTINCT FROM d.messages OR h.cost IS DISTINCT FROM d.cost
                ORDER BY 1 LIMIT 20
                """
            ).fetchall()
        return mismatches, None

    def reconcile_rollup(self, by: str) -> tuple[list[tuple], str | None]:
        """Where ``delivery_by_<by>`` differs from ``delivery_daily`` summed over every day (message counts,
        delivered, cost per group and currency). Returns ``(mismatches, problem)``."""
        keys = _ROLLUP_KEYS[by]
        if not self.path.exists():
            return [], f"<data_dir>/{self.path.name} does not exist"
        with self.connect(read_only=True) as conn:
            tables = {t for (t,) in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [self.schema]
            ).fetchall()}
            for needed in ("delivery_daily", f"delivery_by_{by}"):
                if needed not in tables:
                    return [], f"{self.table(needed)} does not exist"
            join = " AND ".join(f"r.{k} IS NOT DISTINCT FROM d.{k}" for k in (*keys.split(", "), "currency"))
            mismatches = conn.execute(
                f"""
                WITH d AS (SELECT {keys}, currency, sum(messages) AS messages, sum(delivered) AS delivered,
                                  sum(cost) AS cost, min(date) AS first_date, max(date) AS last_date
                           FROM {self.table('delivery_daily')} GROUP BY ALL),
                     r AS (SELECT {keys}, currency, messages, delivered, cost, first_date, last_date
                           FROM {self.table('delivery_by_' + by)})
                SELECT coalesce(r.channel, d.channel), r.messages, d.messages, r.cost, d.cost
                FROM r FULL OUTER JOIN d ON {join}
                WHERE r.messages IS DISTINCT FROM d.messages OR r.delivered IS DISTINCT FROM d.delivered
                   OR r.cost IS DISTINCT FROM d.cost OR r.first_date IS DISTINCT FROM d.first_date
                   OR r.last_date IS DISTINCT FROM d.last_date
                LIMIT 20
                """
            ).fetchall()
        return mismatches, None


def _upload(local: Path, target: StorePath) -> None:
    """Copy a local file to an object of the store (visible whole when the upload completes)."""
    with open(local, "rb") as source, target.open("wb") as sink:
        shutil.copyfileobj(source, sink, 1 << 20)


def _reads_whole(path: StorePath) -> bool:
    try:
        pq.read_table(arrow_file(path), columns=["int_id"])
        return True
    except Exception:  # noqa: BLE001 - unreadable for whatever reason
        return False


class HistoryQueries:
    """The checks' questions about one history table's stored files, asked in a memory-capped, in-memory
    DuckDB (so they never touch the warehouse's lock).

    Args:
        store: the table's partitions.
        spill_dir: where DuckDB spills when the memory limit is reached.
        days: only these partitions (``None``: every stored one).
    """

    def __init__(self, store: PartitionStore, spill_dir, days: Sequence[dt.date] | None = None) -> None:
        self.store = store
        self.spill_dir = spill_dir
        self.days = days

    def _files(self) -> list[StorePath]:
        stored = self.store.days()
        wanted = stored if self.days is None else sorted(set(self.days) & set(stored))
        return [self.store.path(d) for d in wanted]

    def _query(self, sql: str) -> list[tuple]:
        files = self._files()
        if not files:
            return []
        # DuckDB creates only the last level of its spill directory: a store without .staging/ (restored from a
        # copy, cleaned) would fail its first GROUP BY that outgrows the memory cap.
        Path(self.spill_dir).mkdir(parents=True, exist_ok=True)
        config = {"memory_limit": CHECK_MEMORY_LIMIT, "threads": 1, "temp_directory": str(self.spill_dir)}
        with duckdb.connect(config=config) as conn:
            attach(conn, self.store.base)
            try:
                return conn.execute(sql.format(source=parquet_source([str(f) for f in files], filename=True))).fetchall()
            except (duckdb.IOException, duckdb.InvalidInputException):
                # A damaged or vanished file: answer over the files that read whole (damaged() names the
                # others), rather than fail every question about the history.
                readable = [f for f in files if _reads_whole(f)]
                if not readable:
                    return []
                return conn.execute(sql.format(source=parquet_source([str(f) for f in readable], filename=True))).fetchall()

    def duplicate_ids(self, limit: int = 5, *, buckets: int = 1) -> list[tuple[int, int]]:
        """``(int_id, copies)`` of ids stored more than once, most copies first. ``buckets`` > 1: one GROUP BY
        per hash bucket of ``int_id`` (the same answer; each holds 1/buckets of the ids, so the peak is smaller)."""
        sql = "SELECT int_id, count(*) AS n FROM {source} WHERE %s GROUP BY int_id HAVING n > 1 ORDER BY n DESC, int_id LIMIT %d"
        if buckets <= 1:
            return self._query(sql % ("true", int(limit)))
        found = []
        for bucket in range(buckets):  # every copy of an id hashes alike (NULL too), so each bucket is whole
            found += self._query(sql % (f"hash(int_id) % {int(buckets)} = {bucket}", int(limit)))
        return sorted(found, key=by_copies)[: int(limit)]

    def id_ranges(self) -> list[tuple[str, int | None, int | None, int, int]]:
        """``(partition, lowest int_id, highest int_id, rows, rows without an int_id)`` of each file with rows:
        two files can share an ``int_id`` only where their ranges overlap."""
        return self._query(
            "SELECT regexp_extract(filename, 'date=([0-9-]+)', 1) AS part, min(int_id), max(int_id), count(*), "
            "count(*) FILTER (WHERE int_id IS NULL) FROM {source} GROUP BY part ORDER BY part"
        )

    def misfiled(self) -> list[tuple[str, int]]:
        """``(partition, rows)`` where a row's date is not the date of the file it is stored in."""
        return self._query(
            "SELECT regexp_extract(filename, 'date=([0-9-]+)', 1) AS part, count(*) FROM {source} "
            "WHERE CAST(date AS VARCHAR) <> regexp_extract(filename, 'date=([0-9-]+)', 1) GROUP BY part ORDER BY part"
        )

    def damaged(self) -> list[tuple[str, str]]:
        """``(day, problem)`` for stored files that cannot be read whole, whose row count differs from the
        count recorded when they were committed, or that no complete paging walk wrote. One file at a time,
        footers and one column only: memory stays flat however long the history."""
        problems = []
        for path in self._files():
            day = path.parent.name.removeprefix("date=")
            try:
                meta = file_metadata(path)
                rows = pq.ParquetFile(arrow_file(path)).metadata.num_rows
                pq.read_table(arrow_file(path), columns=["int_id"])  # every page of one column decodes
            except Exception as exc:  # noqa: BLE001 - any damage is a finding, not a crash
                problems.append((day, f"unreadable: {type(exc).__name__}"))
                continue
            if not meta.get(PAGING_COMPLETE):
                problems.append((day, "not written by a complete paging walk"))
            elif "rows" in meta and int(meta["rows"]) != rows:
                problems.append((day, f"{rows} rows stored, {meta['rows']} committed"))
        return problems

    def null_counts(self) -> dict[str, int]:
        """NULLs in each required column."""
        counts = self._query(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in REQUIRED_COLUMNS) + " FROM {source}"
        )
        return dict(zip(REQUIRED_COLUMNS, counts[0])) if counts else {}



def connect(data_dir: str | os.PathLike[str] | RemotePath) -> duckdb.DuckDBPyConnection:
    """Every table of every account of a ``data_dir`` in one in-memory DuckDB connection: a local folder or
    ``s3://bucket/prefix`` (reached with the AWS variables, see :mod:`smsc_dagster.storage.filesystem`; no
    DuckDB extension is needed).

    Each account gets its schema (``smsc``, or ``smsc_<account>``) with views over its stored files: the
    ``<channel>_history`` partitions and, from an object store, the Parquet copies of its warehouse tables
    (``delivery_daily``, ``delivery_by_operator`` ...; from a local folder they are read from
    ``warehouse.duckdb``, attached read-only); ``smsc_all.<table>`` unions the named accounts.

    Close the connection when done: on a local folder it holds ``warehouse.duckdb`` open, which keeps the
    pipeline's writers waiting.

    Example:
        >>> import smsc_dagster
        >>> conn = smsc_dagster.connect("s3://smsc-data/prod")
        >>> conn.sql("SELECT operator, delivery_rate FROM smsc_all.delivery_by_operator").show()
        >>> conn.close()

    Raises:
        SMSCDataError: ``data_dir`` holds no account's data.
    """
    root = Layout(data_dir).data_dir
    conn = duckdb.connect()
    try:
        attach(conn, root)
        layouts = _stored_accounts(root)
        if not layouts:
            raise SMSCDataError(f"{_display(root)} holds no smsc_dagster data (no {MANIFEST_FILE} and no history)")
        warehouse_file = layouts[0].warehouse_path
        local_warehouse = not isinstance(root, RemotePath) and warehouse_file.exists()
        if local_warehouse:
            conn.execute(f"ATTACH {sql_string(str(warehouse_file))} AS stored (READ_ONLY)")
        history = {channel.table for channel in CHANNELS.values()}
        for layout in layouts:
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {layout.schema}")
            for channel in CHANNELS.values():
                store = layout.store(channel)
                if store.days():
                    conn.execute(history_view_sql(layout.table_name(channel.table), store))
            if local_warehouse:
                tables = [t for (t,) in conn.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = 'stored' AND schema_name = ? "
                    "ORDER BY 1", [layout.schema]
                ).fetchall()]
                for table in tables:
                    conn.execute(f"CREATE VIEW {layout.table_name(table)} AS SELECT * FROM stored.{layout.table_name(table)}")
            elif isinstance(root, RemotePath):
                for folder in layout.root.iterdir():
                    export = folder / DATA_FILE
                    if folder.name in history or folder.name.startswith((".", "_")) or not export.is_file():
                        continue
                    conn.execute(
                        f"CREATE VIEW {layout.table_name(folder.name)} AS SELECT * FROM read_parquet("
                        f"{sql_string(str(export))})"
                    )
        Warehouse(layouts[0]).refresh_union_views(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _stored_accounts(root: StorePath) -> list[Layout]:
    """The accounts stored under a ``data_dir``: the unnamed one (a manifest or history at the top) and every
    folder with a manifest, in name order."""
    layouts = []
    top = Layout(root)
    if top.manifest_path.exists() or any(top.store(c).days() for c in CHANNELS.values()):
        layouts.append(top)
    for folder in sorted(root.iterdir(), key=str) if root.exists() else ():
        name = folder.name
        if ACCOUNT_RE.fullmatch(name) and (folder / MANIFEST_FILE).exists():
            layouts.append(Layout(root, name))
    return layouts


def _display(root: StorePath) -> str:
    return str(root) if isinstance(root, RemotePath) else "data_dir"
