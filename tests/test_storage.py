"""StagedIngest on real files: days are consolidated as soon as the backwards cursor passes them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from smsc_dagster.storage.contract import rows_to_table
from smsc_dagster.storage.partitions import PartitionStore, StagedIngest

from .pipeline_support import row

ZONE = ZoneInfo("Asia/Almaty")
FETCHED = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)


def add(ingest: StagedIngest, cursor, *rows) -> None:
    """Stage one page of hand-built rows, as the history asset does with a page from the client."""
    table = rows_to_table(list(rows), channel="sms", currency="KZT", timezone="Asia/Almaty", fetched_at=FETCHED)
    ingest.add_page(table, cursor)


def at(day: int, hour: int) -> int:
    return int(dt.datetime(2026, 10, day, hour, tzinfo=ZONE).timestamp())


def test_a_day_is_consolidated_once_the_cursor_has_passed_it_and_committed_at_the_end(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    ingest = StagedIngest(store, dt.date(2026, 10, 1), dt.date(2026, 10, 3), "Asia/Almaty", signature={"k": 1})
    assert ingest.resume_point() is None
    day = lambda d: ingest.dir / f"date=2026-10-0{d}"  # noqa: E731

    add(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
    assert sorted(p.name for p in day(3).iterdir()) == ["page-000001.parquet"]  # day 3 may still grow

    add(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, at(2, 23)))
    assert sorted(p.name for p in day(3).iterdir()) == ["data.parquet"]  # passed: one file, pages gone
    assert pq.read_table(day(3) / "data.parquet").column("int_id").to_pylist() == [9, 8, 7]
    assert sorted(p.name for p in day(2).iterdir()) == ["page-000002.parquet"]
    assert store.days() == []  # nothing is visible to readers before the walk is complete

    add(ingest, (dt.date(2026, 9, 30), None), row(5, at(1, 12)))
    stats = ingest.commit({"paging_complete": True})
    assert {d.isoformat(): s.rows for d, s in stats.items()} == {"2026-10-01": 1, "2026-10-02": 1, "2026-10-03": 3}
    assert store.days() == [dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)]
    assert not ingest.dir.exists()


def test_a_late_row_for_a_consolidated_day_is_merged_not_lost(tmp_path):
    """If SMSC's order ever broke (a row older than the cursor arriving late), the day is merged again."""
    store = PartitionStore(tmp_path, "sms_history")
    ingest = StagedIngest(store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "Asia/Almaty", signature={})
    add(ingest, (dt.date(2026, 10, 3), 6), row(9, at(3, 20)), row(6, at(2, 23)))
    add(ingest, (dt.date(2026, 10, 3), 4), row(5, at(3, 10)), row(4, at(2, 10)))
    ingest.commit({})
    assert store.read(dt.date(2026, 10, 3)).column("int_id").to_pylist() == [9, 5]
    assert store.read(dt.date(2026, 10, 2)).column("int_id").to_pylist() == [6, 4]
