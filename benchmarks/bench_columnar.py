"""2b. Columnar ingest: response bytes → committed Parquet on one core, beside ``orjson.loads`` of the same
bodies and the ingest path as it was before this change, all in one run.

The simulator (limits off) serves the benchmark window once per charset; its response bodies are recorded
with the client's exact POST parameters (``charset=utf-8``, and ``charset=windows-1251``, SMSC's default,
for the second set). Every variant then runs in its own worker process (``_ingest_worker.py``) pinned to the
first CPU, with Arrow (``pa.set_cpu_count(1)``, ``pa.set_io_thread_count(1)``) and DuckDB on one thread:

* ``orjson_loads``, ``json_loads``: the parsers alone over the same bodies (no rows converted, nothing
  written) — the floor of any path that goes through Python objects, and the standard library;
* ``duckdb_json``: DuckDB's ``read_json`` of the same bodies with the contract's column types, to Arrow
  (parse only: a columnar reader for comparison); ``duckdb_json+raw``: the same with every column typed
  ``JSON`` (each value's JSON text: what proving its JSON type needs) and the bodies' ``":`` counted (the
  least a check for undeclared keys costs) — the floor of a columnar path as exact as the contract;
* ``ours_bytes``: the history asset's whole sequence from bytes to committed Parquet — the client's parse,
  its row filter (``int_id`` cursor, duplicates), ``rows_to_table``, ``StagedIngest.add_page`` (per-day
  staging, consolidation of passed days) and ``commit`` (the committed zstd files, fsynced, moved into place);
* ``ours_bytes@before``: the same sequence run by the package as it was at the revision before this change
  (``git archive`` of ``smsc_dagster`` at ``--baseline-rev``, put first on ``PYTHONPATH``).

Each worker does an untimed warm-up on two bodies, then ``--passes`` timed passes over all bodies, of which
the fastest counts (the least disturbed on a shared machine); the variants are interleaved, the order rotating
every repetition, and medians over ``--reps`` repetitions are reported.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import pickle
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
from _common import (  # noqa: E402
    API_TZ,
    WORKDIR,
    fmt_int,
    md_table,
    median,
    pin_to_cpu,
    run_worker,
    simulator,
    write_section,
)
from bench_ingest import BEFORE_COLUMNAR, PAGE, baseline_package  # noqa: E402

WORKER = str(Path(__file__).with_name("_ingest_worker.py"))
TARGET_ROWS_S = 150_000


def record_bodies(sim, start: dt.date, end: dt.date, charset: str) -> list[tuple[bytes, str]]:
    """The window's history pages as the client requests them (POST, fmt=3, ``charset``), raw bytes and
    ``Content-Type`` kept."""
    account = sim.account
    bodies = []
    prev_id = None
    with requests.Session() as session:
        while True:
            params = {
                "get_messages": 1, "format": 0, "cnt": PAGE,
                "start": start.strftime("%d.%m.%Y"), "end": end.strftime("%d.%m.%Y"),
                "login": account.login, "psw": account.password, "fmt": 3, "charset": charset,
            }
            if prev_id is not None:
                params["prev_id"] = prev_id
            response = session.post(f"{sim.base_url}/sys/get.php", data=params, timeout=60)
            response.raise_for_status()
            content_type = response.headers["Content-Type"]
            bodies.append((response.content, content_type))
            data = json.loads(response.content.decode(content_type.split("charset=")[-1]))
            if not isinstance(data, list) or len(data) < PAGE:
                return bodies
            prev_id = min(int(r["int_id"]) for r in data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=5000, help="messages per server day")
    parser.add_argument("--days", type=int, default=6, help="server days in the window")
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions of every variant")
    parser.add_argument("--passes", type=int, default=3, help="timed passes per worker (the fastest counts)")
    parser.add_argument(
        "--baseline-rev",
        default=BEFORE_COLUMNAR,
        help="the revision whose package ours_bytes@before runs (the one before the columnar ingest)",
    )
    parser.add_argument("--no-cp1251", action="store_true", help="skip the windows-1251 bodies")
    args = parser.parse_args()
    started = time.perf_counter()
    before_pkg = baseline_package(args.baseline_rev, "before_columnar_pkg")
    if before_pkg is None:
        raise SystemExit(f"cannot build the package of {args.baseline_rev}")
    pin_to_cpu(1)  # the simulator's core; every worker is pinned to the other one
    api_start = dt.date(2026, 10, 1)
    api_end = api_start + dt.timedelta(days=args.days - 1)
    base = WORKDIR / "columnar"
    base.mkdir(parents=True, exist_ok=True)
    charsets = ["utf-8"] + ([] if args.no_cp1251 else ["windows-1251"])
    recorded: dict[str, dict] = {}
    with simulator(args.volume) as sim:
        for charset in charsets:
            bodies = record_bodies(sim, api_start, api_end, charset)
            path = base / f"bodies-{charset}.pkl"
            path.write_bytes(pickle.dumps(bodies))
            rows = sum(len(json.loads(b.decode(ct.split("charset=")[-1]))) if b.startswith(b"[") else 0 for b, ct in bodies)
            recorded[charset] = {"path": str(path), "bodies": len(bodies), "bytes": sum(len(b) for b, _ in bodies), "rows": rows}
            print(f"{charset}: {len(bodies)} bodies, {rows:,} rows, {recorded[charset]['bytes'] / 1e6:.1f} MB", file=sys.stderr)
    api_rows = recorded["utf-8"]["rows"]

    variants = ["orjson_loads", "json_loads", "duckdb_json", "duckdb_json+raw", "ours_bytes@before", "ours_bytes"]
    if "windows-1251" in recorded:
        variants += ["ours_bytes@before+cp1251", "ours_bytes+cp1251"]
    results: dict[str, list[dict]] = defaultdict(list)
    for rep in range(args.reps):
        order = variants[rep % len(variants):] + variants[: rep % len(variants)]
        for variant in order:
            name, _, tag = variant.partition("+")
            mode, _, at = name.partition("@")
            charset = "windows-1251" if tag == "cp1251" else "utf-8"
            spec = {
                "mode": mode,
                "bodies": recorded[charset]["path"],
                "api_start": api_start.isoformat(),
                "api_end": api_end.isoformat(),
                # Partitions in the server's zone: every fetched row is committed.
                "timezone": API_TZ,
                "workdir": str(base / "work" / variant.replace("@", "_").replace("+", "_")),
                "passes": args.passes,
                "pin": 0,
                "raw": tag == "raw",
            }
            env = {"PYTHONPATH": str(before_pkg)} if at == "before" else {}
            out = run_worker([WORKER, json.dumps(spec)], timeout_s=600, env=env)
            results[variant].append(out)
            print(f"rep {rep + 1} {variant}: {out['wall_s'] * 1000:.0f} ms (passes {', '.join(f'{w * 1000:.0f}' for w in out['pass_walls'])})", file=sys.stderr)

    med = {
        v: {
            "wall_s": median(r["wall_s"] for r in runs),
            "cpu_s": median(r.get("min_cpu_s", r["cpu_s"]) for r in runs),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "rows": runs[-1].get("rows", runs[-1].get("rows_committed")),
            "package": runs[-1].get("package"),
            "stages": {s: median(r["stages"][s] for r in runs) for s in runs[0].get("stages", {})},
            "reps_wall_s": [r["wall_s"] for r in runs],
        }
        for v, runs in results.items()
    }
    new, old, floor = med["ours_bytes"], med["ours_bytes@before"], med["orjson_loads"]
    labels = {
        "orjson_loads": "`orjson.loads` of the same bodies (parse only)",
        "json_loads": "`json.loads` of the same bodies, decoded first (parse only)",
        "duckdb_json": "DuckDB `read_json(format='array', columns=…)` to Arrow (parse only)",
        "duckdb_json+raw": "the same, every column `JSON` (each value's JSON text) + counting `\":` (parse only)",
        "ours_bytes@before": f"**before**: bytes → committed Parquet, the package of {args.baseline_rev}",
        "ours_bytes": "**now**: bytes → committed Parquet (this change)",
        "ours_bytes@before+cp1251": f"before, windows-1251 bodies ({args.baseline_rev})",
        "ours_bytes+cp1251": "now, windows-1251 bodies",
    }
    table_rows = []
    for v in variants:
        m = med[v]
        rows = recorded["windows-1251" if v.endswith("cp1251") else "utf-8"]["rows"]
        table_rows.append(
            (
                labels[v],
                fmt_int(m["rows"]) if m["rows"] is not None else fmt_int(rows),
                f"{m['wall_s'] * 1000:.0f} ms",
                f"**{fmt_int(rows / m['wall_s'])}**",
                f"{m['wall_s'] / new['wall_s']:.2f}×",
                f"{m['cpu_s'] * 1000:.0f} ms",
                fmt_int(rows / m["cpu_s"]),
                f"{m['peak_rss_mb']:.0f} MB",
            )
        )
    table = md_table(
        ["variant", "rows", "wall (median)", "rows/s (wall)", "wall / now's", "CPU (median)", "rows per CPU-s", "peak RSS"],
        table_rows,
    )
    stage_names = list(new["stages"])
    stage_rows = [
        (s, f"{old['stages'].get(s, 0) * 1000:.0f} ms", f"{new['stages'][s] * 1000:.0f} ms",
         f"{old['stages'].get(s, 0) / new['stages'][s]:.1f}×" if new["stages"][s] else "—")
        for s in stage_names
    ]
    stage_table = md_table(["stage (summed over the pages)", "before", "now", "speed-up"], stage_rows)
    now_rate, before_rate = api_rows / new["wall_s"], api_rows / old["wall_s"]
    data = {
        "recorded": recorded,
        "medians": med,
        "runs": results,
        "rows_s": {"now": now_rate, "before": before_rate, "orjson_loads": api_rows / floor["wall_s"],
                   "json_loads": api_rows / med["json_loads"]["wall_s"], "duckdb_json": api_rows / med["duckdb_json"]["wall_s"],
                   "duckdb_json+raw": api_rows / med["duckdb_json+raw"]["wall_s"]},
        "speedup": old["wall_s"] / new["wall_s"],
        "vs_orjson_loads": new["wall_s"] / floor["wall_s"],
        "baseline_rev": args.baseline_rev,
    }
    cp = ""
    if "ours_bytes+cp1251" in med:
        cp_rows = recorded["windows-1251"]["rows"]
        cp_now, cp_before = med["ours_bytes+cp1251"], med["ours_bytes@before+cp1251"]
        cp = (
            f"- windows-1251 bodies ({recorded['windows-1251']['bytes'] / 1e6:.1f} MB: Cyrillic in one byte a "
            f"letter, converted to UTF-8 by the header before msgspec reads it): now {fmt_int(cp_rows / cp_now['wall_s'])} rows/s, "
            f"before {fmt_int(cp_rows / cp_before['wall_s'])} ({cp_before['wall_s'] / cp_now['wall_s']:.2f}×)."
        )
    verdict = "met" if now_rate >= TARGET_ROWS_S else f"missed ({fmt_int(now_rate)} rows/s, {now_rate / TARGET_ROWS_S:.2f}× the target)"
    summary = [
        {
            "target": f"columnar ingest ≥ {TARGET_ROWS_S:,} rows/s from bytes to committed Parquet on one core",
            "measured": f"{fmt_int(now_rate)} rows/s (before: {fmt_int(before_rate)}, {old['wall_s'] / new['wall_s']:.1f}× slower; "
            f"orjson.loads alone of the same bodies: {fmt_int(api_rows / floor['wall_s'])} rows/s)",
            "verdict": verdict,
        }
    ]
    markdown = f"""
