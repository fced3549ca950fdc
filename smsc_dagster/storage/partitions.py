"""Parquet partitions that are replaced atomically, and the staging area that lets a long backfill stream.

Layout (see :mod:`.layout` for where ``{base}`` is): ``{base}/{table}/date=YYYY-MM-DD/data.parquet``, one file a day. A new version is written beside
the old one under a hidden name and moved over it with ``os.replace``, so a reader sees the old file or the
new one, never half of either.

A run stages its days under ``{base}/.staging/{table}/{first}_{last}/``: each page's rows go to small
per-day files, a day is consolidated into one file as soon as the backwards paging cursor has passed it (so
memory does not grow with the range), and only when the whole walk is complete are the days moved into
place. A run that dies leaves its staging and a cursor behind; the next run of the same range resumes there
instead of spending the account's request budget again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smsc_dagster.core import SMSCDataError, days_between

from .contract import HISTORY_SCHEMA
from .privacy import mask_table

DATA_FILE = "data.parquet"
COMMITTED_WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd"}
# Staged files live minutes and are read back whole once or twice: LZ4 without column statistics writes them
# about three times as fast as zstd with statistics. Committed partitions always get the options above.
STAGING_WRITE_OPTIONS: dict[str, Any] = {"compression": "lz4", "write_statistics": False}
# Written into each file's Parquet key-value metadata: how the partition was produced.
META_KEY = b"smsc_dagster"
# The file-metadata flag of a partition written by a paging walk that reached the end of its range.
PAGING_COMPLETE = "paging_complete"


def day_dir_name(day: dt.date) -> str:
    return f"date={day.isoformat()}"


def write_table_atomic(
    table: pa.Table, path: Path, metadata: dict[str, Any] | None = None, *, staging: bool = False
) -> None:
    """Write ``table`` to ``path`` through a hidden temporary file and an atomic rename (a ``staging`` file
    with :data:`STAGING_WRITE_OPTIONS`, anything else as a committed partition: zstd, with statistics)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if metadata is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(metadata)})
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        pq.write_table(table, tmp, **(STAGING_WRITE_OPTIONS if staging else COMMITTED_WRITE_OPTIONS))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_metadata(path: Path) -> dict[str, Any]:
    """What :func:`write_table_atomic` recorded about how a file was produced ({} if nothing)."""
    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    return json.loads(raw) if raw else {}


class PartitionStore:
    """The committed daily partitions of one table.

    Args:
        base: the folder holding the account's tables (``Layout.root``).
        table: the table's name, e.g. ``sms_history``.

    Example:
        >>> store = Layout("data").store("sms")
        >>> store.read(dt.date(2026, 11, 30)).num_rows
    """

    def __init__(self, base: str | os.PathLike[str], table: str) -> None:
        self.base = Path(base).resolve()
        self.table = table
        self.root = self.base / table

    def path(self, day: dt.date) -> Path:
        return self.root / day_dir_name(day) / DATA_FILE

    @property
    def glob(self) -> str:
        """The pattern that matches every committed partition file (and never a temporary one)."""
        return str(self.root / "date=*" / DATA_FILE)

    def days(self) -> list[dt.date]:
        if not self.root.exists():
            return []
        return sorted(
            dt.date.fromisoformat(p.parent.name.removeprefix("date="))
            for p in self.root.glob(f"date=*/{DATA_FILE}")
        )

    def read(self, day: dt.date) -> pa.Table:
        return pq.read_table(self.path(day), schema=HISTORY_SCHEMA)

    def commit(self, day: dt.date, staged_file: Path) -> None:
        """Move a finished staged file into place, replacing the day's previous version atomically."""
        target = self.path(day)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staged_file, target)


@dataclass
class DayStats:
    """What the UI shows about one partition."""

    rows: int
    cost: str
    delivered: int
    failed: int
    pending: int
    preview: str


