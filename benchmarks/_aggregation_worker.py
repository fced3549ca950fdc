"""Worker process: rebuilds the delivery tables over a data directory of history partitions, the way the
assets do (``refresh_views``, ``replace_delivery_daily`` over every day, ``rebuild_rollup`` by operator and by
country), ``reps`` times; reports each step's times and the process's peak RSS.

Usage: ``python benchmarks/_aggregation_worker.py '{"data_dir": ..., "reps": 3}'``; with ``"mode": "checks"`` it
runs the history asset's checks instead (invoked directly). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import current_rss_mb, emit, peak_rss_mb  # noqa: E402


def checks(spec: dict) -> None:
    """The history asset's checks, invoked directly over the committed partitions of ``data_dir``."""
    import dagster as dg

    from smsc_dagster.core.channels import SMS
    from smsc_dagster.orchestration.checks import build_history_checks
    from smsc_dagster.storage import Layout

    defs = build_history_checks(history_key=dg.AssetKey(["smsc", "sms_history"]), layout=Layout(spec["data_dir"]), channel=SMS)
    baseline_rss = current_rss_mb()
    results = {}
    for check in defs:
        t0 = time.perf_counter()
        result = check(dg.build_asset_check_context())
        results[check.check_key.name] = {"passed": result.passed, "s": time.perf_counter() - t0, "peak_rss_mb_after": peak_rss_mb()}
    emit({"checks": results, "baseline_rss_mb": baseline_rss, "peak_rss_mb": peak_rss_mb(), "days": len(Layout(spec["data_dir"]).store("sms").days())})


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("mode") == "checks":
        checks(spec)
        return
    from smsc_dagster.storage import Layout, Warehouse

    data_dir = Path(spec["data_dir"])
    for stale in data_dir.glob("warehouse.duckdb*"):
        stale.unlink()
    warehouse = Warehouse(data_dir)
    days = Layout(data_dir).store("sms").days()
    baseline_rss = current_rss_mb()
    reps = []
    for _ in range(int(spec.get("reps", 1))):
        times = {}
        with warehouse.connect() as conn:
            t0 = time.perf_counter()
            warehouse.refresh_views(conn)
            times["refresh_views"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            daily_rows = sum(warehouse.replace_delivery_daily(conn, ["sms"], days[0], days[-1]).values())
            times["replace_delivery_daily"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            operator_rows = warehouse.rebuild_rollup(conn, "operator")
            times["rebuild_rollup(operator)"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            country_rows = warehouse.rebuild_rollup(conn, "country")
            times["rebuild_rollup(country)"] = time.perf_counter() - t0
            (rows,) = conn.execute("SELECT sum(messages) FROM smsc.delivery_by_country").fetchone()
            (threads,) = conn.execute("SELECT current_setting('threads')").fetchone()
        reps.append(times)
    emit(
        {
            "days": len(days),
            "rows": int(rows),
            "delivery_daily_rows": daily_rows,
            "operator_rows": operator_rows,
            "country_rows": country_rows,
            "threads": threads,
            "reps": reps,
            "baseline_rss_mb": baseline_rss,
            "peak_rss_mb": peak_rss_mb(),
        }
    )


if __name__ == "__main__":
    main()
