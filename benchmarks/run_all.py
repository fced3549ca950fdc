"""Run every benchmark (each script in its own process, in order) and write ``benchmarks/RESULTS.md``.

Usage: ``.venv/bin/python benchmarks/run_all.py [--only requests,ingest,...]``. About 16 minutes on a 2-core
machine for the first five; ``daily`` and ``settled`` add several more (their sections say how long they took).
Every script talks only to a simulator on 127.0.0.1. Scratch data goes to ``$SMSC_BENCH_WORKDIR`` (default
``/tmp/smsc-bench``); the synthetic 10-million-row Parquet of section 4 is cached there, the 25-million-row
history of section 6 in ``benchmarks/.cache/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
from _common import PYTHON, RESULTS_DIR, ROOT, command_line, render_results  # noqa: E402

# Sections whose scripts are listed here but not (yet) in _common.SECTION_ORDER are rendered after the others.
_common.SECTION_ORDER = (*_common.SECTION_ORDER, *(n for n in ("daily", "settled") if n not in _common.SECTION_ORDER))
SECTION_ORDER = _common.SECTION_ORDER

SCRIPTS = {
    "requests": "bench_requests.py",
    "ingest": "bench_ingest.py",
    "aggregation": "bench_aggregation.py",  # before memory: it generates the synthetic rows memory reuses
    "memory": "bench_memory.py",
    "orchestration": "bench_orchestration.py",
    "daily": "bench_daily.py",  # synthetic 25M-row history cached in benchmarks/.cache/ (~1 GB)
    "settled": "bench_settled.py",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SCRIPTS), help="comma-separated: " + ",".join(SCRIPTS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SCRIPTS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if set(names) == set(SCRIPTS):  # a full run replaces every section
        for name in SECTION_ORDER:
            (RESULTS_DIR / f"{name}.json").unlink(missing_ok=True)
    started = time.perf_counter()
    timings, failures = {}, []
    for name in names:
        script = Path(__file__).with_name(SCRIPTS[name])
        print(f"== {name}: {script.name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([PYTHON, str(script)], cwd=ROOT, check=False)
        timings[name] = time.perf_counter() - t0
        print(f"== {name}: {timings[name]:.0f} s, exit {proc.returncode}", flush=True)
        if proc.returncode != 0:
            failures.append(name)
    summary = {
        "command": command_line(),  # run from the repository root
        "elapsed_s": time.perf_counter() - started,
        "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "timings": timings,
        "failures": failures,
    }
    (RESULTS_DIR / "run_all.json").write_text(json.dumps(summary, indent=1))
    render_results(summary)
    print(f"wrote {Path(__file__).with_name('RESULTS.md')} ({summary['elapsed_s']:.0f} s)")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


if __name__ == "__main__":
    main()
