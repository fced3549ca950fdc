"""Worker process of ``bench_daily.py`` and ``bench_settled.py``: the package's steady-state jobs in a fresh
process, with each Dagster step's time read from the run's event log.

Usage: ``python benchmarks/_daily_worker.py '<json spec>'``; ``spec["mode"]`` is one of

* ``"refresh"``: one ``smsc_refresh`` run over ``first``..``last`` (partition-range tags, as the schedule
  launches it) against a simulator another process serves; reports wall, CPU, peak RSS and every step's time
  (history, its run checks, delivery_daily and the daily marts with their checks, the rollups and theirs).
* ``"audit"``: one ``smsc_audit`` run (the whole-history checks), same figures.
* ``"warehouse"``: builds ``delivery_daily``, the daily marts and the all-days tables for every stored day
  with the package's own ``Warehouse``/``Marts`` calls (what backfill runs would have left), in chunks.
* ``"ticks"``: the daily schedule's ticks, driven line by line over stdin by ``bench_settled.py`` (which owns
  the simulator and its fake clock): for each ``{"when": unix_ts}`` it evaluates the schedule (``"after"``) or
  takes the old schedule's window, the last ``lookback_days`` complete days (``"before"``), runs what that
  asks for with the run's clock at ``when`` (``SMSC_CLOCK_*``), and answers one ``@@``-prefixed JSON line.

Prints one JSON line (``refresh``/``audit``/``warehouse``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import current_rss_mb, emit, no_wait_resource, peak_rss_mb  # noqa: E402

QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
REPLY = "@@"


def _instance(workdir: Path):
    import dagster as dg

    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return dg.DagsterInstance.local_temp(str(home))


def _definitions(spec: dict, workdir: Path):
    from smsc_dagster import build_smsc_definitions

    return build_smsc_definitions(
        start_date=spec["start_date"],
        timezone=spec["timezone"],
        data_dir=spec["data_dir"],
        lookback_days=spec.get("lookback_days", 3),
        resource=no_wait_resource(spec, workdir),
    )


def step_times(instance, run_id: str) -> dict[str, dict]:
    """Each step's time from the run's event log: STEP_START to STEP_SUCCESS (or STEP_FAILURE), in seconds,
    with the step's own ``duration_ms`` (the compute function alone) when Dagster records it."""
    import dagster as dg

    steps: dict[str, dict] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or not event.step_key:
            continue
        step = steps.setdefault(event.step_key, {})
        if event.event_type == dg.DagsterEventType.STEP_START:
            step["start"] = entry.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            step["end"] = entry.timestamp
            step["success"] = event.event_type == dg.DagsterEventType.STEP_SUCCESS
            duration = getattr(event.event_specific_data, "duration_ms", None)
            if duration is not None:
                step["compute_s"] = duration / 1000
    out = {}
    for key, step in steps.items():
        if "start" in step and "end" in step:
            out[key] = {
                "s": step["end"] - step["start"],
                "compute_s": step.get("compute_s"),
                "success": step["success"],
                "offset_s": step["start"],
            }
    if out:
        t0 = min(s["offset_s"] for s in out.values())
        for s in out.values():
            s["offset_s"] -= t0
    return out


def run_job(spec: dict) -> None:
    import dagster as dg

    import_started = time.perf_counter()
    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    defs = _definitions(spec, workdir)
    if spec["mode"] == "refresh" and spec.get("exclude_audit"):
        # A benchmark-side variant (not the package's job): smsc_refresh's assets without the whole-history
        # audit_* checks, which its AssetSelection.assets(...) selection brings in with the assets.
        refresh = defs.resolve_job_def("smsc_refresh")
        audit_checks = [c for c in defs.asset_checks if any(k.name.startswith("audit_") for k in c.check_keys)]
        keys = list(refresh.asset_layer.executable_asset_keys)
        variant = dg.define_asset_job(
            "smsc_refresh_without_audit_checks",
            selection=dg.AssetSelection.assets(*keys) - dg.AssetSelection.checks(*audit_checks),
        )
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[variant]))
        job = defs.resolve_job_def("smsc_refresh_without_audit_checks")
    else:
        job = defs.resolve_job_def("smsc_refresh" if spec["mode"] == "refresh" else "smsc_audit")
    history_key = dg.AssetKey(["smsc", "sms_history"])
    instance = _instance(workdir)
    setup_s = time.perf_counter() - import_started
    tags = {}
    if spec["mode"] == "refresh":
        tags = {"dagster/asset_partition_range_start": spec["first"], "dagster/asset_partition_range_end": spec["last"]}
    baseline_rss, baseline_hwm = current_rss_mb(), peak_rss_mb()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET, raise_on_error=False)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    requests = None
    for event in result.get_asset_materialization_events():
        if event.asset_key == history_key:
            value = event.materialization.metadata.get("requests")
            if value is not None:
                requests = value.value
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    steps = step_times(instance, result.run_id)
    instance.dispose()
    emit(
        {
            "success": result.success,
            "setup_s": setup_s,
            "wall_s": wall,
            "cpu_s": cpu,
            "baseline_rss_mb": baseline_rss,
            "baseline_hwm_mb": baseline_hwm,
            "peak_rss_mb": peak_rss_mb(),
            "requests": requests,
            "checks": checks,
            "steps": steps,
        }
    )


