"""Worker process of ``bench_memory.py``: the memory floor of one step towards a Dagster run of this package.

Usage: ``python benchmarks/_memory_worker.py '{"mode": ..., "workdir": ...}'`` with ``mode`` one of

* ``python``: the interpreter alone (``site`` imported, as for every worker);
* ``import_pyarrow``: ``import pyarrow, pyarrow.parquet, pyarrow.compute`` (the storage layer's data stack);
* ``import_dagster``: ``import dagster``;
* ``import_core``: ``import smsc_dagster.core`` (the client, no Dagster: requests, SQLAlchemy, orjson);
* ``import_package``: ``import smsc_dagster`` (everything: Dagster, pyarrow, DuckDB, the package);
* ``definitions``: ``import smsc_dagster`` and ``build_smsc_definitions(...)`` (one account, both channels'
  assets, checks, jobs, schedules), nothing run;
* ``trivial_run``: a Dagster run of one asset that returns ``1`` (``dg.materialize`` on a fresh SQLite
  instance): Dagster's own floor for a run, without this package;
* ``import_breakdown``: the package's imports one library at a time in this one process (Dagster, pyarrow,
  pandas, DuckDB, SQLAlchemy, requests and orjson, then the package's own modules: every third-party
  library ``import smsc_dagster`` loads), with the resident set after each (``steps``: library, MB added,
  modules added);
* ``steps``: one ``smsc_refresh`` run over ``first``..``last`` against the simulator the spec names
  (``base_url``, ``login``, ``password``, ``timezone``, ``start_date``), with a thread sampling the resident
  set every 10 ms; ``steps`` lists each Dagster step (asset or check) with its time, the RSS when it started
  and the highest RSS sampled while it ran, from the run's event log timestamps.

Prints one JSON line: ``peak_rss_mb`` (``VmHWM``), ``rss_mb`` (``VmRSS`` at the end), ``modules`` (how many
modules are loaded) and ``import_s``. The launcher adds the kernel's ``ru_maxrss`` for this process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import current_rss_mb, emit, peak_rss_mb  # noqa: E402


# What ``import smsc_dagster`` loads, library by library (each step after the ones before it).
BREAKDOWN = (
    ("dagster", ("dagster",)),
    ("pyarrow (+ parquet, compute)", ("pyarrow", "pyarrow.parquet", "pyarrow.compute")),
    ("pandas (+ numpy)", ("pandas",)),
    ("duckdb", ("duckdb",)),
    ("sqlalchemy", ("sqlalchemy",)),
    ("requests, orjson", ("requests", "orjson")),
    ("smsc_dagster's own modules", ("smsc_dagster",)),
)


def run_steps(spec: dict, workdir: Path) -> dict:
    """One ``smsc_refresh`` run with the resident set sampled every 10 ms, attributed to its steps."""
    import threading

    import dagster as dg

    from _common import no_wait_resource
    from smsc_dagster import build_smsc_definitions

    workdir.mkdir(parents=True, exist_ok=True)
    defs = build_smsc_definitions(
        start_date=spec["start_date"], timezone=spec["timezone"], data_dir=str(workdir / "data"),
        resource=no_wait_resource(spec, workdir),
    )
    job = defs.resolve_job_def("smsc_refresh")
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.time(), current_rss_mb()))
            done.wait(0.01)

    with dg.DagsterInstance.local_temp(str(home)) as instance:
        baseline = current_rss_mb()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = job.execute_in_process(
            instance=instance,
            tags={"dagster/asset_partition_range_start": spec["first"], "dagster/asset_partition_range_end": spec["last"]},
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
        done.set()
        sampler.join()
        spans: dict[str, dict[str, float]] = {}
        for record in instance.all_logs(result.run_id):
            event = record.dagster_event
            if event is None or event.step_key is None:
                continue
            if event.event_type_value == "STEP_START":
                spans.setdefault(event.step_key, {})["start"] = record.timestamp
            elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
                spans.setdefault(event.step_key, {})["end"] = record.timestamp
    steps = []
    for key, span in sorted(spans.items(), key=lambda kv: kv[1].get("start", 0.0)):
        start, end = span.get("start", 0.0), span.get("end", 0.0)
        before = [rss for t, rss in samples if t <= start] or [baseline]
        during = [rss for t, rss in samples if start <= t <= end] or before[-1:]
        steps.append({"step": key, "s": end - start, "rss_start_mb": before[-1], "rss_max_mb": max(during)})
    return {"mode": "steps", "success": result.success, "baseline_rss_mb": baseline, "peak_rss_mb": peak_rss_mb(),
            "rss_mb": current_rss_mb(), "modules": len(sys.modules), "import_s": 0.0, "steps": steps,
            "events": len(result.all_events)}


def main() -> None:
    spec = json.loads(sys.argv[1])
    mode = spec["mode"]
    workdir = Path(spec["workdir"])
    started = time.perf_counter()
    if mode == "import_pyarrow":
        import pyarrow  # noqa: F401
        import pyarrow.compute  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    elif mode == "import_dagster":
        import dagster  # noqa: F401
    elif mode == "import_core":
        import smsc_dagster.core  # noqa: F401
    elif mode in ("import_package", "definitions"):
        import smsc_dagster  # noqa: F401
    elif mode == "trivial_run":
        import dagster as dg
    elif mode == "steps":
        emit(run_steps(spec, workdir))
        return
    elif mode not in ("python", "import_breakdown"):
        raise SystemExit(f"unknown mode {mode!r}")
    steps = []
    if mode == "import_breakdown":
        import importlib

        before, count = current_rss_mb(), len(sys.modules)
        for label, modules in BREAKDOWN:
            for module in modules:
                importlib.import_module(module)
            now = current_rss_mb()
            steps.append({"step": label, "mb": now - before, "modules": len(sys.modules) - count})
            before, count = now, len(sys.modules)
    import_s = time.perf_counter() - started
    if mode == "definitions":
        from smsc_dagster import SMSCResource, build_smsc_definitions

        build_smsc_definitions(
            start_date="2026-01-01",
            timezone="Asia/Almaty",
            data_dir=str(workdir / "data"),
            channels=("sms", "email"),
            resource=SMSCResource(login="bench", password="bench", base_url="http://127.0.0.1:9",
                                  budget_path=str(workdir / "budget.sqlite3")),
        )
    if mode == "trivial_run":
        home = workdir / "dagster_home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")

        @dg.asset
        def one() -> int:
            return 1

        with dg.DagsterInstance.local_temp(str(home)) as instance:
            result = dg.materialize([one], instance=instance)
            assert result.success
    emit({"mode": mode, "peak_rss_mb": peak_rss_mb(), "rss_mb": current_rss_mb(), "modules": len(sys.modules),
          "import_s": import_s, "steps": steps})


if __name__ == "__main__":
    main()
