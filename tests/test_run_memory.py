"""A backfill's run checks and per-day tables work a batch of days at a time (so the run's peak memory follows
the batch, not the range), and still give the answers of one pass over the whole range."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsc_dagster.orchestration import checks
from smsc_dagster.storage import HistoryQueries, Layout, by_copies
from smsc_dagster.storage.partitions import file_metadata, write_table_atomic
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import pipeline

FIRST = dt.date(2026, 10, 1)


def _store(tmp_path, ids_by_day: dict[int, list[int | None]]):
    """A store with one file per day offset, holding these int_ids (dated like their file)."""
    layout = Layout(tmp_path / "data")
    store = layout.store("sms")
    for offset, ids in ids_by_day.items():
        day = FIRST + dt.timedelta(days=offset)
        path = store.path(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"int_id": pa.array(ids, pa.int64()), "date": pa.array([day] * len(ids), pa.date32())}), str(path))
    return layout, store


@pytest.mark.parametrize("batch_days,batch_ids", [(1, 1), (2, 3), (3, 1000), (31, 250_000)])
def test_run_duplicates_in_batches_equal_one_group_by_over_every_file(tmp_path, monkeypatch, batch_days, batch_ids):
    monkeypatch.setattr(checks, "RUN_BATCH_DAYS", batch_days)
    monkeypatch.setattr(checks, "RUN_BATCH_IDS", batch_ids)
    layout, store = _store(
        tmp_path,
        {
            0: [100, 101, 102, 999],  # 999 also on day 6: ranges 100..999 and 600..999 overlap
            1: [200, 201, 201],  # a duplicate inside one file
            2: [300, 301, None],
            3: [400, 401, None],  # NULL int_ids in two files: one group of two, as one GROUP BY sees them
            4: [500, 100, 501],  # 100 again, three days after day 0: overlapping ranges
            5: [],
            6: [600, 601, 999, 999],
            7: [700, 701],
        },
    )
    days = [FIRST + dt.timedelta(days=i) for i in range(8)]
    whole = HistoryQueries(store, layout.spill_dir, days).duplicate_ids(limit=10)
    assert sorted(whole, key=by_copies) == whole
    assert {d[0] for d in whole} == {100, 201, 999, None}
    assert checks.run_duplicate_ids(store, layout.spill_dir, days, limit=10) == whole
    assert checks.run_duplicate_ids(store, layout.spill_dir, days) == whole[:5]
    # the scope is the run's days: day 6 alone holds 999 twice, days 1..3 hold no id twice but two NULLs
    assert checks.run_duplicate_ids(store, layout.spill_dir, days[6:7]) == [(999, 2)]
    assert checks.run_duplicate_ids(store, layout.spill_dir, days[2:4]) == [(None, 2)]
    assert checks.run_duplicate_ids(store, layout.spill_dir, days[5:6]) == []


@pytest.mark.parametrize("buckets", [1, 2, 7])
def test_duplicate_ids_in_hash_buckets_give_the_same_answer(tmp_path, buckets):
    layout, store = _store(tmp_path, {0: [1, 2, 3, 3, 4, 5, 5, 5, None], 1: [2, 6, 7, None, None]})
    queries = HistoryQueries(store, layout.spill_dir)
    assert queries.duplicate_ids(limit=10, buckets=buckets) == [(5, 3), (None, 3), (2, 2), (3, 2)]
    assert queries.duplicate_ids(limit=2, buckets=buckets) == [(5, 3), (None, 3)]


def test_day_ranges_cover_the_range_in_batches(monkeypatch):
    assert checks.day_ranges(FIRST, FIRST) == [(FIRST, FIRST)]
    monkeypatch.setattr(checks, "RUN_BATCH_DAYS", 3)
    last = FIRST + dt.timedelta(days=6)
    assert checks.day_ranges(FIRST, last) == [
        (FIRST, FIRST + dt.timedelta(days=2)),
        (FIRST + dt.timedelta(days=3), FIRST + dt.timedelta(days=5)),
        (last, last),
    ]


TABLES = ("delivery_daily", "delivery_latency", "failure_reasons", "delivery_by_sender_daily",
          "delivery_by_operator", "delivery_by_country", "delivery_by_sender")


def test_a_backfill_in_batches_writes_what_one_pass_writes_and_its_checks_see_across_batches(tmp_path, clock, monkeypatch):
    account = SimulatedAccount(seed=91, messages_per_day=150)
    tables = {}
    for batch_days in (31, 2):
        monkeypatch.setattr(checks, "RUN_BATCH_DAYS", batch_days)
        (tmp_path / str(batch_days)).mkdir()
        with pipeline(tmp_path / str(batch_days), account, clock=clock) as p:
            result = p.run("2026-10-01", "2026-10-07")
            assert result.success
            assert all(e.passed for e in result.get_asset_check_evaluations())
            tables[batch_days] = {t: p.sql(f"SELECT * FROM smsc.{t} ORDER BY ALL") for t in TABLES}
            metadata = {
                e.check_name: e.metadata for e in result.get_asset_check_evaluations() if e.check_name == "int_id_unique"
            }
            assert metadata["int_id_unique"]["checked_partitions"].value == 7
            if batch_days != 2:
                continue
            # 2-day batches: an int_id of 10-07 (the 4th batch) also stored in 10-01 (the 1st), a row of 10-06
            # filed under 10-05 with a NULL required column — each in a different batch of the run's days
            store = Layout(p.data_dir).store("sms")
            day1, day7 = store.path(dt.date(2026, 10, 1)), store.path(dt.date(2026, 10, 7))
            stray = pq.read_table(day7).slice(0, 1)
            stray = stray.set_column(
                stray.schema.get_field_index("date"), stray.schema.field("date"), pa.array([dt.date(2026, 10, 1)], pa.date32())
            )
            merged = pa.concat_tables([pq.read_table(day1), stray])
            write_table_atomic(merged, day1, {**file_metadata(day1), "rows": merged.num_rows})
            assert p.run_checks("2026-10-01", "2026-10-07")["int_id_unique"] is False
            unique = p.check_evaluations("2026-10-01", "2026-10-07")["int_id_unique"].metadata
            assert unique["examples"].value == str([stray["int_id"][0].as_py()])
            # a run of the last day alone does not see it
            assert p.run_checks("2026-10-07", "2026-10-07")["int_id_unique"] is True

            day6 = store.path(dt.date(2026, 10, 6))
            table = pq.read_table(day6)
            bad = table.slice(0, 1).to_pylist()[0] | {"date": dt.date(2026, 10, 5), "status_class": None, "int_id": 1}
            loose = pa.schema([f.with_nullable(True) for f in table.schema])
            pq.write_table(pa.concat_tables([table.cast(loose), pa.Table.from_pylist([bad], schema=loose)]), str(day6))
            found = p.check_evaluations("2026-10-01", "2026-10-07")
            assert found["date_matches_partition"].passed is False
            assert found["date_matches_partition"].metadata["partitions"].value == "['2026-10-06']"
            assert found["required_columns_not_null"].passed is False
            # the history no longer adds up to delivery_daily on 10-01 and 10-05 (the row dated 10-05): two batches
            assert found["reconciles_with_history"].passed is False
            examples = found["reconciles_with_history"].metadata["examples"].value
            assert found["reconciles_with_history"].metadata["mismatched_days"].value == 2
            assert "2026, 10, 1)" in examples and "2026, 10, 5)" in examples
    assert tables[2] == tables[31]
