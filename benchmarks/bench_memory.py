"""3. Peak memory (RSS): the floor of a Dagster run process and what of it is this package's, a 1-day run,
backfills up to 1,000,000 messages (flat from 50 to 200 days?), and building the delivery tables over up to
10 million rows.

Every measurement is its own fresh worker process, whose peak resident set is the larger of its own ``VmHWM``
(``/proc/self/status``, read as it finishes) and the kernel's ``ru_maxrss`` for it (``os.wait4`` in a small
launcher). Floors: ``_memory_worker.py`` (the interpreter, imports, the package's definitions, a trivial
Dagster run). Backfills: the simulator (5,000 SMS a server day, limits off) runs in this process, the
``smsc_refresh`` job in the worker, as one run over the range; and the same fetch and ingest without Dagster
(the asset's body). Delivery tables: the synthetic partitions of section 4, the warehouse calls of the assets.
Steps: the same runs of 50 and 200 days again in the ``steps`` mode of ``_memory_worker.py``, the resident set
sampled every 10 ms and attributed to each Dagster step. A store that already holds 0 to 25 million rows is
section 6's measurement (``bench_daily.py``); its figures
are quoted here from ``results/daily.json`` when that file exists.
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

import pyarrow.parquet as pq  # noqa: E402
from _common import (  # noqa: E402
    API_TZ,
    LAST_DAY,
    PARTITION_TZ,
    RESULTS_DIR,
    WORKDIR,
    dir_bytes,
    fmt_int,
    md_table,
    median,
    run_worker,
    simulator,
    write_section,
)

VOLUME = 5000
TARGET_MB = 300
FLAT = 0.10
FLOOR_MODES = ("python", "import_pyarrow", "import_dagster", "import_package", "definitions", "trivial_run")
FLOOR_LABELS = {
    "python": "the interpreter (`python -c pass`)",
    "import_pyarrow": "`import pyarrow` (+ parquet, compute)",
    "import_dagster": "`import dagster`",
    "import_package": "`import smsc_dagster` (Dagster, pyarrow, pandas, DuckDB, SQLAlchemy, requests, the package)",
    "definitions": "`import smsc_dagster` + `build_smsc_definitions(...)` (2 channels, nothing run)",
    "trivial_run": "a trivial Dagster run: one asset returning 1, `dg.materialize` on a fresh SQLite instance",
}
MEMORY_WORKER = str(Path(__file__).with_name("_memory_worker.py"))
# This script's figures before the run checks and the per-day tables worked a batch of days at a time
# (commit 75b0304, 2026-12-01 11:31 UTC, same machine): peak RSS of the smsc_refresh run by days.
BEFORE_BATCHES = {"commit": "75b0304", 1: 296, 50: 312, 200: 353}


def peak(out: dict) -> float:
    """A worker's peak RSS: the larger of its own VmHWM and the kernel's ru_maxrss for it (os.wait4)."""
    return max(out["peak_rss_mb"], out.get("child_maxrss_mb", 0.0))


def floors(reps: int) -> dict[str, dict]:
    """Each floor mode ``reps`` times, each in a fresh process (interleaved); plus the import breakdown."""
    runs: dict[str, list[dict]] = {m: [] for m in FLOOR_MODES}
    for rep in range(reps):
        for mode in FLOOR_MODES:
            out = run_worker([MEMORY_WORKER, json.dumps({"mode": mode, "workdir": str(WORKDIR / "memory" / f"floor-{mode}-{rep}")})])
            runs[mode].append(out)
    result = {
        m: {"peak_mb": median(peak(r) for r in rs), "each_mb": [peak(r) for r in rs], "modules": rs[-1]["modules"],
            "import_s": median(r["import_s"] for r in rs)}
        for m, rs in runs.items()
    }
    breakdown = run_worker([MEMORY_WORKER, json.dumps({"mode": "import_breakdown", "workdir": str(WORKDIR / "memory" / "floor-breakdown")})])
    result["import_breakdown"] = {"peak_mb": peak(breakdown), "steps": breakdown["steps"]}
    print(json.dumps({m: r["peak_mb"] for m, r in result.items()}), file=sys.stderr, flush=True)
    return result


def arrow_mb(data_dir: Path) -> float:
    """In-memory Arrow size of every committed partition (read one file at a time)."""
    total = 0
    for path in (data_dir / "sms_history").glob("date=*/data.parquet"):
        total += pq.read_table(path).nbytes
    return total / 2**20


def backfill(days: int, variant: str | None = None) -> dict:
    """One ``smsc_refresh`` run over the last ``days`` days (``variant``: ``no_audit`` or ``history_only``,
    jobs defined in the worker to tell what grows the peak)."""
    first = LAST_DAY - dt.timedelta(days=days - 1)
    workdir = WORKDIR / "memory" / f"days{days}{'_' + variant if variant else ''}"
    shutil.rmtree(workdir, ignore_errors=True)
    with simulator(VOLUME) as sim:
        spec = {
            "base_url": sim.base_url,
            "login": sim.account.login,
            "password": sim.account.password,
            "workdir": str(workdir),
            "timezone": PARTITION_TZ,
            "start_date": first.isoformat(),
            "runs": [{"label": "backfill", "first": first.isoformat(), "last": LAST_DAY.isoformat()}],
            "day_rows": True,
            "variant": variant,
        }
        out = run_worker([str(Path(__file__).with_name("_pipeline_worker.py")), json.dumps(spec)], timeout_s=1800)
        history = sim.history_requests()
    out["days"] = days
    out["api_rows"] = sum(r.rows for r in history)
    out["requests"] = len(history)
    out["partition_rows"] = sum(out["day_rows"].values())
    out["arrow_mb"] = arrow_mb(workdir / "data")
    out["parquet_mb"] = dir_bytes(workdir / "data" / "sms_history") / 2**20
    out.pop("day_rows")
    print(json.dumps({k: v for k, v in out.items() if k != "runs"}), file=sys.stderr, flush=True)
    return out


def no_dagster(days: int) -> dict:
    """The same backfill's fetch and ingest without Dagster (the asset body, SMSCClient + StagedIngest)."""
    first = LAST_DAY - dt.timedelta(days=days - 1)
    with simulator(VOLUME) as sim:
        spec = {
            "mode": "ours_client_http",
            "base_url": sim.base_url,
            "login": sim.account.login,
            "password": sim.account.password,
            "workdir": str(WORKDIR / "memory" / f"nodagster{days}"),
            "timezone": API_TZ,
            "api_start": first.isoformat(),
            "api_end": LAST_DAY.isoformat(),
            "warmup_day": (first - dt.timedelta(days=30)).isoformat(),
            "pin": 0,
        }
        out = run_worker([str(Path(__file__).with_name("_ingest_worker.py")), json.dumps(spec)], timeout_s=1800)
    out["days"] = days
    print(json.dumps(out), file=sys.stderr, flush=True)
    return out


