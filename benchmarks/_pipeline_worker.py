"""Worker process: runs the package's Dagster job against a simulator that another process serves, and
reports what each run cost (wall, CPU, requests from the run's metadata) and the process's peak RSS.

Usage: ``python benchmarks/_pipeline_worker.py '<json spec>'``; the spec names ``base_url``, ``login``,
``password``, ``workdir``, ``timezone``, ``start_date`` and ``runs`` (each ``{"label", "first", "last",
"select": "job" | "history", "instance": name}``). Prints one JSON line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import no_wait_resource, current_rss_mb, emit, peak_rss_mb, pin_to_cpu  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def main() -> None:
    spec = json.loads(sys.argv[1])
    if spec.get("pin") is not None:
        pin_to_cpu(int(spec["pin"]))
    import_started = time.perf_counter()
    import dagster as dg
    import pyarrow.parquet as pq

    from smsc_dagster import build_smsc_definitions

    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    resource = no_wait_resource(spec, workdir)
    defs = build_smsc_definitions(
        start_date=spec["start_date"],
        timezone=spec["timezone"],
        data_dir=str(data_dir),
        lookback_days=spec.get("lookback_days", 3),
        resource=resource,
    )
    job = defs.resolve_job_def("smsc_refresh")
    history_key = dg.AssetKey(["smsc", "sms_history"])
    variant = spec.get("variant")
    if variant in ("no_audit", "history_checks", "history_only"):
        # Benchmark-side jobs (not the package's), to tell what grows a run's peak: smsc_refresh without the
        # whole-history audit_* checks its AssetSelection.assets(...) brings in, the history asset with its run
        # checks, or the history asset alone.
        audit_checks = [c for c in defs.asset_checks if any(k.name.startswith("audit_") for k in c.check_keys)]
        if variant == "no_audit":
            keys = list(job.asset_layer.executable_asset_keys)
            selection = dg.AssetSelection.assets(*keys) - dg.AssetSelection.checks(*audit_checks)
        elif variant == "history_checks":
            selection = dg.AssetSelection.assets(history_key) - dg.AssetSelection.checks(*audit_checks)
        else:
            selection = dg.AssetSelection.assets(history_key).without_checks()
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job(f"bench_{variant}", selection=selection)]))
        job = defs.resolve_job_def(f"bench_{variant}")
    import_s = time.perf_counter() - import_started

    instances: dict[str, dg.DagsterInstance] = {}

    def instance(name: str) -> dg.DagsterInstance:
        if name not in instances:
            home = workdir / f"dagster_home_{name}"
            home.mkdir(parents=True, exist_ok=True)
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
            instances[name] = dg.DagsterInstance.local_temp(str(home))
        return instances[name]

    baseline_rss, baseline_hwm = current_rss_mb(), peak_rss_mb()
    results = []
    for run in spec["runs"]:
        inst = instance(run.get("instance", "main"))
        tags = {
            "dagster/asset_partition_range_start": run["first"],
            "dagster/asset_partition_range_end": run["last"],
        }
        selection = [history_key] if run.get("select") == "history" else None
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = job.execute_in_process(instance=inst, tags=tags, run_config=QUIET, asset_selection=selection)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        meta = {}
        for event in result.all_events:  # the run's totals: one observation of the history asset
            if (event.event_type_value == "ASSET_OBSERVATION" and event.asset_key == history_key
                    and "run_rows" in event.event_specific_data.asset_observation.metadata):
                meta = {k: v.value for k, v in event.event_specific_data.asset_observation.metadata.items()}
        results.append(
            {
                "label": run.get("label", f"{run['first']}..{run['last']}"),
                "first": run["first"],
                "last": run["last"],
                "success": result.success,
                "wall_s": wall,
                "cpu_s": cpu,
                "requests": meta.get("requests"),
                "pages": meta.get("pages"),
                "rows": meta.get("run_rows", meta.get("dagster/row_count")),
                "peak_rss_mb_after": peak_rss_mb(),
            }
        )
    day_rows = {}
    if spec.get("day_rows"):
        for path in sorted((data_dir / "sms_history").glob("date=*/data.parquet")):
            day_rows[path.parent.name.removeprefix("date=")] = pq.ParquetFile(path).metadata.num_rows
    parquet_bytes = sum(p.stat().st_size for p in (data_dir / "sms_history").rglob("*.parquet"))
    for inst in instances.values():
        inst.dispose()
    emit(
        {
            "import_s": import_s,
            "baseline_rss_mb": baseline_rss,
            "baseline_hwm_mb": baseline_hwm,
            "peak_rss_mb": peak_rss_mb(),
            "runs": results,
            "day_rows": day_rows,
            "parquet_bytes": parquet_bytes,
        }
    )


if __name__ == "__main__":
    main()
