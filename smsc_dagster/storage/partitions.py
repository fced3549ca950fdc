"""Parquet partitions that are replaced atomically, and the staging area that lets a long backfill stream.

Layout (see :mod:`.layout` for where ``{base}`` is): ``{base}/{table}/date=YYYY-MM-DD/data.parquet``, one file a day. A new version is written beside
the old one under a hidden name and moved over it with ``os.replace``, so a reader sees the old file or the
new one, never half of either. In an object store (``s3://``) the new object is uploaded under its name, which is
just as atomic (see :mod:`.filesystem`).

A run stages its days under ``{base}/.staging/{table}/{first}_{last}/``: each page's rows go to small
per-day Arrow IPC files, a day is consolidated into one file as soon as the backwards paging cursor has passed it (so
memory does not grow with the range), and only when the whole walk is complete are the days written in the
committed format and moved into place. A run that dies leaves its staging and a cursor behind; the next run
of the same range resumes there instead of spending the account's request budget again (after reading back
every staged file the state lists: see :class:`StagedIngest`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq
from tabulate import tabulate

from smsc_dagster.core import SMSCDataError, day_bounds, days_between

from .contract import HISTORY_SCHEMA
from .filesystem import RemotePath, StorePath, arrow_file, remove_tree, store_root
from .privacy import mask_table

DATA_FILE = "data.parquet"
# Committed partitions: zstd, with column statistics and page checksums (a reader can verify every page), and
# dictionary encoding except for the columns that are unique or nearly so in every row (a dictionary of them
# only costs time and space: without it a day's file is a sixth smaller and a sixth faster to write).
_UNIQUE_COLUMNS = ("int_id", "phone", "sent_at", "status_changed_at")
COMMITTED_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "write_page_checksum": True,
    "use_dictionary": [name for name in HISTORY_SCHEMA.names if name not in _UNIQUE_COLUMNS],
}
# Staged page files live minutes, are read back at most once and by nobody else: Arrow IPC files (the page's
# buffers as they are, several times as fast to write as any Parquet), each with its CRC-32 in the staging
# state, so a resumed run tells a file a power failure cut short from a whole one (staged files get no fsync,
# see StagedIngest). A day's consolidated staged file is written like a committed partition already.
# The staging state's journal in a local folder, and the size past which a save starts it over.
STATE_JOURNAL = "state.jsonl"
JOURNAL_LIMIT = 1 << 20
# Written into each file's Parquet key-value metadata: how the partition was produced.
META_KEY = b"smsc_dagster"
# The file-metadata flag of a partition written by a paging walk that reached the end of its range.
PAGING_COMPLETE = "paging_complete"


def day_dir_name(day: dt.date) -> str:
    return f"date={day.isoformat()}"


def write_table_atomic(
    table: pa.Table,
    path: StorePath,
    metadata: dict[str, Any] | None = None,
    *,
    sync: bool = True,
) -> None:
    """Write ``table`` to ``path`` as a committed partition (zstd, with statistics and page checksums) through
    a hidden temporary file and an atomic rename, fsynced before the rename unless ``sync`` is false."""
    if metadata is not None:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(metadata)})
    # Encoded in memory and written with one call: a third faster than Arrow opening the file itself.
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **COMMITTED_WRITE_OPTIONS)
    _write_bytes_atomic(sink.getvalue(), path, sync=sync)


def _write_bytes_atomic(data: Any, path: StorePath, *, sync: bool) -> None:
    if isinstance(path, RemotePath):
        # An object appears whole when its upload completes: written under its name, no temporary object.
        path.write_bytes(data)
        return
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        try:
            handle = open(tmp, "wb")
        except FileNotFoundError:  # the folder's first file
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(tmp, "wb")
        with handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def replace_file_metadata(path: StorePath, metadata: dict[str, Any]) -> bool:
    """Give the committed-format file at ``path`` the file metadata ``metadata``: byte for byte the file
    ``write_table_atomic(table, path, metadata)`` writes for the table it holds, without decoding or encoding
    a row (the data pages are copied as they are, only the footer is written anew), fsynced and replaced
    atomically.

    Returns ``False``, changing nothing, when the rebuilt footer would not describe the same row groups and
    schema (the caller then rewrites the file)."""
    data = path.read_bytes()
    source = pq.ParquetFile(pa.BufferReader(data))
    old = source.metadata
    schema = source.schema_arrow
    schema = schema.with_metadata({**(schema.metadata or {}), META_KEY: json.dumps(metadata)})
    # The footer the writer makes for this schema, with the file's row groups (what pq.write_metadata does).
    empty = pa.BufferOutputStream()
    pq.ParquetWriter(empty, schema, **COMMITTED_WRITE_OPTIONS).close()
    footer = pq.read_metadata(pa.BufferReader(empty.getvalue()))
    footer.append_row_groups(old)
    sink = pa.BufferOutputStream()
    footer.write_metadata_file(sink)
    new_footer = sink.getvalue().to_pybytes()  # b"PAR1", the footer, its length, b"PAR1"
    old_footer_length = int.from_bytes(data[-8:-4], "little")
    rebuilt = data[: len(data) - 8 - old_footer_length] + new_footer[4:]
    check = pq.ParquetFile(pa.BufferReader(rebuilt)).metadata
    if not (
        new_footer[:4] == b"PAR1"
        and check.num_rows == old.num_rows
        and check.num_row_groups == old.num_row_groups
        and check.schema.equals(old.schema)
        and all(check.row_group(i).equals(old.row_group(i)) for i in range(old.num_row_groups))
        and (check.metadata or {}).get(META_KEY) == schema.metadata[META_KEY]
    ):
        return False
    _write_bytes_atomic(rebuilt, path, sync=True)
    return True


def _write_staged_page(table: pa.Table, path: StorePath) -> int:
    """A staged page file, written in place (see :meth:`StagedIngest.add_page`): the page's Arrow IPC file,
    whose CRC-32 it returns (the state records it, so a resumed run can tell a damaged file from a whole one)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    with path.open("wb") as handle:
        handle.write(data)
    return zlib.crc32(data)