def step_run(days: int) -> dict:
    """A ``days``-day ``smsc_refresh`` run with the resident set sampled per step (``_memory_worker.py steps``)."""
    first = LAST_DAY - dt.timedelta(days=days - 1)
    workdir = WORKDIR / "memory" / f"steps{days}"
    shutil.rmtree(workdir, ignore_errors=True)
    with simulator(VOLUME) as sim:
        spec = {"mode": "steps", "base_url": sim.base_url, "login": sim.account.login, "password": sim.account.password,
                "workdir": str(workdir), "timezone": PARTITION_TZ, "start_date": first.isoformat(),
                "first": first.isoformat(), "last": LAST_DAY.isoformat()}
        out = run_worker([MEMORY_WORKER, json.dumps(spec)], timeout_s=1800)
    out["days"] = days
    print(json.dumps({"days": days, "peak": peak(out)}), file=sys.stderr, flush=True)
    return out


def delivery_tables(days_list: list[int], rows_per_day: int, total_days: int) -> list[dict]:
    import _synth

    full = _synth.ensure(WORKDIR / "synthetic", days=total_days, rows_per_day=rows_per_day, last_day=LAST_DAY, timezone=PARTITION_TZ)
    results = []
    for days in days_list:
        data_dir = _synth.subset(full, WORKDIR / "memory", days)
        out = run_worker([str(Path(__file__).with_name("_aggregation_worker.py")), json.dumps({"data_dir": str(data_dir), "reps": 1})])
        files = sorted((full / "sms_history").glob("date=*/data.parquet"))[:days]
        out["parquet_mb"] = sum(f.stat().st_size for f in files) / 2**20
        out["arrow_mb"] = pq.read_table(files[0]).nbytes / 2**20 * days  # every synthetic day has as many rows
        results.append(out)
        print(json.dumps({k: v for k, v in out.items() if k != "reps"}), file=sys.stderr, flush=True)
    return results


