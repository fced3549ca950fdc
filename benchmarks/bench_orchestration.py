"""5. Orchestration overhead: a 30-partition backfill as one run against 30 runs of one partition each.

Small volume (20 SMS a server day) so the runs measure Dagster and the pipeline's fixed costs, not data. One
worker process executes, against one simulator: an untimed warm-up run, the range as one run, the 30
single-partition runs, and the range run again (so a drift of the noisy machine shows); each
``execute_in_process`` of the ``smsc_refresh`` job (history → delivery_daily → rollups), on a real
(SQLite) Dagster instance.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import API_LIMIT_PER_HOUR, LAST_DAY, PARTITION_TZ, WORKDIR, md_table, median, run_worker, simulator, write_section  # noqa: E402

from smsc_dagster.core.dates import api_dates  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=30)
    parser.add_argument("--volume", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    last = LAST_DAY
    first = last - dt.timedelta(days=args.partitions - 1)
    days = [first + dt.timedelta(days=i) for i in range(args.partitions)]
    warm = first - dt.timedelta(days=20)
    runs = [{"label": "warm-up", "first": warm.isoformat(), "last": warm.isoformat(), "instance": "warmup"}]
    runs.append({"label": "range-1", "first": first.isoformat(), "last": last.isoformat(), "instance": "range"})
    runs += [{"label": f"single {d}", "first": d.isoformat(), "last": d.isoformat(), "instance": "single"} for d in days]
    runs.append({"label": "range-2", "first": first.isoformat(), "last": last.isoformat(), "instance": "range"})
    workdir = WORKDIR / "orchestration"
    shutil.rmtree(workdir, ignore_errors=True)
    with simulator(args.volume) as sim:
        spec = {
            "base_url": sim.base_url,
            "login": sim.account.login,
            "password": sim.account.password,
            "workdir": str(workdir),
            "timezone": PARTITION_TZ,
            "start_date": warm.isoformat(),
            "runs": runs,
        }
        out = run_worker([str(Path(__file__).with_name("_pipeline_worker.py")), json.dumps(spec)], timeout_s=1200)
        history = sim.history_requests()

    def window(a: dt.date, b: dt.date) -> tuple[str, str]:
        s, e = api_dates(a, b, PARTITION_TZ, sim.account.timezone)
        return s.strftime("%d.%m.%Y"), e.strftime("%d.%m.%Y")

    by_window: dict[tuple[str, str], int] = {}
    for r in history:
        key = (r.params["start"], r.params["end"])
        by_window[key] = by_window.get(key, 0) + 1
    range_requests = by_window.get(window(first, last), 0) // 2  # the range ran twice
    single_requests = sum(by_window.get(window(d, d), 0) for d in days)
    results = out["runs"]
    assert all(r["success"] for r in results), results
    range_walls = [r["wall_s"] for r in results if r["label"].startswith("range")]
    singles = [r for r in results if r["label"].startswith("single")]
    single_total = sum(r["wall_s"] for r in singles)
    single_cpu = sum(r["cpu_s"] for r in singles)
    range_wall = median(range_walls)
    range_cpu = median(r["cpu_s"] for r in results if r["label"].startswith("range"))
    per_run = median(r["wall_s"] for r in singles)
    table = md_table(
        ["", "runs", "wall", "CPU (worker)", "history requests", "at 30 requests/hour"],
        [
            (
                f"{args.partitions} partitions as **one run** (range tags)",
                1,
                f"**{range_wall:.1f} s** ({', '.join(f'{w:.1f}' for w in range_walls)})",
                f"{range_cpu:.1f} s",
                range_requests,
                f"{range_requests / API_LIMIT_PER_HOUR * 60:.0f} min",
            ),
            (
                f"{args.partitions} partitions as **{args.partitions} runs**",
                args.partitions,
                f"**{single_total:.1f} s** (median {per_run:.2f} s a run)",
                f"{single_cpu:.1f} s",
                single_requests,
                f"{single_requests / API_LIMIT_PER_HOUR * 60:.0f} min",
            ),
        ],
    )
    ratio = single_total / range_wall
    markdown = f"""
{args.partitions} partitions ({first}..{last}) at {args.volume} SMS a server day (≈ {args.volume * (args.partitions + 1):,} rows), simulator
limits off, client budget never waiting. Each run is `execute_in_process` of the `smsc_refresh` job
(history, delivery_daily, both rollups) on a SQLite-backed Dagster instance, in one worker process after an
untimed warm-up run.

{table}

- **One run is {ratio:.1f}× faster in wall time** ({single_total:.1f} s against {range_wall:.1f} s): each run pays
  Dagster's run and step set-up, its event-log writes, the currency look-up, and the rebuild of both rollups
  over every loaded day — about {per_run:.1f} s a run here, whatever its size.
- On requests, one run spends {range_requests} against {single_requests}: each single-partition run reads its own
  two server days. At SMSC's 30 requests an hour the 30 runs need {single_requests / API_LIMIT_PER_HOUR:.1f} h of
  budget; the single run, {range_requests} request{'s' if range_requests != 1 else ''}.
"""
    print(markdown)
    summary = [
        {
            "target": "orchestration: 30 partitions as one run vs 30 runs (no target; reported)",
            "measured": f"{range_wall:.1f} s vs {single_total:.1f} s ({ratio:.1f}×); requests {range_requests} vs {single_requests}",
            "verdict": "reported",
        }
    ]
    write_section(
        "orchestration",
        "5. Orchestration overhead",
        markdown,
        summary,
        {"runs": results, "range_requests": range_requests, "single_requests": single_requests, "by_window": {f"{k[0]}-{k[1]}": v for k, v in by_window.items()}},
        started,
    )


if __name__ == "__main__":
    main()