def _read_staged_page(path: StorePath, checksum: int | None = None) -> pa.Table:
    """A staged page file's rows; raises :class:`OSError` when ``checksum`` is given and the file's differs."""
    data = path.read_bytes()
    if checksum is not None and zlib.crc32(data) != checksum:
        raise OSError(f"{path.name}: checksum mismatch")
    return pa.ipc.open_file(pa.BufferReader(data)).read_all()


def file_metadata(path: StorePath) -> dict[str, Any]:
    """What :func:`write_table_atomic` recorded about how a file was produced ({} if nothing)."""
    raw = (pq.read_schema(arrow_file(path)).metadata or {}).get(META_KEY)
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
        self.base = store_root(base)
        self.table = table
        self.root = self.base / table

    def path(self, day: dt.date) -> StorePath:
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
        return pq.read_table(arrow_file(self.path(day)), schema=HISTORY_SCHEMA)

    def settlement(self, day: dt.date, timezone: str, lifetime_s: float) -> Settlement:
        """Whether the stored ``day`` is final: it holds no pending message and was read after the day's end
        plus the message lifetime (SMSC's ``valid`` is at most 24 h), so no status in it can still change
        from pending. Read from the file's commit record, not its rows."""
        path = self.path(day)
        if not path.exists():
            return Settlement(False, None, "not stored yet")
        try:
            record = file_metadata(path)
        except Exception:  # noqa: BLE001 - an unreadable file is not final
            return Settlement(False, None, "unreadable")
        pending = record.get("pending")
        read_at = record.get("read_at")
        if pending is None or read_at is None:
            return Settlement(False, pending, "written before settlement was recorded")
        final_after = day_bounds(day, day, timezone)[1] + lifetime_s
        if pending:
            return Settlement(False, pending, f"{pending} messages still pending")
        if read_at < final_after:
            return Settlement(False, 0, "read before the message lifetime had passed")
        return Settlement(True, 0, "settled")

    def commit(self, day: dt.date, staged_file: StorePath) -> None:
        """Move a finished staged file into place, replacing the day's previous version atomically."""
        target = self.path(day)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged_file.replace(target)


