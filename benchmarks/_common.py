"""Shared helpers of the benchmark scripts: machine description, the simulator, subprocess measurements,
medians, and writing each script's section of ``benchmarks/RESULTS.md``.

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
PYTHON = sys.executable
# Scratch space for data directories, Dagster instances and the synthetic Parquet (outside the repository).
WORKDIR = Path(os.environ.get("SMSC_BENCH_WORKDIR", "/tmp/smsc-bench"))

# The simulated world's "now", as in the test suite: 2026-11-30 12:00 UTC. Every day before it is settled.
NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc).timestamp()
LAST_DAY = dt.date(2026, 11, 29)  # the newest complete partition at NOW
PARTITION_TZ = "Asia/Almaty"  # the package's default partition zone
API_TZ = "Europe/Moscow"  # the simulator account's (and SMSC's) server zone
NO_WAIT_PER_HOUR = 1_000_000  # the client's budget: never waits (the simulator's limits are off too)
API_LIMIT_PER_HOUR = 30  # SMSC's real history limit, to turn request counts into hours

KEY_PACKAGES = ("dagster", "pyarrow", "duckdb", "dlt", "pandas", "numpy", "requests")


# -- machine ------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    packages = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": ram_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": packages,
    }


def machine_line(m: dict[str, Any]) -> str:
    pkgs = ", ".join(f"{k} {v}" for k, v in m["packages"].items())
    return f"{m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; Python {m['python']}; {pkgs}"


# -- processes ----------------------------------------------------------------------------------------


def pin_to_cpu(cpu: int) -> None:
    """Pin this process to one CPU (when the machine has it), and keep Arrow on one thread."""
    try:
        available = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {available[cpu % len(available)]})
    except (AttributeError, OSError):
        pass


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# A tiny launcher between the benchmark and its worker. Spawning is vfork + exec, and the kernel charges an
# exec'd child with the high-water RSS of the process it was spawned from: a worker spawned straight from a
# benchmark that runs the simulator (hundreds of MB) would inherit that figure in its ru_maxrss. Spawned from
# this ~10 MB launcher, the worker's ru_maxrss (read with os.wait4, what getrusage(RUSAGE_CHILDREN) gives for
# that one child) is its own peak.
_LAUNCHER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(proc.pid, 0)
sys.stdout.flush()
print(json.dumps({"__rusage__": {"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
                                 "cpu_s": usage.ru_utime + usage.ru_stime}}), flush=True)
"""


def run_worker(args: Sequence[str], *, timeout_s: float = 900, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python args...`` (a worker that prints one JSON object as its last stdout line) through the
    launcher above and return that object, plus what the kernel accounted for the worker alone:
    ``child_maxrss_mb`` (its peak RSS, ``ru_maxrss``), ``child_cpu_s`` (user + sys), and ``child_wall_s``."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [PYTHON, "-S", "-c", _LAUNCHER, PYTHON, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=str(ROOT),
        env={**os.environ, **(env or {})},
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"worker {args} timed out after {timeout_s} s:\n{err[-3000:]}") from None
    wall = time.perf_counter() - started
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    usage = next((line["__rusage__"] for line in lines if "__rusage__" in line), None)
    results = [line for line in lines if "__rusage__" not in line]
    if proc.returncode != 0 or usage is None or usage["exit"] != 0:
        raise RuntimeError(f"worker {args} failed ({usage}):\n{err[-5000:]}")
    if not results:
        raise RuntimeError(f"worker {args} printed no JSON:\n{out[-2000:]}\n{err[-3000:]}")
    result = results[-1]
    result["child_wall_s"] = wall
    result["child_cpu_s"] = usage["cpu_s"]
    result["child_maxrss_mb"] = usage["maxrss_kb"] / 1024  # KiB on Linux
    return result


def emit(result: dict[str, Any]) -> None:
    """A worker's answer: one JSON line on stdout."""
    print(json.dumps(result, default=str), flush=True)


# -- numbers ------------------------------------------------------------------------------------------


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def fmt_int(n: float) -> str:
    return f"{int(round(n)):,}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s"


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- the simulator ------------------------------------------------------------------------------------


