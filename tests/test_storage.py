"""StagedIngest on real files: days are consolidated as soon as the backwards cursor passes them."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsc_dagster.core import SMSCDataError
from smsc_dagster.storage.contract import rows_to_table
from smsc_dagster.storage.partitions import PartitionStore, StagedIngest, dedupe

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
    assert sorted(p.name for p in day(3).iterdir()) == ["page-000001.arrow"]  # day 3 may still grow

    add(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, at(2, 23)))
    assert sorted(p.name for p in day(3).iterdir()) == ["data.parquet"]  # passed: one file, pages gone
    assert pq.read_table(day(3) / "data.parquet").column("int_id").to_pylist() == [9, 8, 7]
    assert sorted(p.name for p in day(2).iterdir()) == ["page-000002.arrow"]
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


def test_rows_outside_the_partitions_and_duplicates_are_counted_and_the_counts_survive_a_resume(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    window = (at(2, 0) - 3 * 3600, at(4, 0) + 2 * 3600)  # server days reaching 3 h before and 2 h after
    make = lambda: StagedIngest(  # noqa: E731
        store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "Asia/Almaty", signature={"k": 2}, window=window
    )
    ingest = make()
    assert ingest.resume_point() is None
    # page 1: one row after the last partition, 9 twice (the newer copy second), 8 once
    add(ingest, (dt.date(2026, 10, 3), 7), row(10, at(4, 1)), row(9, at(3, 20), status=0),
        row(9, at(3, 20), last_timestamp=at(3, 20) + 90), row(8, at(3, 9)), row(7, at(3, 8)))
    assert (ingest.rows_outside_partitions, ingest.duplicate_rows) == (1, 1)
    resumed = make()  # the run dies here; the next run of the same range resumes
    assert resumed.resume_point() == (dt.date(2026, 10, 3), 7)
    assert (resumed.rows_outside_partitions, resumed.duplicate_rows) == (1, 1)
    # page 2: 8 again with an older status change (loses), 7 again without one (loses), two rows before
    add(resumed, (dt.date(2026, 10, 1), None), row(8, at(3, 9), status=20, last_timestamp=at(3, 9)),
        row(7, at(3, 8), status=0, last_timestamp=0), row(6, at(2, 10)), row(5, at(1, 23)), row(4, at(1, 21) + 1))
    days = resumed.commit({})
    assert (days.rows_outside_partitions, days.duplicate_rows) == (3, 3)
    assert {d.isoformat(): s.rows for d, s in days.items()} == {"2026-10-02": 1, "2026-10-03": 3}
    day3 = store.read(dt.date(2026, 10, 3)).to_pylist()
    assert [(r["int_id"], r["status"], r["status_changed_at"].timestamp()) for r in day3] == [
        (9, 1, at(3, 20) + 90), (8, 1, at(3, 9) + 30), (7, 1, at(3, 8) + 30)
    ]


def test_a_page_with_a_row_outside_the_requested_server_days_stages_nothing(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    window = (at(2, 0) - 3 * 3600, at(4, 0) + 2 * 3600)
    ingest = StagedIngest(store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "Asia/Almaty", signature={}, window=window)
    add(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
    state = ingest.state_path.read_bytes()
    files = sorted(p.relative_to(ingest.dir) for p in ingest.dir.rglob("*.parquet"))
    with pytest.raises(SMSCDataError) as error:
        add(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, window[1]))
    assert str(error.value).startswith(
        f"row with int_id=6: send_timestamp={window[1]} (2026-10-03 21:00:00 UTC) is outside the server days the "
        f"run requested ([{window[0]}, {window[1]}) = 2026-10-01 16:00:00 to 2026-10-03 21:00:00 UTC)"
    )
    assert ingest.state_path.read_bytes() == state
    assert sorted(p.relative_to(ingest.dir) for p in ingest.dir.rglob("*.parquet")) == files
    assert (ingest.rows_outside_partitions, ingest.duplicate_rows) == (0, 0)


def test_dedupe_keeps_the_newest_status_change_then_the_newest_fetch():
    early, late = FETCHED, FETCHED + dt.timedelta(hours=1)
    convert = lambda rows, fetched: rows_to_table(  # noqa: E731
        rows, channel="sms", currency="KZT", timezone="Asia/Almaty", fetched_at=fetched
    )
    send = at(3, 12)
    table = pa.concat_tables([
        convert([row(3, send, status=1, last_timestamp=send + 60), row(2, send, status=1, last_timestamp=0),
                 row(1, send, status=1, last_timestamp=send + 60)], late),
        convert([row(3, send, status=20, last_timestamp=send + 600), row(2, send, status=20, last_timestamp=send + 5),
                 row(1, send, status=20, last_timestamp=send + 60)], early),
    ])
    kept = dedupe(table)
    assert [(r["int_id"], r["status"]) for r in kept.to_pylist()] == [(3, 20), (2, 20), (1, 1)]


def test_the_state_journal_resumes_at_its_last_whole_line_and_starts_over_in_each_process(tmp_path, monkeypatch):
    store = PartitionStore(tmp_path, "sms_history")
    make = lambda: StagedIngest(store, dt.date(2026, 10, 1), dt.date(2026, 10, 3), "Asia/Almaty", signature={"k": 1})  # noqa: E731
    ingest = make()
    ingest.resume_point()
    add(ingest, (dt.date(2026, 10, 3), 9), row(10, at(3, 20)), row(9, at(3, 10)))
    add(ingest, (dt.date(2026, 10, 3), 7), row(8, at(3, 5)), row(7, at(3, 1)))
    add(ingest, (dt.date(2026, 10, 3), 5), row(6, at(3, 0)), row(5, at(3, 0)))
    lines = ingest.state_path.read_bytes().splitlines()
    assert ingest.state_path.name == "state.jsonl" and len(lines) == 3  # one whole state a page, appended
    assert [json.loads(line)["cursor"] for line in lines] == [["2026-10-03", 9], ["2026-10-03", 7], ["2026-10-03", 5]]

    # A power failure cut the last line short (a killed process cannot: its lines are in the kernel's hands):
    # the resume takes the line before it, and the third page's file, which that state does not list, is
    # removed (its page is requested again).
    ingest.state_path.write_bytes(b"\n".join(lines[:2]) + b"\n" + lines[2][:40])
    resumed = make()
    assert resumed.resume_point() == (dt.date(2026, 10, 3), 7)
    assert list(map(json.loads, resumed.state_path.read_bytes().splitlines())) == [json.loads(lines[1])]  # one line
    assert sorted(p.name for p in (resumed.dir / "date=2026-10-03").iterdir()) == ["page-000001.arrow", "page-000002.arrow"]
    add(resumed, (dt.date(2026, 10, 3), 5), row(6, at(3, 0)), row(5, at(3, 0)))
    add(resumed, (dt.date(2026, 10, 1), None), row(4, at(1, 12)))
    days = resumed.commit({})
    assert [store.read(dt.date(2026, 10, d)).column("int_id").to_pylist() for d in (1, 2, 3)] == [[4], [], [10, 9, 8, 7, 6, 5]]
    assert days.duplicate_rows == 0 and not resumed.dir.exists()

    # A journal past its limit starts over with its newest line, atomically.
    monkeypatch.setattr("smsc_dagster.storage.partitions.JOURNAL_LIMIT", 1)
    ingest = make()
    ingest.resume_point()
    for k in range(3):
        add(ingest, (dt.date(2026, 10, 3), 20 - 2 * k), row(21 - 2 * k, at(3, 20 - k)), row(20 - 2 * k, at(3, 19 - k)))
        assert len(ingest.state_path.read_bytes().splitlines()) == 1
    assert make().resume_point() == (dt.date(2026, 10, 3), 16)


def test_a_staging_left_by_the_earlier_version_resumes_from_its_state_json(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    make = lambda: StagedIngest(store, dt.date(2026, 10, 1), dt.date(2026, 10, 3), "Asia/Almaty", signature={"k": 1})  # noqa: E731
    ingest = make()
    ingest.resume_point()
    add(ingest, (dt.date(2026, 10, 3), 9), row(10, at(3, 20)), row(9, at(3, 10)))
    # The earlier version: Parquet page files, listed without checksums, in state.json.
    page = ingest.dir / "date=2026-10-03" / "page-000001.arrow"
    table = pa.ipc.open_file(pa.BufferReader(page.read_bytes())).read_all()
    pq.write_table(table, page.with_suffix(".parquet"), write_page_checksum=True)
    page.unlink()
    state = ingest.saved_state()
    state["staged"]["2026-10-03"].pop("checksums")
    (ingest.dir / "state.json").write_text(json.dumps(state))
    ingest.state_path.unlink()
    resumed = make()
    assert resumed.resume_point() == (dt.date(2026, 10, 3), 9)
    add(resumed, (dt.date(2026, 10, 1), None), row(8, at(2, 3)), row(7, at(1, 12)))
    resumed.commit({})
    assert [store.read(dt.date(2026, 10, d)).column("int_id").to_pylist() for d in (1, 2, 3)] == [[7], [8], [10, 9]]
