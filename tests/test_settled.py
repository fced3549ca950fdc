"""The daily refresh re-reads only the days that are not settled yet, and never a settled one."""

from __future__ import annotations

import datetime as dt
import time
from zoneinfo import ZoneInfo

import dagster as dg

from smsc_dagster.core.clock import FakeClock
from smsc_dagster.storage import Layout
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import QUIET, pipeline

ZONE = ZoneInfo("Asia/Almaty")
STUCK_DAY = dt.date(2026, 11, 30)
STUCK_UNTIL = dt.datetime(2026, 12, 4, 4, tzinfo=ZONE).timestamp()


class SettlingAccount(SimulatedAccount):
    """Every message settles ten minutes after it is sent, except every 50th of 2026-11-30, which stays
    pending until 2026-12-04 04:00."""

    def render(self, msg, now):
        send_ts = msg["send_timestamp"]
        stuck = dt.datetime.fromtimestamp(send_ts, ZONE).date() == STUCK_DAY and msg["int_id"] % 50 == 0
        return super().render({**msg, "settle_timestamp": STUCK_UNTIL if stuck else send_ts + 600}, now)


def at(day: int, month: int = 11) -> float:
    return dt.datetime(2026, month, day, 5, 30, tzinfo=ZONE).timestamp()


def test_only_unsettled_days_are_reread_until_they_settle(tmp_path, monkeypatch):
    clock = FakeClock(at(30))
    account = SettlingAccount(seed=88, messages_per_day=300)
    with pipeline(tmp_path, account, clock=clock, lookback_days=4) as p:
        schedule = p.defs.resolve_schedule_def("smsc_daily_refresh")
        job = p.defs.resolve_job_def("smsc_refresh")
        store = Layout(p.data_dir).store("sms")

        def tick(when: float) -> list[tuple[str, str]]:
            """Evaluate the schedule at ``when``, run what it asks for on the simulator's clock, and return
            the ranges it asked for."""
            clock.advance(when - clock.now())
            # the run processes read time from the same world clock as the simulator
            monkeypatch.setenv("SMSC_CLOCK_SPEED", "1")
            monkeypatch.setenv("SMSC_CLOCK_ORIGIN", str(time.time()))
            monkeypatch.setenv("SMSC_CLOCK_START", str(when))
            moment = dt.datetime.fromtimestamp(when, ZONE)
            with dg.build_schedule_context(instance=p.instance, scheduled_execution_time=moment) as context:
                data = schedule.evaluate_tick(context)
            ranges = []
            for request in data.run_requests or []:
                first = request.tags["dagster/asset_partition_range_start"]
                last = request.tags["dagster/asset_partition_range_end"]
                assert job.execute_in_process(instance=p.instance, tags=request.tags, run_config=QUIET).success
                ranges.append((first, last))
            return ranges

        before = len(p.sim.history_requests())
        assert tick(at(30)) == [("2026-11-26", "2026-11-29")]  # nothing stored yet
        assert len(p.sim.history_requests()) - before == 2  # five server days of 300 messages: 1500 rows, 2 pages
        # 27 and 28 were read more than the message lifetime after they ended, with nothing pending: settled;
        # 29 was read the morning after it ended, too early.
        assert [store.settlement(dt.date(2026, 11, d), "Asia/Almaty", 86_400).settled for d in (27, 28, 29)] == [
            True, True, False
        ]

        before = len(p.sim.history_requests())
        assert tick(at(1, 12)) == [("2026-11-29", "2026-11-30")]  # 27 and 28 are settled: not re-read
        requests = p.sim.history_requests()[before:]
        assert [(r.params["start"], r.params["end"]) for r in requests] == [("28.11.2026", "30.11.2026")]
        stuck = [r for r in p.partition("2026-11-30") if r["status_class"] == "pending"]
        assert len(stuck) == sum(1 for r in p.truth("2026-11-30") if int(r["int_id"]) % 50 == 0) > 0

        assert tick(at(2, 12)) == [("2026-11-30", "2026-12-01")]  # 29 settled; 30 holds pending messages
        assert tick(at(3, 12)) == [("2026-11-30", "2026-12-02")]  # 30 still pending, 12-01 read too early
        # 12-01 is settled now, 30 is still pending: two runs around it, never one run over a settled day
        assert tick(at(4, 12)) == [("2026-11-30", "2026-11-30"), ("2026-12-02", "2026-12-03")]
        assert store.settlement(STUCK_DAY, "Asia/Almaty", 86_400).settled  # read after its messages settled
        assert tick(at(5, 12)) == [("2026-12-03", "2026-12-04")]

        # each partition's metadata shows its pending count and whether it is settled
        events = p.instance.fetch_materializations(dg.AssetKey(["smsc", "sms_history"]), limit=100).records
        by_partition: dict[str, list] = {}
        for record in sorted(events, key=lambda r: r.storage_id):
            by_partition.setdefault(record.partition_key, []).append(record.asset_materialization.metadata)
    thirtieth = by_partition["2026-11-30"]
    assert [m["settled"].value for m in thirtieth] == [False, False, False, True]
    assert [m["pending"].value for m in thirtieth] == [len(stuck), len(stuck), len(stuck), 0]
