"""The pipeline through real Dagster runs on a real (non-ephemeral) instance, against the simulator."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from smsc_dagster.core.dates import api_dates
from smsc_dagster.storage.contract import HISTORY_SCHEMA
from smsc_dagster.testing import SimulatedAccount

from .conftest import NOW
from .pipeline_support import READER, local_day_span, pipeline, row


def ids(rows) -> list[int]:
    return [int(r["int_id"]) for r in rows]


def test_one_partition_holds_exactly_its_local_day(tmp_path, clock):
    account = SimulatedAccount(seed=31, messages_per_day=400)
    with pipeline(tmp_path, account, clock=clock) as p:
        result = p.run("2026-10-05")
        stored = p.partition("2026-10-05")
        truth = p.truth("2026-10-05")
        history = p.sim.history_requests()
        balance = [r for r in p.sim.requests if r.path == "/sys/balance.php"]
        events = result.get_asset_materialization_events()
    assert result.success
    assert ids(stored) == ids(truth)
    assert 300 < len(stored) < 500  # an Almaty day is the end of one Moscow day and most of the next
    assert [(r.params["start"], r.params["end"]) for r in history] == [("04.10.2026", "05.10.2026")]
    assert len(history) == 1 and len(balance) == 1  # 800 API rows fit one page; currency read once
    first = stored[0]
    raw = next(r for r in truth if int(r["int_id"]) == first["int_id"])
    assert first["cost"] == Decimal(raw["cost"]) and first["currency"] == "KZT"
    assert first["sent_at"] == dt.datetime.fromtimestamp(raw["send_timestamp"], dt.timezone.utc)
    assert first["date"] == dt.date(2026, 10, 5) and first["channel"] == "sms"
    meta = next(e for e in events if e.asset_key.path[-1] == "sms_history").materialization.metadata
    assert meta["dagster/row_count"].value == len(truth) and meta["currency"].value == "KZT"
    # run totals are the run's, once: an observation of the asset, not repeated on every partition
    assert not {"requests", "pages", "run_rows", "run_partitions", "retries"} & set(meta)
    observations = [
        e.event_specific_data.asset_observation.metadata for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION" and e.asset_key.path[-1] == "sms_history"
    ]
    run = next(m for m in observations if "run_rows" in m)
    assert run["requests"].value == 1 and run["paging_complete"].value is True and run["run_rows"].value == len(truth)
    assert meta["cost_total"].value == float(sum(Decimal(r["cost"]) for r in truth))  # a number the UI plots
    assert meta["pending"].value == sum(1 for r in truth if int(r["status"]) in (-2, -1, 0))
    assert meta["settled"].value is (meta["pending"].value == 0)  # read weeks after 10-05 ended
    daily = next(
        e for e in events if e.asset_key.path[-1] == "delivery_daily"
    ).materialization.metadata
    delivered = [r for r in truth if int(r["status"]) in (1, 2, 4)]
    assert daily["messages"].value == len(truth) and daily["delivered"].value == len(delivered)
    assert daily["delivery_rate"].value == len(delivered) / len(truth)
    assert daily["cost_total"].value == float(sum(Decimal(r["cost"]) for r in truth)) and daily["currency"].value == "KZT"
    latencies = sorted(int(r["last_timestamp"]) - int(r["send_timestamp"]) for r in truth if int(r["status"]) == 1)
    assert daily["latency_p50_s"].value == latencies[math.ceil(0.5 * len(latencies)) - 1]
    assert daily["latency_p90_s"].value == latencies[math.ceil(0.9 * len(latencies)) - 1]


def test_ten_days_in_one_run_spend_the_minimal_requests(tmp_path, clock):
    account = SimulatedAccount(seed=32, messages_per_day=700)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-01", "2026-10-10")
        api_start, api_end = api_dates(dt.date(2026, 10, 1), dt.date(2026, 10, 10), "Asia/Almaty", "Europe/Moscow")
        api_rows = len(p.sim.expected_rows(*account.day_range(api_start, api_end)))
        history = p.sim.history_requests()
        per_day = {d: p.partition(d) for d in (f"2026-10-{i:02d}" for i in range(1, 11))}
        truths = {d: p.truth(d) for d in per_day}
        runs = p.instance.get_runs()
    assert (api_start, api_end) == (dt.date(2026, 9, 30), dt.date(2026, 10, 10))
    assert api_rows == 11 * 700
    assert len(history) == api_rows // 1000 + 1 == 8  # one paging walk; 10 per-day runs would spend 10+
    assert len({r.params["start"] + r.params["end"] for r in history}) == 1
    assert len(runs) == 1
    for day, stored in per_day.items():
        assert ids(stored) == ids(truths[day]) and stored, day
    window = p.sim.account.rows_between(*local_day_span("2026-10-01", "Asia/Almaty")[:1], local_day_span("2026-10-10", "Asia/Almaty")[1], now=NOW)
    assert sum(len(v) for v in per_day.values()) == len(window)


def test_rematerializing_replaces_without_duplicates(tmp_path, clock):
    account = SimulatedAccount(seed=33, messages_per_day=300)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-01", "2026-10-03")
        first = {d: p.partition(d) for d in ("2026-10-01", "2026-10-02", "2026-10-03")}
        p.run("2026-10-02")
        p.run("2026-10-01", "2026-10-03")
        again = {d: p.partition(d) for d in first}
        (count, distinct) = p.sql("SELECT count(*), count(DISTINCT int_id) FROM smsc.sms_history")[0]
        daily = p.sql("SELECT sum(messages) FROM smsc.delivery_daily")[0][0]
        files = sorted(str(f.relative_to(p.data_dir)) for f in p.data_dir.rglob("*.parquet"))
    assert {d: ids(r) for d, r in again.items()} == {d: ids(r) for d, r in first.items()}
    assert count == distinct == daily == sum(len(r) for r in first.values()) > 800
    assert files == [f"sms_history/date=2026-10-0{i}/data.parquet" for i in (1, 2, 3)]  # no staging left


@pytest.mark.parametrize(
    "timezone, api_timezone",
    [("Asia/Almaty", "Europe/Moscow"), ("Europe/Moscow", "Asia/Almaty"), ("America/New_York", "Europe/Moscow")],
)
def test_midnight_rows_land_in_the_right_partition(tmp_path, clock, timezone, api_timezone):
    zone = ZoneInfo(timezone)
    midnight = int(dt.datetime(2026, 10, 11, tzinfo=zone).timestamp())
    rows = [
        row(2_000_000_001, midnight - 86_400, message="start of the 10th"),
        row(2_000_000_002, midnight - 1, message="23:59:59 on the 10th"),
        row(2_000_000_003, midnight, message="00:00:00 on the 11th"),
        row(2_000_000_004, midnight + 86_399, message="23:59:59 on the 11th"),
        row(2_000_000_005, midnight + 86_400, message="00:00:00 on the 12th"),
    ]
    account = SimulatedAccount(seed=34, messages_per_day=0, timezone=api_timezone, extra_rows=rows)
    with pipeline(tmp_path, account, clock=clock, timezone=timezone) as p:
        p.run("2026-10-10", "2026-10-12")
        stored = {d: [r["message"] for r in p.partition(d)] for d in ("2026-10-10", "2026-10-11", "2026-10-12")}
    assert stored == {
        "2026-10-10": ["23:59:59 on the 10th", "start of the 10th"],
        "2026-10-11": ["23:59:59 on the 11th", "00:00:00 on the 11th"],
        "2026-10-12": ["00:00:00 on the 12th"],
    }


def test_a_day_without_messages_is_an_empty_partition(tmp_path, clock):
    account = SimulatedAccount(seed=35, messages_per_day=lambda d: 0 if d.day in (14, 15) else 50)
    with pipeline(tmp_path, account, clock=clock, timezone="Europe/Moscow") as p:
        result = p.run("2026-10-14")
        path = p.data_dir / "sms_history" / "date=2026-10-14" / "data.parquet"
        table = pq.read_table(path)
        events = result.get_asset_materialization_events()
        daily = p.sql("SELECT count(*) FROM smsc.delivery_daily WHERE date = '2026-10-14'")[0][0]
        history = p.sim.history_requests()
    assert table.num_rows == 0 and table.schema.equals(HISTORY_SCHEMA, check_metadata=False)
    assert [r.error_code for r in history] == [3]
    meta = next(e for e in events if e.asset_key.path[-1] == "sms_history").materialization.metadata
    assert meta["dagster/row_count"].value == 0
    assert daily == 0


def test_delivery_daily_exact_values_for_a_hand_computed_day(tmp_path, clock):
    zone = ZoneInfo("Asia/Almaty")
    t = int(dt.datetime(2026, 10, 20, 12, tzinfo=zone).timestamp())
    kcell = {"operator": "Kcell", "mccmnc": "40102"}
    rows = [
        row(3_000_000_001, t, cost="14.50", sms_cnt=1, status=1),
        row(3_000_000_002, t + 1, cost="29.00", sms_cnt=2, status=1),
        row(3_000_000_003, t + 2, cost="0.00", sms_cnt=1, status=20, err=1),
        row(3_000_000_004, t + 3, cost=14.5, sms_cnt=1, status=0, **kcell),
        row(3_000_000_005, t + 4, cost="7.25", sms_cnt=1, status=99, **kcell),  # unknown status: kept, 'other'
    ]
    account = SimulatedAccount(seed=36, messages_per_day=0, extra_rows=rows)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-20")
        daily = p.sql(
            "SELECT country, operator, messages, sms_parts, delivered, failed, pending, other, delivery_rate, "
            "settled_delivery_rate, cost, currency, cost_per_delivered FROM smsc.delivery_daily "
            "WHERE date = '2026-10-20' ORDER BY operator"
        )
        by_country = p.sql("SELECT country, messages, delivered, cost FROM smsc.delivery_by_country")
        statuses = sorted((r["status"], r["status_class"]) for r in p.partition("2026-10-20"))
    assert daily == [
        ("Казахстан", "Beeline KZ", 3, 4, 2, 1, 0, 0, 2 / 3, 2 / 3, Decimal("43.500000"), "KZT", Decimal("21.750000")),
        ("Казахстан", "Kcell", 2, 2, 0, 0, 1, 1, 0.0, None, Decimal("21.750000"), "KZT", None),
    ]
    assert by_country == [("Казахстан", 5, 2, Decimal("65.250000"))]
    assert statuses == [(0, "pending"), (1, "delivered"), (1, "delivered"), (20, "failed"), (99, "other")]


def test_checks_pass_on_good_data_and_fail_on_a_corrupted_partition(tmp_path, clock):
    account = SimulatedAccount(seed=37, messages_per_day=200)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-01", "2026-10-02")
        assert p.run_checks() == {
            "int_id_unique": True,
            "date_matches_partition": True,
            "required_columns_not_null": True,
            "paging_complete": True,
            "reconciles_with_history": True,
        }
        # Damage one partition behind the pipeline's back: a duplicated row filed under the wrong date with a
        # NULL required column, written without the pipeline's paging record.
        path = p.data_dir / "sms_history" / "date=2026-10-02" / "data.parquet"
        table = pq.read_table(path)
        bad = table.slice(0, 1).to_pylist()[0] | {"date": dt.date(2026, 10, 1), "status_class": None}
        loose = pa.schema([f.with_nullable(True) for f in table.schema])
        corrupted = pa.concat_tables([table.cast(loose), pa.Table.from_pylist([bad], schema=loose)])
        pq.write_table(corrupted.replace_schema_metadata(None), path)
        assert p.run_checks() == {
            "int_id_unique": False,
            "date_matches_partition": False,
            "required_columns_not_null": False,
            "paging_complete": False,
            "reconciles_with_history": False,
        }


def test_schedule_tick_is_one_lookback_run_and_pending_statuses_settle(tmp_path):
    from smsc_dagster.core.clock import FakeClock

    zone = ZoneInfo("Asia/Almaty")
    tick = dt.datetime(2026, 11, 30, 5, 30, tzinfo=zone)
    clock = FakeClock(tick.timestamp())
    account = SimulatedAccount(seed=38, messages_per_day=300)
    with pipeline(tmp_path, account, clock=clock, lookback_days=3) as p:
        schedule = p.defs.resolve_schedule_def("smsc_daily_refresh")
        assert schedule.cron_schedule == "30 5 * * *" and schedule.execution_timezone == "Asia/Almaty"

        def tick_once(when: dt.datetime) -> dg.RunRequest:
            with dg.build_schedule_context(instance=p.instance, scheduled_execution_time=when) as context:
                requests = schedule.evaluate_tick(context).run_requests
            assert len(requests) == 1
            request = requests[0]
            job = p.defs.resolve_job_def(schedule.job_name)
            before = len(p.sim.history_requests())
            result = job.execute_in_process(instance=p.instance, tags=request.tags, run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
            assert result.success
            walks = {r.params["start"] + r.params["end"] for r in p.sim.history_requests()[before:]}
            assert len(walks) == 1  # one paging sequence for the whole lookback
            return request

        first = tick_once(tick)
        assert first.partition_key_range == dg.PartitionKeyRange("2026-11-27", "2026-11-29")
        pending = p.sql("SELECT int_id FROM smsc.sms_history WHERE status_class = 'pending' AND date = '2026-11-29'")
        assert len(pending) > 5
        assert p.sql("SELECT sum(pending) FROM smsc.delivery_daily")[0][0] == p.sql(
            "SELECT count(*) FROM smsc.sms_history WHERE status_class = 'pending'"
        )[0][0] == p.sql("SELECT sum(pending) FROM smsc.delivery_by_operator")[0][0]

        for days in (1, 2):  # the next two mornings; SMSC statuses settle within 48 h
            clock.advance(86_400)
            request = tick_once(tick + dt.timedelta(days=days))
        assert request.partition_key_range == dg.PartitionKeyRange("2026-11-29", "2026-12-01")
        truth = {int(r["int_id"]): r["status"] for r in p.truth("2026-11-29")}
        stored = {r["int_id"]: r["status"] for r in p.partition("2026-11-29")}
        assert stored == truth
        assert all(truth[i] not in (-1, 0) for (i,) in pending)  # each pending message now has its final status
        assert p.sql("SELECT count(*) FROM smsc.sms_history WHERE status_class = 'pending' AND date <= '2026-11-29'")[0][0] == 0
        assert p.sql("SELECT sum(pending) FROM smsc.delivery_daily WHERE date <= '2026-11-29'")[0][0] == 0
        still_pending = p.sql("SELECT count(*) FROM smsc.sms_history WHERE status_class = 'pending'")[0][0]
        assert p.sql("SELECT sum(pending) FROM smsc.delivery_by_operator")[0][0] == still_pending
        final = p.sql(
            "SELECT sum(delivered) FROM smsc.delivery_daily WHERE date = '2026-11-29'"
        )[0][0]
        assert final == sum(1 for status in truth.values() if status in (1, 2, 4))


def test_rollups_follow_a_backfill_launched_without_them(tmp_path, clock):
    account = SimulatedAccount(seed=39, messages_per_day=100)
    with pipeline(tmp_path, account, clock=clock) as p:
        history = p.defs.resolve_assets_def(dg.AssetKey(["smsc", "sms_history"]))
        daily = p.defs.resolve_assets_def(dg.AssetKey(["smsc", "delivery_daily"]))
        result = dg.materialize(
            [history, daily], instance=p.instance,
            tags={"dagster/asset_partition_range_start": "2026-10-01", "dagster/asset_partition_range_end": "2026-10-02"},
        )
        sensor = p.defs.resolve_sensor_def("smsc_rollups_after_refresh")
        run = p.instance.get_run_by_id(result.run_id)
        with dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=p.instance, dagster_run=run,
            dagster_event=result.get_run_success_event(),
        ) as context:
            request = sensor(context)
    assert isinstance(request, dg.RunRequest) and request.run_key == f"rollups-after-{result.run_id}"
    assert sensor.job_name == "smsc_rollups"


def test_email_history_is_its_own_asset_and_table(tmp_path, clock):
    account = SimulatedAccount(seed=40, messages_per_day=120, emails_per_day=25)
    with pipeline(tmp_path, account, clock=clock, channels=("sms", "email")) as p:
        p.run("2026-10-07")
        sms, email = p.partition("2026-10-07"), p.partition("2026-10-07", "email_history")
        truth_sms, truth_email = p.truth("2026-10-07"), p.truth("2026-10-07", channel="email")
        formats = sorted({r.params["format"] for r in p.sim.history_requests()})
        daily = p.sql("SELECT channel, sum(messages) FROM smsc.delivery_daily GROUP BY channel ORDER BY channel")
        views = p.sql("SELECT view_name FROM duckdb_views() WHERE schema_name = 'smsc' ORDER BY 1")
    assert ids(sms) == ids(truth_sms) and ids(email) == ids(truth_email) and email
    assert {r["channel"] for r in email} == {"email"} and {r["type"] for r in email} == {8}
    assert formats == ["0", "8"]
    assert daily == [("email", len(email)), ("sms", len(sms))]
    assert views == [("email_history",), ("sms_history",)]


def test_failed_run_keeps_stored_partitions_and_the_rerun_resumes_without_refetching(tmp_path, clock):
    account = SimulatedAccount(seed=41, messages_per_day=1500)
    with pipeline(tmp_path, account, clock=clock, max_retries=0) as p:
        p.run("2026-10-01", "2026-10-06")
        before = {str(f.relative_to(p.data_dir)): f.read_bytes() for f in (p.data_dir / "sms_history").rglob("*.parquet")}
        clock.advance(86_400)  # statuses move on: the re-read really is a new version
        p.sim.reset_log()
        from smsc_dagster.testing import FaultPlan

        # the 5th request of the next walk hits an IP block: the run must fail naming it
        p.sim.set_faults(FaultPlan(schedule={5: "error_4"}))
        failed = p.run("2026-10-01", "2026-10-06", raise_on_error=False)
        assert not failed.success
        error = next(e for e in failed.all_events if e.is_step_failure).event_specific_data.error
        assert error.cause.cls_name == "SMSCBlockedError" and "temporarily blocked this IP" in error.cause.message
        after_failure = {
            str(f.relative_to(p.data_dir)): f.read_bytes() for f in (p.data_dir / "sms_history").rglob("*.parquet")
        }
        assert after_failure == before  # nothing stored changed, nothing half-written is visible
        staged = list((p.data_dir / ".staging").rglob("state.jsonl"))
        assert len(staged) == 1
        done_before_failure = len(p.sim.history_requests())
        assert done_before_failure == 5

        p.sim.set_faults(None)
        p.run("2026-10-01", "2026-10-06")
        resumed = p.sim.history_requests()[done_before_failure:]
        total_pages = len(p.sim.expected_rows(*account.day_range(dt.date(2026, 9, 30), dt.date(2026, 10, 6)))) // 1000 + 1
        # the four pages read before the failure are not read again: the walk resumes at the blocked page
        assert len(resumed) == total_pages - 4
        assert resumed[0].params["prev_id"] == p.sim.history_requests()[4].params["prev_id"]
        for day in (f"2026-10-0{i}" for i in range(1, 7)):
            assert ids(p.partition(day)) == ids(p.truth(day)), day
        assert not (p.data_dir / ".staging" / "sms_history").exists() or not any((p.data_dir / ".staging" / "sms_history").iterdir())


def test_a_notebook_reading_while_runs_write_never_fails_either_side(tmp_path, clock):
    import subprocess
    import sys

    account = SimulatedAccount(seed=42, messages_per_day=400)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-01")  # the tables exist before the reader starts
        stop = tmp_path / "stop"
        reader = subprocess.Popen(
            [sys.executable, "-c", READER, str(p.data_dir), str(stop)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            results = [p.run("2026-10-01", "2026-10-04").success for _ in range(3)]
        finally:
            stop.write_text("")
            out, err = reader.communicate(timeout=60)
        reads, errors = map(int, out.split())
    assert results == [True, True, True]
    assert errors == 0, err
    assert reads > 10


def test_asset_values_load_through_the_definitions(tmp_path, clock):
    account = SimulatedAccount(seed=43, messages_per_day=150)
    with pipeline(tmp_path, account, clock=clock) as p:
        p.run("2026-10-08", "2026-10-09")
        day = p.defs.load_asset_value(["smsc", "sms_history"], partition_key="2026-10-09", instance=p.instance)
        daily = p.defs.load_asset_value(["smsc", "delivery_daily"], partition_key="2026-10-09", instance=p.instance)
        rollup = p.defs.load_asset_value(["smsc", "delivery_by_operator"], instance=p.instance)
        truth = p.truth("2026-10-09")
    assert list(day["int_id"]) == ids(truth)
    assert int(daily["messages"].sum()) == len(truth) and set(daily["date"].astype(str)) == {"2026-10-09"}
    assert int(rollup["messages"].sum()) == len(truth) + len(p.truth("2026-10-08"))