@dataclass
class DayStats:
    """What the UI shows about one partition."""

    rows: int
    cost: str
    delivered: int
    failed: int
    pending: int
    preview: str


@dataclass(frozen=True)
class Settlement:
    """Whether a stored day is final (see :meth:`PartitionStore.settlement`)."""

    settled: bool
    pending: int | None
    reason: str


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

    Staged files are written without ``fsync`` (committed partitions always get one): the state lists every
    staged file with its row count (and each page file's CRC-32), and a run that resumes reads each of them back
    whole (verifying the CRC-32, or a Parquet file's page checksums) before it trusts the cursor. A process that was killed leaves intact files behind and resumes
    where it stopped; files damaged by a power failure or a full disk make the run start the walk over rather
    than lose or invent a row.

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
        # The state: in a local folder a journal, one whole state a line, appended after every page (a rename a
        # page costs ext4 a flush); in an object store, which cannot append, one object replaced every time.
        self.state_path = self.dir / ("state.json" if isinstance(self.dir, RemotePath) else STATE_JOURNAL)
        self._journal: Any = None  # the open journal (local folders), from this process's first save
        self.state: dict[str, Any] = {
            "signature": signature,
            "cursor": None,
            "complete_before": None,
            "pages": 0,
            "rows_outside_partitions": 0,
            "duplicate_rows": 0,
        }
        # What is staged, day by day: the consolidated file's rows (None: none yet) and each page file's rows.
        self._staged: dict[dt.date, _StagedDay] = {}
        # The tables of the page files written by this process, so consolidating a day reads nothing back.
        self._pending: dict[tuple[dt.date, int], pa.Table] = {}
        # Each day consolidated by this process: its stats and oldest fetch, so the commit reads nothing back.
        self._summaries: dict[dt.date, tuple[DayStats, float | None]] = {}
        self._page_seq = 0
        self._made_dirs: set[dt.date] = set()
        #: Why :meth:`resume_point` could not trust what an interrupted run left behind (``None``: it could,
        #: or there was nothing); the walk then starts over.
        self.restart_reason: str | None = None

    @property
    def _open_days(self) -> set[dt.date]:
        """Days with page files not yet consolidated."""
        return {day for day, staged in self._staged.items() if staged.pages}

    # -- resume -----------------------------------------------------------------------------------------

    def resume_point(self) -> tuple[dt.date, int | None] | None:
        """The cursor to resume from when a previous run of this same range left staging behind, else
        ``None`` (and any stale or damaged staging is cleared)."""
        saved = self.saved_state()
        if saved is not None:
            if saved.get("signature") == self.signature and saved.get("cursor"):
                try:
                    staged = self._verified(saved)
                except _DamagedStaging as exc:
                    self.restart_reason = str(exc)
                else:
                    self.state = {
                        "rows_outside_partitions": 0,
                        "duplicate_rows": 0,
                        **{k: v for k, v in saved.items() if k not in ("staged", "consolidating")},
                    }
                    self._staged = staged
                    self._page_seq = int(saved.get("pages", 0))
                    self._remove_unlisted()
                    self._save_state()
                    window_end, prev_id = saved["cursor"]
                    return dt.date.fromisoformat(window_end), prev_id
        self.discard()
        return None

    def _verified(self, saved: dict[str, Any]) -> dict[dt.date, _StagedDay]:
        """What the saved state says is staged, each file read back whole; raises :class:`_DamagedStaging`
        when a listed file is missing, unreadable or holds another number of rows."""
        if "staged" not in saved:  # a state written before staged files were listed: take the files as they are
            return self._staged_on_disk()
        committing = bool(saved.get("committing"))
        consolidating = set(saved.get("consolidating") or ())
        staged: dict[dt.date, _StagedDay] = {}
        for key, entry in saved["staged"].items():
            day = dt.date.fromisoformat(key)
            listed = _StagedDay(
                entry.get("data"),
                {int(seq): int(rows) for seq, rows in entry.get("pages", {}).items()},
                {int(seq): int(crc) for seq, crc in entry.get("checksums", {}).items()},
            )
            data_path = self._data_path(day)
            if committing and not data_path.exists():
                listed = _StagedDay(None, {})  # moved into place by the interrupted commit
            elif key in consolidating and not self._intact(day, listed):
                # Killed while consolidating or committing this day: its data file already holds every row of
                # the listed files (the pages are removed only after it is in place).
                rows = _whole_rows(data_path)
                if rows is None:
                    raise _DamagedStaging(f"the staged rows of {key} are incomplete (consolidation interrupted)")
                listed = _StagedDay(rows, {})
            elif not self._intact(day, listed):
                raise _DamagedStaging(f"a staged file of {key} is missing or damaged")
            staged[day] = listed
        return staged

    def _intact(self, day: dt.date, listed: _StagedDay) -> bool:
        """Whether every file ``listed`` for ``day`` exists, reads whole (its checksums verified) and holds the
        listed rows."""
        for seq, rows in listed.pages.items():
            checksum = listed.checksums.get(seq)
            if checksum is None:  # a Parquet page file, staged by an earlier version
                if _whole_rows(self._staged_page(day, listed, seq)) != rows:
                    return False
                continue
            try:
                if _read_staged_page(self._page_path(day, seq), checksum).num_rows != rows:
                    return False
            except (OSError, pa.ArrowException):
                return False
        return listed.data is None or _whole_rows(self._data_path(day)) == listed.data

    def _staged_on_disk(self) -> dict[dt.date, _StagedDay]:
        staged: dict[dt.date, _StagedDay] = {}
        for day_dir in self.dir.glob("date=*"):
            day = dt.date.fromisoformat(day_dir.name.removeprefix("date="))
            pages = {
                int(p.stem.removeprefix("page-")): pq.ParquetFile(arrow_file(p)).metadata.num_rows
                for p in day_dir.glob("page-*.parquet")
            }
            data = day_dir / DATA_FILE
            staged[day] = _StagedDay(pq.ParquetFile(arrow_file(data)).metadata.num_rows if data.exists() else None, pages)
        return staged

    def _remove_unlisted(self) -> None:
        """Delete staged files the state does not list: pages of a page whose cursor was never saved (it is
        requested again), pages already merged into their day's file, temporary files."""
        keep = {self._staged_page(d, s, seq) for d, s in self._staged.items() for seq in s.pages}
        keep |= {self._data_path(d) for d, s in self._staged.items() if s.data is not None}
        for path in self.dir.glob("date=*/*"):
            if path not in keep:
                path.unlink(missing_ok=True)

    def discard(self) -> None:
        self._close_journal()
        remove_tree(self.dir)
        self._made_dirs.clear()
        self._staged.clear()
        self._pending.clear()
        self._summaries.clear()

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

    def _data_path(self, day: dt.date) -> StorePath:
        return self.dir / day_dir_name(day) / DATA_FILE

    def _page_path(self, day: dt.date, seq: int, *, legacy: bool = False) -> StorePath:
        return self.dir / day_dir_name(day) / f"page-{seq:06d}.{'parquet' if legacy else 'arrow'}"

    def _staged_page(self, day: dt.date, staged: _StagedDay, seq: int) -> StorePath:
        """The file of page ``seq`` of ``staged``: an Arrow IPC file, or a Parquet one when it was listed without
        a checksum (staged by an earlier version)."""
        return self._page_path(day, seq, legacy=seq not in staged.checksums)

    def _day_dir(self, day: dt.date) -> StorePath:
        """The day's staging folder, created once per run."""
        path = self.dir / day_dir_name(day)
        if day not in self._made_dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(day)
        return path

    def add_page(self, table: pa.Table, cursor: tuple[dt.date, int | None]) -> None:
        """Stage one page's rows (already converted), then consolidate every day the cursor has passed.

        Args:
            table: the page's rows in the history schema; rows outside the run's days but inside ``window``
                are dropped and counted, a row outside ``window`` raises :class:`SMSCDataError` (nothing of the
                page is staged then).
            cursor: the client's resume cursor after this page.
        """
        oldest_sent_ts = None
        first_sent, last_sent = (s.value for s in pc.min_max(table["sent_at"]).values())
        if first_sent is not None:
            # One pass decides the common case; a row outside the window is named by the full check.
            if self.window is not None and not (
                self.window[0] * 1_000_000 <= first_sent and last_sent < self.window[1] * 1_000_000
            ):
                _check_window(table, self.window)
            oldest_sent_ts = first_sent // 1_000_000
        received = table.num_rows
        if received:
            dates = table["date"]
            low, high = pc.min_max(dates).values()
            if low.as_py() < self.first_day or high.as_py() > self.last_day:
                in_range = pc.and_(
                    pc.greater_equal(dates, pa.scalar(self.first_day, pa.date32())),
                    pc.less_equal(dates, pa.scalar(self.last_day, pa.date32())),
                )
                table = table.filter(in_range)
        self.state["rows_outside_partitions"] = self.rows_outside_partitions + received - table.num_rows
        if not _strictly_descending(table["int_id"]):  # a repeated int_id within the page (or out of order)
            deduped = dedupe(table)
            self.state["duplicate_rows"] = self.duplicate_rows + table.num_rows - deduped.num_rows
            table = deduped
        self._page_seq += 1
        if table.num_rows:
            days = table["date"].unique().to_pylist()
            for day in days:
                rows = table if len(days) == 1 else table.filter(pc.equal(table["date"], pa.scalar(day, pa.date32())))
                # Straight under its name, no rename: a file the state does not list yet is removed on resume.
                self._day_dir(day)
                checksum = _write_staged_page(rows, self._page_path(day, self._page_seq))
                staged = self._staged.setdefault(day, _StagedDay(None, {}))
                staged.pages[self._page_seq] = rows.num_rows
                staged.checksums[self._page_seq] = checksum
                self._pending[(day, self._page_seq)] = rows
        if oldest_sent_ts is not None:
            passed = self.state.get("complete_before")
            self.state["complete_before"] = oldest_sent_ts if passed is None else min(passed, oldest_sent_ts)
        self.state["cursor"] = [cursor[0].isoformat(), cursor[1]]
        self.state["pages"] = self._page_seq
        # Rows come newest first: once the walk has reached a send time before a day's start, that day is whole.
        cursor_ts = self.state["complete_before"]
        passed_days = sorted(d for d in self._open_days if cursor_ts is not None and self.day_start_ts(d) > cursor_ts)
        # Saved before the merges: a run killed during one finds the day whole in either form (the next page's
        # state, or a resumed run's, records the merged one).
        self._save_state(consolidating=passed_days)
        for day in passed_days:
            self._consolidate(day)

    def saved_state(self) -> dict[str, Any] | None:
        """The newest state saved in the staging folder (by this run or an interrupted one), ``None`` if none:
        the journal's last whole line (a line a power failure cut short is not one), or the state object, or a
        ``state.json`` left by an earlier version."""
        for path in (self.state_path, self.dir / "state.json"):
            if not path.exists():
                continue
            for line in reversed(path.read_bytes().splitlines()):
                try:
                    saved = json.loads(line)
                except ValueError:
                    continue
                if isinstance(saved, dict):
                    return saved
            return {}
        return None

    def _save_state(self, *, consolidating: list[dt.date] | None = None) -> None:
        """Write the state (atomically): the counts and cursor, every staged file with its rows, and the days
        whose files are about to be merged (either form of such a day is whole when resuming)."""
        state = {
            **self.state,
            "staged": {day.isoformat(): s.to_json() for day, s in sorted(self._staged.items())},
            "consolidating": [d.isoformat() for d in consolidating or ()],
        }
        line = json.dumps(state).encode() + b"\n"
        if isinstance(self.state_path, RemotePath):
            _write_bytes_atomic(line, self.state_path, sync=False)
            return
        if self._journal is None or self._journal.tell() > JOURNAL_LIMIT:
            # A process's first save (and a journal grown past its limit) starts it over with this one line,
            # replacing it atomically: what an interrupted run left, a line cut short included, is gone.
            self._close_journal()
            _write_bytes_atomic(line, self.state_path, sync=False)
            self._journal = open(self.state_path, "ab")  # noqa: SIM115  (closed by discard)
            return
        self._journal.write(line)
        self._journal.flush()  # in the kernel's hands: a killed process loses nothing of it

    def _close_journal(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def _merged(self, day: dt.date) -> pa.Table:
        """The day's staged rows in one table, each ``int_id`` once (its newest version; the removed copies are
        counted): the page files in page order, then the consolidated file."""
        staged = self._staged.get(day) or _StagedDay(None, {})
        tables = []
        for seq in sorted(staged.pages):
            table = self._pending.pop((day, seq), None)
            if table is None:  # staged by an interrupted run (verified when it resumed)
                checksum = staged.checksums.get(seq)
                path = self._staged_page(day, staged, seq)
                table = read_staged(path) if checksum is None else _read_staged_page(path, checksum)
            tables.append(table)
        if staged.data is not None:
            tables.append(read_staged(self._data_path(day)))
        if not tables:
            return HISTORY_SCHEMA.empty_table()
        combined = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        merged = dedupe(combined)
        self.state["duplicate_rows"] = self.duplicate_rows + combined.num_rows - merged.num_rows
        return merged

    def _consolidate(self, day: dt.date) -> None:
        """Merge a day's staged page files into its one staged ``data.parquet``."""
        pages = sorted(self._staged[day].pages)
        merged = self._merged(day)
        # In the committed format already (fsynced only when committed): the commit adds the metadata alone.
        write_table_atomic(merged, self._data_path(day), sync=False)
        for seq in pages:  # only once the merged file is in place
            self._staged_page(day, self._staged[day], seq).unlink(missing_ok=True)
        self._staged[day] = _StagedDay(merged.num_rows, {})
        self._summaries[day] = (day_stats(merged), _read_at(merged))

    # -- commit -----------------------------------------------------------------------------------------

    def commit(self, file_meta: dict[str, Any]) -> CommittedDays:
        """Merge what is left, write every day (empty days too) in the committed format, then move every day
        into place. Returns each day's stats, with the run's ``rows_outside_partitions`` and
        ``duplicate_rows``. Call only when the paging walk reached its end."""
        days = days_between(self.first_day, self.last_day)
        stats = CommittedDays()
        if not self.state.get("committing"):
            self._save_state(consolidating=sorted(self._staged))
            for day in days:
                staged = self._staged.get(day)
                summary = self._summaries.get(day)
                if staged is not None and not staged.pages and staged.data is not None and summary is not None:
                    # Consolidated during this walk, in the committed format already: only its metadata is new.
                    record = _commit_record(file_meta, day, staged.data, *summary)
                    if replace_file_metadata(self._data_path(day), record):
                        stats[day] = summary[0]
                        continue
                # A day's pages go straight into its committed file (no intermediate staged file).
                table = self._merged(day) if staged is not None else HISTORY_SCHEMA.empty_table()
                if not _strictly_descending(table["int_id"]):  # merged days already are: skip the sort
                    table = table.sort_by([("int_id", "descending")])
                path = self._data_path(day)
                stats[day] = day_stats(table)
                write_table_atomic(table, path, metadata=commit_record(file_meta, day, table, stats[day]))
                done = self._staged.get(day, _StagedDay(None, {}))
                for seq in sorted(done.pages):
                    self._staged_page(day, done, seq).unlink(missing_ok=True)
                self._staged[day] = _StagedDay(table.num_rows, {})
            self.state["committing"] = True  # from here a resumed run only finishes the moves
            self._save_state()
        else:  # a commit that was interrupted while moving the days into place: finish it
            for day in days:
                path = self._data_path(day)
                stats[day] = day_stats(read_staged(path) if path.exists() else self.store.read(day))
        stats.rows_outside_partitions = self.rows_outside_partitions
        stats.duplicate_rows = self.duplicate_rows
        for day in days:
            path = self._data_path(day)
            if path.exists():
                self.store.commit(day, path)
        self.discard()
        return stats


def commit_record(file_meta: dict[str, Any], day: dt.date, table: pa.Table, stats: DayStats) -> dict[str, Any]:
    """What a committed partition file records about itself: the run's ``file_meta``, its day and row count,
    its pending messages, and when its statuses were read (its oldest fetch; for an empty day the
    ``read_at`` of ``file_meta``, when the walk began) — what :meth:`PartitionStore.settlement` reads."""
    return _commit_record(file_meta, day, table.num_rows, stats, _read_at(table))


def _read_at(table: pa.Table) -> float | None:
    """A day's oldest fetch (Unix seconds), ``None`` for an empty day."""
    return pc.min(table["fetched_at"]).value / 1_000_000 if table.num_rows else None


def _commit_record(
    file_meta: dict[str, Any], day: dt.date, rows: int, stats: DayStats, read_at: float | None
) -> dict[str, Any]:
    record = {**file_meta, "rows": rows, "date": day.isoformat(), "pending": stats.pending}
    if read_at is not None:
        record["read_at"] = read_at
    return record


@dataclass
class _StagedDay:
    """One day's staged files: the consolidated file's rows (``None``: no such file) and each page's rows."""

    data: int | None
    pages: dict[int, int]
    # Each page file's CRC-32 (a page without one is a Parquet page file staged by an earlier version).
    checksums: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "pages": {str(seq): rows for seq, rows in self.pages.items()},
            "checksums": {str(seq): crc for seq, crc in self.checksums.items()},
        }


class _DamagedStaging(Exception):
    """What an interrupted run staged cannot be trusted."""


def _whole_rows(path: StorePath) -> int | None:
    """The rows of a staged file read back whole (page checksums verified), or ``None`` when it is missing or
    cannot be read."""
    try:
        return pq.ParquetFile(arrow_file(path), page_checksum_verification=True).read().num_rows
    except (OSError, pa.ArrowException):
        return None


def read_staged(path: StorePath) -> pa.Table:
    """A staged file as a table of :data:`HISTORY_SCHEMA`: the same table as ``pq.read_table(path,
    schema=HISTORY_SCHEMA)``, read directly when the file holds exactly that schema (our own staging files
    always do), which skips the dataset machinery. Page checksums are verified where the file has them."""
    table = pq.ParquetFile(arrow_file(path), page_checksum_verification=True).read()
    if table.schema.equals(HISTORY_SCHEMA, check_metadata=True):
        return table
    return pq.read_table(arrow_file(path), schema=HISTORY_SCHEMA)


def _strictly_descending(ids: pa.ChunkedArray | pa.Array) -> bool:
    """Whether ``ids`` has no nulls and every value is smaller than the one before (no duplicates)."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    if ids.null_count:
        return False
    if len(ids) < 2:
        return True
    values = ids.to_numpy()  # no copy (no nulls): a tenth of an Arrow call's time on a page
    return bool((values[:-1] > values[1:]).all())


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
    preview = _markdown(mask_table(table.select(preview_cols).slice(0, 5))) if table.num_rows else ""
    return DayStats(
        rows=table.num_rows,
        cost=str(cost if cost is not None else "0"),
        delivered=_count(table, "delivered"),
        failed=_count(table, "failed"),
        pending=_count(table, "pending"),
        preview=preview,
    )


def _markdown(table: pa.Table) -> str:
    """``table.to_pandas().to_markdown(index=False)``, the same text, straight through tabulate (which pandas
    calls): a tenth of the time, no DataFrame."""
    return tabulate(list(zip(*table.to_pydict().values())), headers=table.column_names, tablefmt="pipe", missingval="nan")


def _count(table: pa.Table, status_class: str) -> int:
    """Rows of ``table`` whose ``status_class`` is ``status_class``."""
    if not table.num_rows:
        return 0
    return int(pc.sum(pc.equal(table["status_class"], status_class)).as_py() or 0)