def stored_history() -> dict | None:
    """Section 6's peak RSS of the daily refresh over 0 … 25M stored rows (``results/daily.json``), if run."""
    path = RESULTS_DIR / "daily.json"
    if not path.exists():
        return None
    section = json.loads(path.read_text())
    data = section["data"]
    medians = data.get("medians", {})
    if "package" not in medians:
        return None
    return {
        "command": section["command"],
        "finished": section["finished"],
        "run_range": data.get("run_range"),
        "rows_per_day": data.get("rows_per_day"),
        "variants": {v: {int(n): m["peak_mb"] for n, m in sizes.items()} for v, sizes in medians.items()},
    }


def pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f} %"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", default="1,50,200", help="backfill lengths in days (5,000 SMS a day)")
    parser.add_argument("--delivery-days", default="50,100,200", help="synthetic days (50,000 rows a day); '' to skip")
    parser.add_argument("--floor-reps", type=int, default=3, help="fresh processes per floor measurement")
    parser.add_argument("--skip-parts", action="store_true", help="skip the runs without Dagster")
    parser.add_argument("--skip-steps", action="store_true", help="skip the per-step RSS runs")
    args = parser.parse_args()
    started = time.perf_counter()
    floor = floors(args.floor_reps)
    days_list = [int(d) for d in args.days.split(",")]
    runs = [backfill(d) for d in days_list]
    ranged = [d for d in days_list if d > 1] or days_list
    compare = sorted({min(ranged), max(ranged)})
    parts = {} if args.skip_parts else {
        d: {"history_checks": backfill(d, "history_checks"), "history_only": backfill(d, "history_only"),
            "plain": no_dagster(d)}
        for d in compare
    }
    stepped = {} if args.skip_steps else {d: step_run(d) for d in compare}
    delivery = delivery_tables([int(d) for d in args.delivery_days.split(",")], 50_000, 200) if args.delivery_days else []
    stored = stored_history()

    # -- the floor ---------------------------------------------------------------------------------------
    frows = [
        (FLOOR_LABELS[m], f"**{floor[m]['peak_mb']:.0f} MB**", ", ".join(f"{v:.0f}" for v in floor[m]["each_mb"]),
         fmt_int(floor[m]["modules"]), f"{floor[m]['import_s']:.2f} s")
        for m in FLOOR_MODES
    ]
    one_day = min(runs, key=lambda r: r["days"])
    frows.append(
        (f"a 1-day `smsc_refresh` run of this package ({fmt_int(one_day['partition_rows'])} rows; below)",
         f"**{peak(one_day):.0f} MB**", "", "", "")
    )
    ftable = md_table(["process (each fresh)", "**peak RSS** (median)", "each (MB)", "modules loaded", "import time"], frows)
    steps = floor["import_breakdown"]["steps"]
    btable = md_table(
        ["loaded by `import smsc_dagster`, in this order", "RSS added", "modules"],
        [(s["step"], f"{s['mb']:.0f} MB", fmt_int(s["modules"])) for s in steps],
    )
    python_mb, dagster_mb = floor["python"]["peak_mb"], floor["import_dagster"]["peak_mb"]
    package_mb, defs_mb, trivial_mb = floor["import_package"]["peak_mb"], floor["definitions"]["peak_mb"], floor["trivial_run"]["peak_mb"]
    ours = {s["step"]: s["mb"] for s in steps}
    own = ours.get("smsc_dagster's own modules", 0.0)
    libs = sum(v for k, v in ours.items() if k not in ("dagster", "smsc_dagster's own modules"))

    # -- backfills ---------------------------------------------------------------------------------------
    rows = []
    for r in runs:
        run = r["runs"][0]
        rows.append(
            (
                f"{r['days']} day{'s' if r['days'] > 1 else ''} × {VOLUME:,}",
                fmt_int(r["partition_rows"]),
                fmt_int(r["api_rows"]),
                f"{r['parquet_mb']:.1f} MB",
                f"{r['arrow_mb']:.0f} MB",
                f"{r['baseline_rss_mb']:.0f} MB",
                f"**{peak(r):.0f} MB**",
                f"{r['peak_rss_mb']:.0f} / {r['child_maxrss_mb']:.0f} MB",
                f"{run['wall_s']:.0f} s",
            )
        )
    table = md_table(
        ["backfill (one run)", "rows in partitions", "rows the API returned", "Parquet on disk", "the rows in Arrow memory",
         "RSS before the run (imports, definitions, instance)", "**peak RSS**", "VmHWM / ru_maxrss", "run wall"],
        rows,
    )
    biggest = max(runs, key=lambda r: r["partition_rows"])
    smallest_range = min((r for r in runs if r["days"] > 1), key=lambda r: r["partition_rows"], default=runs[0])
    growth = peak(biggest) / peak(smallest_range)
    flat = growth <= 1 + FLAT
    by_days = {r["days"]: r for r in runs}
    prow = [
        (f"{d} days ({fmt_int(by_days[d]['partition_rows'])} rows)" if d in by_days else f"{d} days",
         f"{peak(by_days[d]):.0f} MB" if d in by_days else "—",
         f"{peak(part['history_checks']):.0f} MB", f"{peak(part['history_only']):.0f} MB",
         f"{peak(part['plain']):.0f} MB")
        for d, part in parts.items()
    ]
    ptable = md_table(
        ["backfill", "the package's `smsc_refresh` run (above)", "the history asset and its 4 run checks (Dagster)", "the history asset alone, no checks (Dagster)",
         "fetch + ingest without Dagster (SMSCClient + StagedIngest)"],
        prow,
    ) if parts else ""
    plain_line = ""
    if parts:
        lo, hi = min(parts), max(parts)
        grow = {k: peak(parts[hi][k]) / peak(parts[lo][k]) for k in ("history_checks", "history_only", "plain")}
        grow["package"] = peak(by_days[hi]) / peak(by_days[lo]) if lo in by_days and hi in by_days else float("nan")
        plain_line = (
            f"- Each its own run, {lo} → {hi} days: the fetch and ingest without Dagster "
            f"{pct(grow['plain'])} ({peak(parts[lo]['plain']):.0f} → {peak(parts[hi]['plain']):.0f} MB: the staged ingest holds one "
            f"page and the days still open, whatever the range); the history asset alone in a Dagster run "
            f"{pct(grow['history_only'])}; with its four run checks {pct(grow['history_checks'])}; the whole job "
            f"{pct(grow['package'])}."
        )

    # -- per step ---------------------------------------------------------------------------------------
    stable, sline = "", ""
    if stepped:
        lo, hi = min(stepped), max(stepped)

        def by_step(out: dict) -> dict[str, dict]:
            return {s["step"]: s for s in out["steps"]}

        lo_steps, hi_steps = by_step(stepped[lo]), by_step(stepped[hi])

        def added(step: dict) -> float:
            return step["rss_max_mb"] - step["rss_start_mb"]

        def cell(step: dict | None) -> str:
            if step is None:
                return "—"
            return f"{step['rss_start_mb']:.0f} → {step['rss_max_mb']:.0f} MB ({step['rss_max_mb'] - step['rss_start_mb']:+.0f}), {step['s']:.1f} s"

        stable = md_table(
            ["step (Dagster step key)", f"{lo} days: RSS at its start → highest while it ran (added), time",
             f"{hi} days: the same", f"its highest RSS, {lo} → {hi} days"],
            [(f"`{key}`", cell(lo_steps.get(key)), cell(step),
              pct(step["rss_max_mb"] / lo_steps[key]["rss_max_mb"]) if key in lo_steps else "—")
             for key, step in hi_steps.items()],
        )
        top_lo = max(lo_steps.values(), key=lambda x: x["rss_max_mb"])
        top_hi = max(hi_steps.values(), key=lambda x: x["rss_max_mb"])
        sline = (
            f"- Per step ({lo} and {hi} days again, each a fresh worker; whole runs {peak(stepped[lo]):.0f} and "
            f"{peak(stepped[hi]):.0f} MB, {pct(peak(stepped[hi]) / peak(stepped[lo]))} — the sampling thread and its samples "
            "cost some MB of their own, so compare these runs with each other, not with the table above): the highest step is "
            f"`{top_lo['step']}` at {lo} days ({top_lo['rss_max_mb']:.0f} MB) and `{top_hi['step']}` at {hi} days "
            f"({top_hi['rss_max_mb']:.0f} MB). The history asset leaves the process "
            f"{list(lo_steps.values())[1]['rss_start_mb'] - stepped[lo]['baseline_rss_mb']:.0f} / "
            f"{list(hi_steps.values())[1]['rss_start_mb'] - stepped[hi]['baseline_rss_mb']:.0f} MB above the RSS the run started "
            "with (Arrow's and the allocator's retained memory), whatever the range; every later step adds its "
            "working set on top of that. "
            + (lambda k: f"The step whose own addition still grows most is `{k}` ({added(lo_steps[k]):+.0f} → "
               f"{added(hi_steps[k]):+.0f} MB over the RSS at its start)." if k else "")(
                max((k for k in hi_steps if k in lo_steps), key=lambda k: added(hi_steps[k]) - added(lo_steps[k]), default=None))
        )
    before = BEFORE_BATCHES
    batch_line = (
        f"- **What grew with the range, and the fix.** Before (commit {before['commit']}, this script: 1 / 50 / 200 days "
        f"{before[1]} / {before[50]} / {before[200]} MB, {pct(before[200] / before[50])} from 50 to 200 days), every step "
        "after the history read the run's whole range in one DuckDB query: the four run checks (`int_id_unique` "
        "grouped every int_id of the range: +42 MB over the step's start at 200 days against +12 MB at 50, "
        "measured with the `steps` mode before the change), `delivery_daily` and its "
        "day figures, and the daily marts (`delivery_latency`'s `quantile_disc` holds every latency of the range; "
        "`failure_reasons` peaked highest), each on two DuckDB threads whose buffers add up over a long query, "
        "and the rows written stayed in memory until the connection closed. Now the run checks ask "
        "31 partitions at a time (`checks.RUN_BATCH_DAYS`; `int_id_unique` reads the files' int_id ranges first "
        "and groups together only files whose ranges overlap — the only ones that can share an id — so an id in "
        "two partitions of the run is still found, in hash buckets of at most 250,000 ids), and `delivery_daily` "
        "and the daily marts are replaced 31 days at a time on one DuckDB thread with a CHECKPOINT between "
        "batches (`Warehouse.in_batches`). The same tables and check results (tests/test_run_memory.py); the "
        "daily refresh (3 days) is a single batch (on one DuckDB thread too)."
    )

    # -- delivery tables ------------------------------------------------------------------------------------
    dtable, dline = "", ""
    if delivery:
        dtable = md_table(
            ["history rows", "partitions", "Parquet on disk", "the rows in Arrow memory", "RSS before", "**peak RSS**", "time (all 3 tables)"],
            [(fmt_int(r["rows"]), f"{r['days']} days", f"{r['parquet_mb']:.0f} MB", f"{r['arrow_mb']:.0f} MB",
              f"{r['baseline_rss_mb']:.0f} MB", f"**{peak(r):.0f} MB**", f"{sum(r['reps'][0].values()):.1f} s") for r in delivery],
        )
        dline = (
            f"- Over {fmt_int(delivery[-1]['rows'])} rows the peak is **{peak(delivery[-1]):.0f} MB**, "
            f"{peak(delivery[-1]) - peak(delivery[0]):+.0f} MB from {fmt_int(delivery[0]['rows'])} rows: DuckDB streams the "
            "Parquet files through its aggregates, so memory follows the number of groups, not the number of rows."
        )

    # -- a store holding 0 … 25M rows (section 6) -------------------------------------------------------
    stored_md, stored_summary = "", None
    if stored:
        variants = stored["variants"]
        sizes = sorted(variants["package"])
        lo, hi = sizes[0], sizes[-1]
        labels = {"package": "the package's `smsc_refresh` job",
                  "no_audit": "section 6's variant without the audit checks (the package's job has none since e47f3b7)"}
        srows = [
            (labels.get(v, v), *(f"{variants[v][n]:.0f} MB" for n in sizes), f"**{pct(variants[v][hi] / variants[v][lo])}**")
            for v in variants
        ]
        stored_md = (
            f"A daily refresh ({stored['run_range'][0]}..{stored['run_range'][1]}, one run) over a store that already holds "
            f"older partitions of {fmt_int(stored['rows_per_day'])} rows a day — section 6, `{stored['command']}` "
            f"(finished {stored['finished']}), peak RSS medians quoted from `results/daily.json`:\n\n"
            + md_table(["run", *(f"{fmt_int(n)} rows stored" for n in sizes), f"{fmt_int(lo)} → {fmt_int(hi)}"], srows)
        )
        pkg = variants["package"][hi] / variants["package"][lo]
        stored_summary = {
            "target": f"the whole run's peak within {FLAT:.0%} as the stored history grows from 0 to {fmt_int(hi)} rows",
            "measured": f"daily refresh {variants['package'][lo]:.0f} → {variants['package'][hi]:.0f} MB ({pct(pkg)})"
            + " (section 6, `bench_daily.py`)",
            "verdict": "met" if pkg <= 1 + FLAT else f"missed ({pct(pkg)}; section 6)",
        }
    else:
        stored_md = "A store holding 0 … 25 million rows is measured by `bench_daily.py` (section 6), which has not been run."

    markdown = f"""
Every figure is one fresh worker process (floors: median of {args.floor_reps}); peak RSS is the larger of the worker's
`VmHWM` (`/proc/self/status`, read as it finishes) and the kernel's `ru_maxrss` for it (`os.wait4` in a small
launcher that spawns it — spawned straight from the benchmark, the worker would be charged the benchmark's own
high-water RSS, simulator included).

**The floor of a Dagster run process here:**

{ftable}

{btable}

- **Floor of a Dagster run process: {trivial_mb:.0f} MB** (a trivial run; `import dagster` alone {dagster_mb:.0f} MB, the
  interpreter {python_mb:.0f} MB). `import smsc_dagster` brings a process to **{package_mb:.0f} MB**, {package_mb - dagster_mb:+.0f} MB over
  Dagster's import: {libs:.0f} MB of it the libraries the package needs (pyarrow; pandas, which pyarrow loads on
  its first conversion of Python values and the partition previews use; DuckDB, SQLAlchemy, requests, orjson) and
  **{own:.0f} MB its own modules**. Building the
  definitions adds {defs_mb - package_mb:+.0f} MB. A 1-day run of the package peaks at **{peak(one_day):.0f} MB**:
  {peak(one_day) - trivial_mb:+.0f} MB over a trivial Dagster run, of which {package_mb - dagster_mb:.0f} MB are the imports above and the
  rest the run itself (DuckDB's buffers for delivery_daily, the marts and the checks, Arrow's allocator, the
  event log of ~20 steps).
- `import smsc_dagster.core` (a client-only user) costs as much as `import smsc_dagster`: the package's
  `__init__` imports the Dagster layer too.

**Backfills**, {VOLUME:,} SMS a server day, one `smsc_refresh` run each (history + its run checks, delivery_daily, the
daily marts, rollups), the simulator in the parent:

{table}

- **1-day run: {peak(one_day):.0f} MB. Largest backfill ({biggest['days']} days, {fmt_int(biggest['partition_rows'])} rows in the
  partitions, {fmt_int(biggest['api_rows'])} read): {peak(biggest):.0f} MB**, against {biggest['arrow_mb']:.0f} MB for the same rows in Arrow
  memory and {biggest['parquet_mb']:.0f} MB of Parquet.
- From {smallest_range['days']} to {biggest['days']} days ({fmt_int(smallest_range['partition_rows'])} → {fmt_int(biggest['partition_rows'])} rows) the
  whole run's peak moved {peak(smallest_range):.0f} → {peak(biggest):.0f} MB (**{pct(growth)}**): {'within' if flat else 'not within'} {FLAT:.0%}.
{batch_line}
{plain_line}

{ptable}

{sline}

{stable}

**A store that already holds history:**

{stored_md}

**Building the delivery tables** (`replace_delivery_daily` for every day, then both rollups) over the synthetic
partitions of section 4, one worker process each:

{dtable}

{dline}
"""
    print(markdown)
    verdict_mb = "met" if peak(biggest) < TARGET_MB else f"missed by {peak(biggest) - TARGET_MB:.0f} MB"
    if peak(biggest) >= TARGET_MB:
        verdict_mb += (f" (a 1-day run already peaks at {peak(one_day):.0f} MB; `import smsc_dagster` alone is "
                       f"{package_mb:.0f} MB, a trivial Dagster run {trivial_mb:.0f} MB)")
    summary = [
        {
            "target": "peak RSS of a 1-day run and of the 1,000,000-row backfill (reported), with the floor of a Dagster run",
            "measured": f"1 day ({fmt_int(one_day['partition_rows'])} rows): {peak(one_day):.0f} MB; {biggest['days']} days "
            f"({fmt_int(biggest['partition_rows'])} rows): {peak(biggest):.0f} MB; floor: trivial Dagster run {trivial_mb:.0f} MB, "
            f"`import smsc_dagster` {package_mb:.0f} MB (its own modules {own:.0f} MB)",
            "verdict": "reported",
        },
        {
            "target": f"peak memory under {TARGET_MB} MB for the 1,000,000-message backfill",
            "measured": f"{peak(biggest):.0f} MB ({fmt_int(biggest['partition_rows'])} rows, whole Dagster run process)",
            "verdict": verdict_mb,
        },
        {
            "target": f"the whole run's peak within {FLAT:.0%} as the range grows from {smallest_range['days']} to {biggest['days']} days (same rows a day)",
            "measured": ", ".join(f"{r['days']} day{'s' if r['days'] > 1 else ''} ({fmt_int(r['partition_rows'])} rows): "
                                  f"{peak(r):.0f} MB" for r in runs)
            + f" ({pct(growth)} from {smallest_range['days']} to {biggest['days']} days; before the batched checks and "
            f"tables, {BEFORE_BATCHES['commit']}: {BEFORE_BATCHES[50]} → {BEFORE_BATCHES[200]} MB, "
            f"{pct(BEFORE_BATCHES[200] / BEFORE_BATCHES[50])})",
            "verdict": "met" if flat else f"missed ({pct(growth)})"
            + (f"; the history asset alone {pct(peak(parts[max(parts)]['history_only']) / peak(parts[min(parts)]['history_only']))}, "
               f"with its run checks {pct(peak(parts[max(parts)]['history_checks']) / peak(parts[min(parts)]['history_checks']))}, "
               f"the ingest without Dagster {pct(peak(parts[max(parts)]['plain']) / peak(parts[min(parts)]['plain']))}" if parts else ""),
        },
    ]
    if stored_summary:
        summary.append(stored_summary)
    write_section(
        "memory",
        "3. Peak memory",
        markdown,
        summary,
        {"floors": floor, "backfills": runs, "parts": {str(d): p for d, p in parts.items()}, "delivery": delivery,
         "stored_history": stored, "steps": {str(d): o for d, o in stepped.items()}, "before_batches": BEFORE_BATCHES},
        started,
    )


if __name__ == "__main__":
    main()