Window {api_start:%d.%m.%Y}–{api_end:%d.%m.%Y} ({args.days} server days × {args.volume:,} SMS): **{api_rows:,} rows in
{recorded['utf-8']['bodies']} UTF-8 bodies, {recorded['utf-8']['bytes'] / 1e6:.1f} MB**, recorded from the simulator over HTTP. One core
(each worker pinned, Arrow and DuckDB on one thread); {args.reps} interleaved repetitions, each the fastest of {args.passes}
passes; medians. Partitions in the server's zone, so every row read is committed.

{table}

- **Now: {fmt_int(now_rate)} rows/s from bytes to committed Parquet** — {old['wall_s'] / new['wall_s']:.2f}× the path before this
  change ({fmt_int(before_rate)} rows/s, same bytes, same run), and {new['wall_s'] / floor['wall_s']:.1f}× the time `orjson.loads` alone takes
  to parse the same bodies ({fmt_int(api_rows / floor['wall_s'])} rows/s), {new['wall_s'] / med['json_loads']['wall_s']:.1f}× that of
  `json.loads`.
{cp}

By stage (medians of the fastest pass; the stages sum to a little less than the wall time):

{stage_table}

What changed, stage by stage (this issue's columnar read, against the path before it):

- *decode+parse*: the client has msgspec reformat a history page (`msgspec.json.format`, which validates the
  JSON as its decoder does) so that every row member is on a line of its own; when every row has the same
  documented keys in the same order (what a server sends), numpy finds the lines and checks each one's key byte
  for byte by position, and the page is kept as the positions of its value texts (`core.response.RawRows`, no
  Python object a value). Any other page is decoded into one `msgspec.Raw` a value, and a page msgspec refuses
  (malformed, an unknown field, lone surrogates, nesting beyond its depth...) goes the standard way
  (`parse_body`), so every error and every value stays the same; the rows as dicts are parsed from the body
  only if someone reads them.
- *row filter*: the paging check reads every `int_id` at once (numpy: up to 18 digits, quotes stripped).
- *rows_to_table*: one Arrow `take` gathers every value field by field, a string without its quotes, into one
  array, so a string column is a slice of it (no copy); the integer fields are cast at once (their bytes proven
  digits and signs first), the numbers in string fields proven plain integers on their bytes, costs cast to
  decimal by the same Arrow cast as before, strings with an escape (a quote, a line break in a message) parsed in
  one msgspec call, UTF-8 proven by validating the array; a field with any other text (a float, a sign in a
  string, a value beyond its type...) is converted from the parsed rows exactly as before. The cases in
  `tests/test_raw_rows.py` hold the two paths to the same table or the same error.
- *add_page* / *commit*: staged page files are Arrow IPC files with their CRC-32 in the state (instead of plain
  Parquet with page checksums); in a local folder the state is a journal, one whole state a line appended after
  every page (replacing a file costs ext4 a flush on every rename); each day's folder is made once; the
  partition preview is rendered by tabulate directly (the same text pandas made).
- What is left: msgspec's formatting pass and finding the lines (about
  {new['stages'].get('decode+parse', 0) * 1000:.0f} ms), Arrow's typing ({new['stages'].get('rows_to_table', 0) * 1000:.0f} ms), and staging and committing ({(new['stages'].get('add_page', 0) + new['stages'].get('commit', 0)) * 1000:.0f} ms:
  the committed zstd files — about 4 ms a day's file —, the per-page files and state, the fsyncs).
- The columnar readers measured beside it are not exact enough to use on their own: DuckDB's `read_json` with
  the contract's types ({med['duckdb_json']['wall_s'] * 1000:.0f} ms here) casts where the contract refuses or names
  (`1.5` read as an integer, a number read as text) and drops undeclared keys; reading every value's JSON text
  instead and counting keys takes {med['duckdb_json+raw']['wall_s'] * 1000:.0f} ms before a value is checked. `pyarrow.json` refuses
  `int_id` / `id` sent both as numbers and as strings, as SMSC (and half of these rows) does.
"""
    print(markdown)
    write_section("columnar", "2b. Columnar ingest (bytes → committed Parquet)", markdown, summary, data, started)


if __name__ == "__main__":
    main()
