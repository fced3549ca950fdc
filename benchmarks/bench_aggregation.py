"""4. Aggregation: time to rebuild delivery_daily, delivery_by_operator and delivery_by_country over 10 million
rows of history Parquet.

The rows are synthetic partitions in the contract schema (``_synth.py``: 200 days × 50,000 rows, generated with
numpy/pyarrow once and cached under the work directory). A worker process calls the warehouse exactly as the
assets do, repeated; medians reported.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LAST_DAY, PARTITION_TZ, WORKDIR, dir_bytes, fmt_int, md_table, median, run_worker, write_section  # noqa: E402

WORKER = str(Path(__file__).with_name("_aggregation_worker.py"))


def synthetic(days: int, rows_per_day: int) -> tuple[Path, float]:
    import _synth

    started = time.perf_counter()
    full = _synth.ensure(WORKDIR / "synthetic", days=days, rows_per_day=rows_per_day, last_day=LAST_DAY, timezone=PARTITION_TZ)
    return full, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--rows-per-day", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    import _synth

    full, gen_s = synthetic(args.days, args.rows_per_day)
    data_dir = _synth.subset(full, WORKDIR / "aggregation", args.days)
    parquet_mb = dir_bytes(full / "sms_history") / 1e6
    out = run_worker([WORKER, json.dumps({"data_dir": str(data_dir), "reps": args.reps})], timeout_s=900)
    # For comparison: the history asset's checks, which every history run executes over every stored row.
    checks = run_worker([WORKER, json.dumps({"mode": "checks", "data_dir": str(data_dir)})], timeout_s=900)
    steps = list(out["reps"][0])
    med = {s: median(r[s] for r in out["reps"]) for s in steps}
    total = sum(med.values())
    rollups = med["rebuild_rollup(operator)"] + med["rebuild_rollup(country)"]
    rows = [(s, f"{med[s]:.2f} s", ", ".join(f"{r[s]:.2f}" for r in out["reps"])) for s in steps]
    rows.append(("**total**", f"**{total:.2f} s**", ""))
    table = md_table(["step (Warehouse method)", "median", "repetitions (s)"], rows)
    check_s = sum(c["s"] for c in checks["checks"].values())
    check_line = ", ".join(f"{name} {c['s']:.2f} s{'' if c['passed'] else ' (failed)'}" for name, c in checks["checks"].items())
    markdown = f"""
{fmt_int(out['rows'])} rows in {out['days']} daily partitions ({args.rows_per_day:,} rows/day; {parquet_mb:.0f} MB of zstd
Parquet; generated in {gen_s:.0f} s, or taken from the cache). DuckDB {out['threads']} threads (its default: the
machine's cores); a fresh `warehouse.duckdb`; {args.reps} repetitions in one worker process.

{table}

- `replace_delivery_daily` recomputes every one of the {out['days']} days in one transaction
  ({fmt_int(out['delivery_daily_rows'])} rows of `delivery_daily`); the two rollups read every partition file
  ({out['operator_rows']} operator rows, {out['country_rows']} country rows).
- **Both rollups over {out['rows'] / 1e6:.0f} million rows: {rollups:.2f} s** (each reads every row:
  {out['rows'] / med['rebuild_rollup(operator)'] / 1e6:.1f} and {out['rows'] / med['rebuild_rollup(country)'] / 1e6:.1f} million rows/s);
  with `delivery_daily` recomputed for every day as well, {total:.2f} s. Peak RSS of the worker:
  {max(out['peak_rss_mb'], out['child_maxrss_mb']):.0f} MB (section 3 sets memory against the data size).
- For comparison, the history asset's four checks, which every history run executes over *every* stored
  partition (not only the run's), take {check_s:.2f} s over the same rows ({check_line}) and peak at
  **{max(checks['peak_rss_mb'], checks['child_maxrss_mb']):.0f} MB**: `int_id_unique` is a `GROUP BY int_id` over the whole history, a
  hash table of every id (section 3 shows it growing with the range).
"""
    print(markdown)
    summary = [
        {
            "target": "aggregation over 10M rows (no target; reported)",
            "measured": f"rollups {rollups:.2f} s, + delivery_daily {total:.2f} s, for {fmt_int(out['rows'])} rows",
            "verdict": "reported",
        }
    ]
    write_section(
        "aggregation",
        "4. Aggregation over 10 million rows",
        markdown,
        summary,
        {"worker": out, "checks": checks, "medians": med, "generation_s": gen_s, "parquet_mb": parquet_mb},
        started,
    )


if __name__ == "__main__":
    main()