def build_warehouse(spec: dict) -> None:
    """``delivery_daily``, the daily marts and the all-days tables for every stored day, as backfill runs
    would have left them, built ``chunk_days`` days at a time."""
    from smsc_dagster.core import days_between
    from smsc_dagster.storage import Layout, Marts, Warehouse

    layout = Layout(spec["data_dir"])
    warehouse = Warehouse(layout)
    marts = Marts(warehouse)
    days = layout.store("sms").days()
    chunk = int(spec.get("chunk_days", 50))
    t0 = time.perf_counter()
    with warehouse.connect() as conn:
        warehouse.refresh_views(conn)
        marts.write_codes(conn)
        for i in range(0, len(days), chunk):
            first, last = days[i], days[min(i + chunk, len(days)) - 1]
            warehouse.replace_delivery_daily(conn, ["sms"], first, last)
            marts.replace_latency(conn, ["sms"], first, last)
            marts.replace_failure_reasons(conn, ["sms"], first, last)
            marts.replace_sender_daily(conn, ["sms"], first, last)
        for by in ("operator", "country"):
            warehouse.rebuild_rollup(conn, by)
        marts.rebuild_sender_totals(conn)
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {warehouse.table(table)}").fetchone()[0]
            for table in ("delivery_daily", "delivery_latency", "failure_reasons", "delivery_by_sender_daily")
        }
        conn.execute("CHECKPOINT")
    emit({"days": len(days), "contiguous": days == days_between(days[0], days[-1]) if days else True,
          "tables": counts, "s": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()})


def ticks(spec: dict) -> None:
    """Answer ``{"when": ts}`` lines from stdin with the runs a daily tick makes (see the module doc)."""
    import dagster as dg

    workdir = Path(spec["workdir"])
    workdir.mkdir(parents=True, exist_ok=True)
    defs = _definitions(spec, workdir)
    job = defs.resolve_job_def("smsc_refresh")
    schedule = defs.resolve_schedule_def("smsc_daily_refresh")
    partitions = dg.DailyPartitionsDefinition(start_date=spec["start_date"], timezone=spec["timezone"])
    lookback = spec.get("lookback_days", 3)
    history_key = dg.AssetKey(["smsc", "sms_history"])
    zone = ZoneInfo(spec["timezone"])
    with _instance(workdir) as instance:
        print(REPLY + json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            when = float(json.loads(line)["when"])
            moment = dt.datetime.fromtimestamp(when, zone)
            # The run's client reads time from the simulator's world: a clock at `when`, running at real speed.
            os.environ["SMSC_CLOCK_SPEED"] = "1"
            os.environ["SMSC_CLOCK_ORIGIN"] = str(time.time())
            os.environ["SMSC_CLOCK_START"] = str(when)
            t0 = time.perf_counter()
            skipped_reason = None
            if spec["policy"] == "before":
                keys = partitions.get_partition_keys(current_time=moment)
                window = keys[-lookback:]
                ranges = [(window[0], window[-1])] if window else []
            else:
                with dg.build_schedule_context(instance=instance, scheduled_execution_time=moment) as context:
                    data = schedule.evaluate_tick(context)
                ranges = [
                    (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
                    for r in data.run_requests or []
                ]
                skipped_reason = data.skip_message
            evaluate_s = time.perf_counter() - t0
            runs = []
            for first, last in ranges:
                tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
                r0 = time.perf_counter()
                result = job.execute_in_process(instance=instance, tags=tags, run_config=QUIET, raise_on_error=False)
                meta = {}
                pending = {}
                settled = {}
                for event in result.get_asset_materialization_events():
                    if event.asset_key != history_key:
                        continue
                    md = event.materialization.metadata
                    if event.materialization.partition is None:
                        meta = {k: md[k].value for k in ("requests", "pages", "run_rows") if k in md}
                    else:
                        if "pending" in md:
                            pending[event.materialization.partition] = md["pending"].value
                        if "settled" in md:
                            settled[event.materialization.partition] = md["settled"].value
                runs.append(
                    {"first": first, "last": last, "success": result.success, "wall_s": time.perf_counter() - r0,
                     **meta, "pending": pending, "settled": settled}
                )
            print(REPLY + json.dumps({"when": when, "ranges": ranges, "skip": skipped_reason,
                                      "evaluate_s": evaluate_s, "runs": runs}), flush=True)


def main() -> None:
    spec = json.loads(sys.argv[1])
    mode = spec["mode"]
    if mode in ("refresh", "audit"):
        run_job(spec)
    elif mode == "warehouse":
        build_warehouse(spec)
    elif mode == "ticks":
        ticks(spec)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
