"""A run process killed with SIGKILL mid-backfill: stored partitions intact, nothing half-written visible,
and the re-run completes exactly without fetching again the pages read before the crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq

from smsc_dagster.testing import FaultPlan, SimulatedAccount, SMSCSimulator

from .pipeline_support import RUNNER, env_for, local_day_span

def files(data_dir) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted((data_dir / "sms_history").glob("date=*/*"))}


def test_sigkill_mid_backfill_keeps_partitions_and_the_rerun_resumes(tmp_path, clock):
    account = SimulatedAccount(seed=51, messages_per_day=800)
    data_dir = tmp_path / "data"
    with SMSCSimulator(account, clock=clock, slow_seconds=60) as sim:
        env = env_for(sim, tmp_path)
        # Earlier runs stored the first five days.
        done = subprocess.run([sys.executable, "-c", RUNNER, "2026-10-01", "2026-10-05"], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.stdout.strip().endswith("success"), done.stderr[-3000:]
        before = files(data_dir)
        assert len(before) == 5

        # The 20-day backfill (21 API days, 16,800 rows: 17 pages) hangs on its 9th request; kill it there.
        clock.advance(3600)
        sim.reset_log()
        sim.set_faults(FaultPlan(schedule={9: "slow"}))
        proc = subprocess.Popen([sys.executable, "-c", RUNNER, "2026-10-01", "2026-10-20"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        deadline = time.monotonic() + 240
        while sim.in_flight == 0 or len(sim.history_requests()) < 8:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:] if proc.poll() is not None else "timeout"
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

        # Readers see exactly the partitions stored before, each whole; nothing half-written is visible.
        assert files(data_dir) == before
        for path in (data_dir / "sms_history").glob("date=*/data.parquet"):
            pq.read_table(path)
        assert not list((data_dir / "sms_history").rglob("*.tmp"))
        journal = next((data_dir / ".staging" / "sms_history").rglob("state.jsonl")).read_bytes()
        state = json.loads(journal.splitlines()[-1])  # the journal's last line: the newest state
        assert state["pages"] == 8  # eight pages were staged before the kill

        # Re-run: resumes at the saved cursor, so the eight pages are not asked again.
        sim.set_faults(None)
        sim.reset_log()
        again = subprocess.run([sys.executable, "-c", RUNNER, "2026-10-01", "2026-10-20"], env=env,
                               capture_output=True, text=True, timeout=300)
        assert again.stdout.strip().endswith("success"), again.stderr[-3000:]
        resumed = sim.history_requests()
        assert len(resumed) == 17 - 8
        for i in range(1, 21):
            day = f"2026-10-{i:02d}"
            stored = pq.read_table(data_dir / "sms_history" / f"date={day}" / "data.parquet").column("int_id").to_pylist()
            assert stored == [int(r["int_id"]) for r in sim.expected_rows(*local_day_span(day, "Asia/Almaty"))], day
        assert not any((data_dir / ".staging" / "sms_history").iterdir())
