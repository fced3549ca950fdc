"""Fault matrix: a 30-day single-run backfill with each fault kind on 10% of requests.

For every fault kind the SMSC simulator can inject, run the backfill over partitions that were already stored
and classify the outcome: ``complete`` (every partition exactly equals the simulator's ground truth) or
``failed`` (the run failed with a message naming the fault, and every stored partition is byte-for-byte
unchanged). Anything else is ``BROKEN``. Prints the matrix with the requests each run spent.

    .venv/bin/python scripts/fault_matrix.py [--days 30] [--per-day 300] [--probability 0.1]

The tests (tests/test_faults.py) assert on the same function; this script shows the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow.parquet as pq

from smsc_dagster import SMSCResource, build_smsc_definitions
from smsc_dagster.core.dates import api_dates
from smsc_dagster.core.clock import CLOCK_ORIGIN_ENV, CLOCK_SPEED_ENV, CLOCK_START_ENV, ScaledClock
from smsc_dagster.testing import FAULT_KINDS, FaultPlan, SimulatedAccount, SMSCSimulator

# Fault kinds and the words a failure message must contain to "name the fault".
FAULT_WORDS = {
    "http_500": "HTTP 500",
    "http_502": "HTTP 502",
    "http_503": "HTTP 503",
    "reset": "connection",
    "slow": "no answer within",
    "truncated_json": "truncated JSON",
    "html": "HTML page",
    "error_4": "blocked",
    "error_9": "too many requests",
}
# Simulated seconds per real second: retry backoff passes quickly while request latency stays far below the
# budget's skew margin. 300 messages a day keep both runs of a case inside one hour's 30 requests.
SPEED = 30.0
TIMEZONE = "Asia/Almaty"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def scaled_time(speed: float, start: float) -> Iterator[ScaledClock]:
    """A ScaledClock shared by the simulator and (through the environment) the pipeline's client."""
    origin = time.time()
    saved = {k: os.environ.get(k) for k in (CLOCK_SPEED_ENV, CLOCK_ORIGIN_ENV, CLOCK_START_ENV)}
    os.environ.update({CLOCK_SPEED_ENV: str(speed), CLOCK_ORIGIN_ENV: str(origin), CLOCK_START_ENV: str(start)})
    try:
        yield ScaledClock(speed=speed, origin=origin, start=start)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def snapshot(data_dir: Path) -> dict[str, bytes]:
    """Every committed partition file, by path, with its bytes."""
    root = data_dir / "sms_history"
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(root.glob("date=*/data.parquet"))}


def run_fault_case(kind: str, workdir: Path, *, days: int = 30, per_day: int = 300, probability: float = 0.1,
                   seed: int = 7) -> dict:
    """Store ``days`` partitions, then re-run the same backfill with ``kind`` on ``probability`` of requests."""
    first = dt.date(2026, 10, 1)
    last = first + dt.timedelta(days=days - 1)
    keys = (first.isoformat(), last.isoformat())
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    data_dir = workdir / "data"
    start = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()
    account = SimulatedAccount(seed=seed, messages_per_day=per_day)
    with scaled_time(SPEED, start) as clock, SMSCSimulator(account, clock=clock, slow_seconds=3.0) as sim:
        resource = SMSCResource(
            login=account.login, password=account.password, base_url=sim.base_url,
            budget_path=str(workdir / "budget.sqlite3"), timeout_s=2.0, max_retries=5,
        )
        defs = build_smsc_definitions(start_date="2026-09-01", timezone=TIMEZONE, data_dir=str(data_dir),
                                      resource=resource)
        job = defs.resolve_job_def("smsc_refresh")
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            assert job.execute_in_process(instance=instance, tags=tags, run_config=QUIET).success
            before = snapshot(data_dir)
            sim.set_faults(FaultPlan(probability=probability, kinds=(kind,), seed=seed))
            sim.reset_log()
            result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET, raise_on_error=False)
            history = sim.history_requests()
            after = snapshot(data_dir)
            truth_ok = all(
                [r["int_id"] for r in pq.read_table(data_dir / "sms_history" / f"date={d}" / "data.parquet")
                 .select(["int_id"]).to_pylist()]
                == [int(r["int_id"]) for r in sim.expected_rows(*_local_day(d))]
                for d in (first + dt.timedelta(days=i) for i in range(days))
            ) if result.success else None
            message = ""
            if not result.success:
                failure = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
                message = (failure.cause or failure).message.strip()
            api_start, api_end = api_dates(first, last, TIMEZONE, account.timezone)
            api_rows = len(sim.expected_rows(*account.day_range(api_start, api_end)))
    faults = sum(1 for r in history if r.fault)
    if result.success and truth_ok:
        outcome = "complete"
    elif not result.success and after == before and FAULT_WORDS[kind].lower() in message.lower():
        outcome = "failed"
    else:
        outcome = "BROKEN"
    return {
        "kind": kind,
        "outcome": outcome,
        "requests": len(history),
        "minimal": api_rows // 1000 + 1,
        "faults": faults,
        "rows": api_rows,
        "unchanged_on_failure": (after == before) if not result.success else None,
        "message": message.splitlines()[0][:150] if message else "",
    }


def _local_day(day: dt.date) -> tuple[float, float]:
    start = dt.datetime.combine(day, dt.time(), ZoneInfo(TIMEZONE))
    return start.timestamp(), (start + dt.timedelta(days=1)).timestamp()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--probability", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{args.days}-day single-run backfill, {args.per_day} messages/day, each fault on "
          f"{args.probability:.0%} of history requests (seed {args.seed})\n")
    print(f"{'fault':<15} {'outcome':<9} {'requests':>8} {'minimal':>8} {'faults':>6}  message")
    broken = 0
    for kind in FAULT_KINDS:
        with tempfile.TemporaryDirectory() as tmp:
            row = run_fault_case(kind, Path(tmp), days=args.days, per_day=args.per_day,
                                 probability=args.probability, seed=args.seed)
        broken += row["outcome"] == "BROKEN"
        print(f"{kind:<15} {row['outcome']:<9} {row['requests']:>8} {row['minimal']:>8} {row['faults']:>6}  "
              f"{row['message']}", flush=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