class CommittedDays(dict):
    """What :meth:`StagedIngest.commit` returns: each committed day's :class:`DayStats` (a plain ``dict`` of
    date -> stats), plus the run's row accounting.

    Attributes:
        rows_outside_partitions: rows the server returned for the requested server days but outside the run's
            partitions (the extra server day a zone difference makes the run ask for): dropped, and counted.
        duplicate_rows: extra copies of an ``int_id`` removed (the newest version of each row was kept).
    """

    rows_outside_partitions: int = 0
    duplicate_rows: int = 0


class StagedIngest:
    """Stages one run's pages per day and commits the days when the paging walk is complete.

    Every row a page brings is either staged into its day, or dropped and counted in
    ``rows_outside_partitions`` (sent inside ``window`` but outside the run's days), or fails the page with an
    :class:`SMSCDataError` naming it (sent outside ``window``: the server returned what it was not asked for,
    so nothing is staged and no stored partition changes). Repeated ``int_id`` s keep the newest version and
    are counted in ``duplicate_rows``. Both counts live in the staging state, so they survive a resume.

    Args:
        store: where committed partitions live.
        first_day: first partition (local date) of the run.
        last_day: last partition of the run.
        timezone: the partitions' zone: a day is ``[00:00, 24:00)`` local time there.
        signature: anything that must match for a later run to resume this staging (the request range...).
        window: Unix seconds ``[start, end)`` of the server days the run requests
            (:func:`smsc_dagster.core.dates.day_bounds` of the API dates in the API zone); ``None`` skips the check.
    """

    def __init__(
        self,
        store: PartitionStore,
        first_day: dt.date,
        last_day: dt.date,
        timezone: str,
        signature: dict[str, Any],
        window: tuple[int, int] | None = None,
    ) -> None:
        self.store = store
        self.first_day = first_day
        self.last_day = last_day
        self.zone = ZoneInfo(timezone)
        self.signature = signature
        self.window = window
        self.dir = store.base / ".staging" / store.table / f"{first_day.isoformat()}_{last_day.isoformat()}"
        self.state_path = self.dir / "state.json"
        self.state: dict[str, Any] = {
            "signature": signature,
            "cursor": None,
            "complete_before": None,
            "pages": 0,
            "rows_outside_partitions": 0,
            "duplicate_rows": 0,
        }
        self._open_days: set[dt.date] = set()
        self._page_seq = 0

    # -- resume -----------------------------------------------------------------------------------------

    def resume_point(self) -> tuple[dt.date, int | None] | None:
        """The cursor to resume from when a previous run of this same range left staging behind, else
        ``None`` (and any stale staging is cleared)."""
        if self.state_path.exists():
            try:
                saved = json.loads(self.state_path.read_text())
            except ValueError:
                saved = {}
            if saved.get("signature") == self.signature and saved.get("cursor"):
                self.state = {"rows_outside_partitions": 0, "duplicate_rows": 0, **saved}
                self._open_days = {
                    dt.date.fromisoformat(p.name.removeprefix("date="))
                    for p in self.dir.glob("date=*")
                    if any(p.glob("page-*.parquet"))
                }
                self._page_seq = int(saved.get("pages", 0))
                window_end, prev_id = saved["cursor"]
                return dt.date.fromisoformat(window_end), prev_id
        self.discard()
        return None

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def rows_outside_partitions(self) -> int:
        """Rows dropped so far because they were sent inside the requested server days but outside the run's
        partitions (a resumed run's count includes the interrupted run's)."""
        return int(self.state.get("rows_outside_partitions", 0))

    @property
    def duplicate_rows(self) -> int:
        """Extra copies of an ``int_id`` removed so far (a resumed run's count includes the interrupted run's)."""
        return int(self.state.get("duplicate_rows", 0))

    # -- pages ------------------------------------------------------------------------------------------

    def day_start_ts(self, day: dt.date) -> int:
        return int(dt.datetime.combine(day, dt.time(), self.zone).timestamp())

    def add_page(self, table: pa.Table, cursor: tuple[dt.date, int | None]) -> None:
        """Stage one page's rows (already converted), then consolidate every day the cursor has passed.

        Args:
            table: the page's rows in the history schema; rows outside the run's days but inside ``window``
                are dropped and counted, a row outside ``window`` raises :class:`SMSCDataError` (nothing of the
                page is staged then).
            cursor: the client's resume cursor after this page.
        """
        if self.window is not None and table.num_rows:
            _check_window(table, self.window)
        oldest = pc.min(table["sent_at"]).value if table.num_rows else None
        oldest_sent_ts = oldest // 1_000_000 if oldest is not None else None
        in_range = pc.and_(
            pc.greater_equal(table["date"], pa.scalar(self.first_day, pa.date32())),
            pc.less_equal(table["date"], pa.scalar(self.last_day, pa.date32())),
        )
        received = table.num_rows
        table = table.filter(in_range)
        self.state["rows_outside_partitions"] = self.rows_outside_partitions + received - table.num_rows
        if not _strictly_descending(table["int_id"]):  # a repeated int_id within the page (or out of order)
            deduped = dedupe(table)
            self.state["duplicate_rows"] = self.duplicate_rows + table.num_rows - deduped.num_rows
            table = deduped
        self._page_seq += 1
        if table.num_rows:
            dates = table["date"].unique().to_pylist()
            for day in dates:
                rows = table.filter(pc.equal(table["date"], pa.scalar(day, pa.date32())))
                path = self.dir / day_dir_name(day) / f"page-{self._page_seq:06d}.parquet"
                write_table_atomic(rows, path, staging=True)
                self._open_days.add(day)
        if oldest_sent_ts is not None:
            passed = self.state.get("complete_before")
            self.state["complete_before"] = oldest_sent_ts if passed is None else min(passed, oldest_sent_ts)
        # Rows come newest first: once the walk has reached a send time before a day's start, that day is whole.
        cursor_ts = self.state["complete_before"]
        if cursor_ts is not None:
            for day in sorted(d for d in self._open_days if self.day_start_ts(d) > cursor_ts):
                self._consolidate(day)
        self.state["cursor"] = [cursor[0].isoformat(), cursor[1]]
        self.state["pages"] = self._page_seq
        self._save_state()

    def _save_state(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".state.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_path)

    def _consolidate(self, day: dt.date) -> None:
        """Merge a day's staged page files into its one staged ``data.parquet``."""
        day_dir = self.dir / day_dir_name(day)
        parts = sorted(day_dir.glob("page-*.parquet"))
        existing = day_dir / DATA_FILE
        tables = [read_staged(p) for p in parts]
        if existing.exists():
            tables.append(read_staged(existing))
        if tables:
            combined = pa.concat_tables(tables)
            merged = dedupe(combined)
            self.state["duplicate_rows"] = self.duplicate_rows + combined.num_rows - merged.num_rows
        else:
            merged = HISTORY_SCHEMA.empty_table()
        write_table_atomic(merged, existing, staging=True)
        for p in parts:
            p.unlink()
        self._open_days.discard(day)

    # -- commit -----------------------------------------------------------------------------------------

    def commit(self, file_meta: dict[str, Any]) -> CommittedDays:
        """Consolidate what is left, write empty days, then move every day into place. Returns each day's
        stats, with the run's ``rows_outside_partitions`` and ``duplicate_rows``. Call only when the paging
        walk reached its end."""
        for day in sorted(self._open_days):
            self._consolidate(day)
        stats = CommittedDays()
        stats.rows_outside_partitions = self.rows_outside_partitions
        stats.duplicate_rows = self.duplicate_rows
        staged: dict[dt.date, Path] = {}
        for day in days_between(self.first_day, self.last_day):
            path = self.dir / day_dir_name(day) / DATA_FILE
            table = read_staged(path) if path.exists() else HISTORY_SCHEMA.empty_table()
            if not _strictly_descending(table["int_id"]):  # consolidated days already are: skip the sort
                table = table.sort_by([("int_id", "descending")])
            write_table_atomic(table, path, metadata={**file_meta, "rows": table.num_rows, "date": day.isoformat()})
            stats[day] = day_stats(table)
            staged[day] = path
        for day, path in staged.items():
            self.store.commit(day, path)
        self.discard()
        return stats


def read_staged(path: Path) -> pa.Table:
    """A staged file as a table of :data:`HISTORY_SCHEMA`: the same table as ``pq.read_table(path,
    schema=HISTORY_SCHEMA)``, read directly when the file holds exactly that schema (our own staging files
    always do), which skips the dataset machinery."""
    table = pq.ParquetFile(path).read()
    if table.schema.equals(HISTORY_SCHEMA, check_metadata=True):
        return table
    return pq.read_table(path, schema=HISTORY_SCHEMA)


def _strictly_descending(ids: pa.ChunkedArray | pa.Array) -> bool:
    """Whether ``ids`` has no nulls and every value is smaller than the one before (no duplicates)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.null_count:
        return False
    if len(ids) < 2:
        return True
    return bool(pc.all(pc.greater(ids[:-1], ids[1:])).as_py())


def _check_window(table: pa.Table, window: tuple[int, int]) -> None:
    """Raise :class:`SMSCDataError` naming the first row sent outside ``window`` (Unix seconds ``[start, end)``)."""
    start, end = window
    sent = table["sent_at"]
    utc = pa.timestamp("us", tz="UTC")
    bad = pc.or_(pc.less(sent, pa.scalar(start * 1_000_000, utc)), pc.greater_equal(sent, pa.scalar(end * 1_000_000, utc)))
    if not pc.any(bad).as_py():
        return
    index = pc.index(bad, True).as_py()
    seconds = sent[index].value // 1_000_000
    when = lambda ts: dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")  # noqa: E731
    raise SMSCDataError(
        f"row with int_id={table['int_id'][index].as_py()}: send_timestamp={seconds} ({when(seconds)} UTC) is "
        f"outside the server days the run requested ([{start}, {end}) = {when(start)} to {when(end)} UTC); "
        "SMSC returned a row it was not asked for, so the run stops and every stored partition stays as it was"
    )


def dedupe(table: pa.Table) -> pa.Table:
    """One row per ``int_id``: the newest version wins (latest ``status_changed_at``, a NULL one losing to any
    timestamp), then the most recently fetched; on a full tie, the first of them in ``table``."""
    if table.num_rows == 0:
        return table
    if _strictly_descending(table["int_id"]):
        # Already in the order the sort below produces, and without duplicates: pages staged in walk order
        # are (SMSC serves newest first), so the sort and the filter would change nothing.
        return table
    # A stable sort; NULLs sort last whatever the order (Arrow's default null placement, "at_end").
    table = table.sort_by([("int_id", "descending"), ("status_changed_at", "descending"), ("fetched_at", "descending")])
    ids = table["int_id"].combine_chunks()
    if len(ids) < 2:
        return table
    keep = pc.not_equal(ids[1:], ids[:-1])
    mask = pa.concat_arrays([pa.array([True]), keep.combine_chunks() if hasattr(keep, "combine_chunks") else keep])
    return table.filter(mask)


def day_stats(table: pa.Table) -> DayStats:
    cost = pc.sum(table["cost"]).as_py() if table.num_rows else None
    preview_cols = ["int_id", "sent_at", "phone", "operator", "status_name", "cost"]
    # Metadata lives in Dagster's instance database for good: recipients are masked whatever the tables keep.
    preview = mask_table(table.select(preview_cols).slice(0, 5)).to_pandas().to_markdown(index=False) if table.num_rows else ""
    return DayStats(
        rows=table.num_rows,
        cost=str(cost if cost is not None else "0"),
        delivered=_count(table, "delivered"),
        failed=_count(table, "failed"),
        pending=_count(table, "pending"),
        preview=preview,
    )


def _count(table: pa.Table, status_class: str) -> int:
    """Rows of ``table`` whose ``status_class`` is ``status_class``."""
    if not table.num_rows:
        return 0
    return int(pc.sum(pc.equal(table["status_class"], status_class)).as_py() or 0)