def simulator(messages_per_day: int, seed: int = 2026, **kwargs: Any):
    """A started-on-enter simulator with every limit off and the clock fixed at :data:`NOW`."""
    from smsc_dagster.core.clock import FakeClock
    from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

    account = SimulatedAccount(seed=seed, messages_per_day=messages_per_day, timezone=API_TZ, **kwargs)
    return SMSCSimulator(account, rate_limits=False, clock=FakeClock(NOW))


# -- RESULTS.md -----------------------------------------------------------------------------------------

SECTION_ORDER = ("requests", "ingest", "columnar", "memory", "aggregation", "orchestration", "daily", "settled")


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT)
    except ValueError:
        shown = script
    return " ".join([".venv/bin/python", shlex.quote(str(shown)), *map(shlex.quote, sys.argv[1:])])


def write_section(
    name: str,
    title: str,
    markdown: str,
    summary: list[dict[str, str]],
    data: dict[str, Any],
    started: float,
) -> None:
    """Store this script's section (figures, command, machine) and re-render ``RESULTS.md``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    section = {
        "name": name,
        "title": title,
        "command": command_line(),  # run from the repository root
        "machine": machine(),
        "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "markdown": markdown,
        "summary": summary,
        "data": data,
    }
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(section, indent=1, ensure_ascii=False, default=str))
    render_results()


def render_results(run_all: dict[str, Any] | None = None) -> None:
    sections = []
    # Every section with figures: those of SECTION_ORDER in its order, then any other script's (by name), so a
    # re-render never drops a section some script added.
    others = sorted(p.stem for p in RESULTS_DIR.glob("*.json") if p.stem not in SECTION_ORDER and p.stem != "run_all")
    for name in (*SECTION_ORDER, *others):
        path = RESULTS_DIR / f"{name}.json"
        if path.exists():
            sections.append(json.loads(path.read_text()))
    if run_all is None and (RESULTS_DIR / "run_all.json").exists():
        run_all = json.loads((RESULTS_DIR / "run_all.json").read_text())
    out = ["# Benchmark results", ""]
    out.append(
        "Written by the scripts in `benchmarks/` from an actual run (see `benchmarks/README.md`). Every figure "
        "below comes from the run whose command, machine and time its section names."
    )
    out.append("")
    if run_all:
        out += [
            f"**Whole run:** `{run_all['command']}` — {run_all['elapsed_s']:.0f} s "
            f"({', '.join(f'{k} {v:.0f} s' for k, v in run_all.get('timings', {}).items())}), finished "
            f"{run_all['finished']}"
            + (f"; **failed: {', '.join(run_all['failures'])}**" if run_all.get("failures") else "")
            + ".",
            "",
        ]
    machines = {machine_line(s["machine"]) for s in sections}
    for m in sorted(machines):
        out.append(f"**Machine:** {m}")
        out.append("")
    rows = [r for s in sections for r in s["summary"]]
    if rows:
        out += ["## Targets", ""]
        out.append(md_table(["target", "measured", "verdict"], [(r["target"], r["measured"], r["verdict"]) for r in rows]))
        out.append("")
    for s in sections:
        out += [f"## {s['title']}", ""]
        out.append(f"Command: `{s['command']}` ({s['elapsed_s']:.0f} s, finished {s['finished']})")
        if len(machines) > 1:
            out.append(f"Machine: {machine_line(s['machine'])}")
        out += ["", s["markdown"].strip(), ""]
    RESULTS_MD.write_text("\n".join(out).rstrip() + "\n")


def no_wait_resource(spec: dict, workdir: Path):
    """The SMSCResource a benchmark worker uses: the simulator's account, a private ledger, and a budget so
    large that nothing ever waits (the simulator's limits are off too)."""
    from smsc_dagster import SMSCResource

    return SMSCResource(
        login=spec["login"],
        password=spec["password"],
        base_url=spec["base_url"],
        api_timezone=API_TZ,
        budget_path=str(workdir / "budget.sqlite3"),
        requests_per_hour=NO_WAIT_PER_HOUR,
        identical_per_minute=NO_WAIT_PER_HOUR,
    )
