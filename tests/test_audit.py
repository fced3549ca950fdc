"""Run checks read only the run's partitions; the weekly audit reads the whole history and catches what only
it can: an int_id in two partitions, a day damaged after it was written, delivery_daily drifting."""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from smsc_dagster.storage import Layout, Warehouse
from smsc_dagster.storage.partitions import file_metadata, write_table_atomic
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import pipeline

AUDIT = {"audit_int_id_unique", "audit_partitions_intact", "audit_reconciles_with_history"}


def test_the_audit_passes_on_good_data_and_names_each_kind_of_damage(tmp_path, clock):
    account = SimulatedAccount(seed=71, messages_per_day=300)
    with pipeline(tmp_path, account, clock=clock) as p:
        refresh = p.run("2026-10-01", "2026-10-04")
        assert refresh.success
        # the refresh runs its run checks, never the whole-history audit (its cost would grow with the history)
        assert sorted(e.check_name for e in refresh.get_asset_check_evaluations()) == sorted([
            "int_id_unique", "date_matches_partition", "required_columns_not_null", "paging_complete",
            "reconciles_with_history", "reconciles_with_delivery_daily", "reconciles_with_delivery_daily",
        ])
        requests = len(p.sim.requests)
        audit = p.run_audit()
        assert {name: e.passed for name, e in audit.items()} == dict.fromkeys(AUDIT, True)
        assert audit["audit_partitions_intact"].metadata["stored_partitions"].value == 4

        store = Layout(p.data_dir).store("sms")
        # 1. An int_id of 2026-10-04 also stored in 2026-10-01 (re-dated, so no single day looks wrong).
        day1, day4 = store.path(dt.date(2026, 10, 1)), store.path(dt.date(2026, 10, 4))
        stray = pq.read_table(day4).slice(0, 1)
        stray = stray.set_column(stray.schema.get_field_index("date"), stray.schema.field("date"), pa.array([dt.date(2026, 10, 1)], pa.date32()))
        meta = file_metadata(day1)
        merged = pa.concat_tables([pq.read_table(day1), stray])
        write_table_atomic(merged, day1, {**meta, "rows": merged.num_rows})
        # 2. 2026-10-02 damaged after it was written: its file cut in half.
        day2 = store.path(dt.date(2026, 10, 2))
        day2.write_bytes(day2.read_bytes()[: day2.stat().st_size // 2])
        # 3. delivery_daily drifting from the history on 2026-10-03.
        with duckdb.connect(str(p.data_dir / "warehouse.duckdb")) as conn:
            conn.execute("UPDATE smsc.delivery_daily SET messages = messages + 1 WHERE date = DATE '2026-10-03'")

        # The run checks of a run that wrote only 2026-10-03 and 2026-10-04 see none of the history's damage...
        scoped = p.run_checks("2026-10-04", "2026-10-04")
        assert scoped == {
            "int_id_unique": True, "date_matches_partition": True, "required_columns_not_null": True,
            "paging_complete": True, "reconciles_with_history": True,
        }
        # ...the audit sees all of it, by name, without a request to SMSC.
        audit = p.run_audit()
        assert len(p.sim.requests) == requests
    assert {name: e.passed for name, e in audit.items()} == dict.fromkeys(AUDIT, False)
    unique = audit["audit_int_id_unique"].metadata
    assert unique["duplicate_ids"].value == 1 and unique["examples"].value == str([stray["int_id"][0].as_py()])
    intact = audit["audit_partitions_intact"].metadata
    assert intact["damaged_partitions"].value == 1 and intact["damage"].value.startswith("[('2026-10-02', 'unreadable")
    drift = audit["audit_reconciles_with_history"].metadata
    # 10-01 holds one row more than delivery_daily counted, 10-02 cannot be read, 10-03 was inflated
    assert drift["mismatched_days"].value == 3
    assert [f"2026, 10, {d}" in drift["examples"].value for d in (1, 2, 3)] == [True, True, True]
    assert drift["problem"].value == "some history partitions could not be read and were left out"


def test_rollup_checks_reconcile_with_delivery_daily_and_rollups_equal_the_raw_history(tmp_path, clock):
    account = SimulatedAccount(seed=72, messages_per_day=400)
    with pipeline(tmp_path, account, clock=clock, channels=("sms", "email")) as p:
        assert p.run("2026-10-01", "2026-10-05").success
        warehouse = Warehouse(Layout(p.data_dir))
        with warehouse.connect(read_only=True) as conn:
            for by in ("operator", "country"):
                stored = conn.execute(f"SELECT * FROM smsc.delivery_by_{by} ORDER BY ALL").fetchall()
                from_history = sorted(warehouse.rollup_from_history(conn, ["sms", "email"], by))
                assert stored == from_history and len(stored) > 3, by
        assert warehouse.reconcile_rollup("operator") == ([], None)
        with duckdb.connect(str(p.data_dir / "warehouse.duckdb")) as conn:
            conn.execute("UPDATE smsc.delivery_by_country SET delivered = delivered - 1 WHERE country = 'Казахстан'")
        mismatches, problem = warehouse.reconcile_rollup("country")
    assert problem is None and len(mismatches) >= 1
