"""A long backfill reports its progress: cursor against the range, pages and rows, requests left, finish."""

from __future__ import annotations

import datetime as dt
import time

from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import pipeline


def test_a_backfill_reports_progress_in_the_log_and_as_observations(tmp_path, clock):
    account = SimulatedAccount(seed=95, messages_per_day=2000)
    with pipeline(tmp_path, account, clock=clock) as p:
        result = p.run("2026-10-01", "2026-10-12")
        assert result.success
        pages = len(p.sim.history_requests())
        observations = [
            e.event_specific_data.asset_observation.metadata
            for e in result.all_events
            if e.event_type_value == "ASSET_OBSERVATION" and "walk_progress" in e.event_specific_data.asset_observation.metadata
        ]
        logs = [
            e.message for e in p.instance.all_logs(result.run_id) if e.user_message and "requests left this hour" in e.user_message
        ]
    assert pages > 20  # 13 server days x 2000 rows: 27 pages
    # after the first page, every 10 pages, and at the end
    assert [o["walk_pages"].value for o in observations] == [1, 11, 21, pages]
    shares = [o["walk_progress"].value for o in observations]
    assert shares == sorted(shares) and 0 < shares[0] < 0.1 and shares[-1] == 1.0
    assert [o["walk_done"].value for o in observations] == [False, False, False, True]
    assert observations[-1]["walk_rows"].value == sum(r.rows for r in p.sim.history_requests())
    # the budget: 30 an hour, so after 21 requests no more than 9 are left in this hour
    assert observations[2]["requests_left_this_hour"].value == 30 - 21
    # the cursor walks back from the end of the range to its start
    cursors = [o["walk_cursor_at"].value for o in observations]
    assert cursors == sorted(cursors, reverse=True)
    assert dt.datetime.fromtimestamp(cursors[-1], dt.timezone.utc).date() == dt.date(2026, 9, 29)  # Moscow 30.09 00:00
    # a few pages ahead with nine requests free: the estimate is "now" (no budget wait); the run's clock is the
    # system clock here
    assert observations[2]["estimated_finish"].value <= time.time() + 1
    assert len(logs) == 4 and f"done, {pages} pages" in logs[-1]


def test_the_estimate_counts_the_pages_ahead_at_the_accounts_pace():
    import dagster as dg
    import pyarrow as pa

    from smsc_dagster.core.clock import FakeClock
    from smsc_dagster.orchestration.progress import WalkProgress

    clock = FakeClock(1_000_000)
    seen = []
    progress = WalkProgress(
        asset_key=dg.AssetKey("h"), start_ts=0, end_ts=400_000, clock=clock, requests_left=lambda: 5,
        log=type("L", (), {"info": lambda self, m: None})(), emit=seen.append, label="h",
    )
    for _ in range(10):
        progress.page(pa.table({"sent_at": pa.array([300_000 * 1_000_000], pa.timestamp("us", tz="UTC"))}))
    # a quarter of the range in 10 pages: 30 pages ahead, 5 free now, 25 at two minutes each
    assert progress.share == 0.25
    assert progress.estimate_finish(clock.now()) == clock.now() + 25 * 120
    assert [o.metadata["walk_pages"].value for o in seen] == [1]  # no time passed: the next report at page 11
