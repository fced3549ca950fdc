"""Worker process of ``bench_ingest.py``: one measurement of one variant, pinned to one CPU.

Usage: ``python benchmarks/_ingest_worker.py '<json spec>'`` with ``mode`` one of

* ``ours_bytes``: recorded response bytes → the client's parse of a history page (``parse_history_body``;
  ``parse_body``, or ``decode_body`` + ``parse_json_body``, in a package without it) → the client's row filter → rows_to_table →
  StagedIngest.add_page → commit (committed Parquet), exactly the history asset's sequence; run with
  ``PYTHONPATH`` at a baseline copy of the package it measures that copy;
* ``pyarrow_json``: ``pyarrow.json.read_json`` of the same bodies as NDJSON (converted beforehand);
* ``json_loads``: the standard library's ``json.loads`` of the same bodies (a reference point only);
* ``orjson_loads``: ``orjson.loads`` of the same bodies (parse only, the floor of any path through Python);
* ``duckdb_json``: DuckDB's ``read_json(format='array', columns={...})`` of the same bodies with the
  contract's types, to Arrow (parse only; one thread); with ``"raw": true`` every column typed ``JSON``
  instead (each value's JSON text, what a check of its JSON type needs) and the bodies' ``":`` counted (the
  least a check for undeclared keys costs);
* ``ours_client_http``: SMSCClient over HTTP from the simulator + the same ingest (the asset body without
  Dagster);
* ``ours_dagster_http``: the history asset (and its checks) materialized by a Dagster run over HTTP;
* ``dlt``: a dlt ``rest_api`` pipeline over HTTP into DuckDB (``loader_file_format`` from the spec).

Each mode first does an untimed warm-up on a small input, then the timed pass; prints one JSON line with
``wall_s`` and ``cpu_s`` (``time.process_time``: every thread of this process) of the timed region.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import pickle
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import NO_WAIT_PER_HOUR, no_wait_resource, emit, peak_rss_mb, pin_to_cpu  # noqa: E402

PAGE = 1000


def timed(fn):
    wall0, cpu0 = time.perf_counter(), time.process_time()
    extra = fn()
    return {"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0, **(extra or {})}


def fastest(fn, passes: int):
    """``passes`` timed passes of ``fn(i)``; the fastest one (the least disturbed on a shared machine), with
    every pass's wall time."""
    outs = [timed(lambda i=i: fn(i)) for i in range(passes)]
    best = min(outs, key=lambda o: o["wall_s"])
    best["pass_walls"] = [o["wall_s"] for o in outs]
    best["pass_cpus"] = [o["cpu_s"] for o in outs]
    best["min_cpu_s"] = min(best["pass_cpus"])
    return best


# -- our path from recorded bytes -------------------------------------------------------------------------


def ours_bytes(spec: dict) -> dict:
    from smsc_dagster.core.client import SMSCClient
    from smsc_dagster.core.errors import SMSCError
    from smsc_dagster.core import response
    from smsc_dagster.storage.contract import rows_to_table
    from smsc_dagster.storage.partitions import PartitionStore, StagedIngest

    # What the client runs on a body: parse_body where it exists, else the two steps it replaced.
    parse = (
        getattr(response, "parse_history_body", None)
        or getattr(response, "parse_body", None)
        or (lambda b, ct: response.parse_json_body(response.decode_body(b, ct)))
    )

    bodies = pickle.loads(Path(spec["bodies"]).read_bytes())
    window = (dt.date.fromisoformat(spec["api_start"]), dt.date.fromisoformat(spec["api_end"]))
    workdir = Path(spec["workdir"])
    client = SMSCClient(login="bench", password="bench", base_url="http://127.0.0.1:9", budget_path=str(workdir / "b.sqlite3"))
    stages = {"decode+parse": 0.0, "row filter (client)": 0.0, "rows_to_table": 0.0, "add_page": 0.0, "commit": 0.0}

    def ingest(pages: list, data_dir: Path) -> None:
        clock = time.perf_counter
        staging = StagedIngest(
            PartitionStore(data_dir, "sms_history"),
            window[0],
            window[1],
            spec["timezone"],
            signature={"bench": 1},
        )
        staging.resume_point()
        prev_id = None
        for number, (body, content_type) in enumerate(pages, 1):
            t0 = clock()
            try:
                data = parse(body, content_type)
            except SMSCError as exc:  # the client's rule: error 3 on history is "no (more) rows"
                if exc.code != 3:
                    raise
                data = []
            t1 = clock()
            rows, repeated, smallest = client._new_rows(data, prev_id, number)
            rows = rows + repeated if repeated else rows  # as the history asset does
            last = len(data) < PAGE
            cursor = (window[0] - dt.timedelta(days=1), None) if last else (window[1], smallest)
            t2 = clock()
            fetched_at = dt.datetime.now(dt.timezone.utc)
            table = rows_to_table(rows, channel="sms", currency="KZT", timezone=spec["timezone"], fetched_at=fetched_at)
            t3 = clock()
            staging.add_page(table, cursor)
            t4 = clock()
            stages["decode+parse"] += t1 - t0
            stages["row filter (client)"] += t2 - t1
            stages["rows_to_table"] += t3 - t2
            stages["add_page"] += t4 - t3
            prev_id = smallest
            if last:
                break
        t5 = clock()
        staging.commit({"paging_complete": True, "requests": len(pages)})
        stages["commit"] += clock() - t5

    ingest(bodies[:2], workdir / "warmup")

    def one_pass(i: int) -> dict:
        for key in stages:
            stages[key] = 0.0
        ingest(bodies, workdir / f"data{i}")
        return {"stages": dict(stages)}

    out = fastest(one_pass, int(spec.get("passes", 3)))
    import pyarrow.parquet as pq

    files = list((workdir / "data0" / "sms_history").glob("date=*/data.parquet"))
    out["rows_committed"] = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
    out["parquet_bytes"] = sum(p.stat().st_size for p in files)
    return out


def pyarrow_json(spec: dict) -> dict:
    import pyarrow.json as paj

    pages = pickle.loads(Path(spec["ndjson"]).read_bytes())
    options = paj.ReadOptions(use_threads=False, block_size=1 << 22)

    def parse(chunk: list) -> dict:
        rows = 0
        for page in chunk:
            if page:
                rows += paj.read_json(io.BytesIO(page), read_options=options).num_rows
        return {"rows": rows}

    parse(pages[:2])
    return fastest(lambda i: parse(pages), int(spec.get("passes", 3)))


def orjson_loads(spec: dict) -> dict:
    import orjson

    bodies = pickle.loads(Path(spec["bodies"]).read_bytes())

    def parse(chunk: list) -> dict:
        rows = 0
        for body, _ in chunk:
            data = orjson.loads(body)
            rows += len(data) if isinstance(data, list) else 0
        return {"rows": rows}

    parse(bodies[:2])
    return fastest(lambda i: parse(bodies), int(spec.get("passes", 3)))


# The contract's raw fields with the types DuckDB reads them as (int_id arrives as number or string; DuckDB
# casts the strings; id and crc arrive as numbers or strings: text).
DUCKDB_COLUMNS = {
    "int_id": "BIGINT", "id": "VARCHAR", "phone": "VARCHAR", "sender_id": "VARCHAR", "message": "VARCHAR",
    "type": "INTEGER", "format": "INTEGER", "status": "INTEGER", "status_name": "VARCHAR", "err": "INTEGER",
    "sms_cnt": "INTEGER", "cost": "VARCHAR", "mccmnc": "VARCHAR", "country": "VARCHAR", "operator": "VARCHAR",
    "region": "VARCHAR", "crc": "VARCHAR", "send_timestamp": "BIGINT", "last_timestamp": "BIGINT",
}


def duckdb_json(spec: dict) -> dict:
    import duckdb

    bodies = pickle.loads(Path(spec["bodies"]).read_bytes())
    workdir = Path(spec["workdir"])
    files = []
    for i, (body, _) in enumerate(bodies):
        if body.startswith(b"["):  # DuckDB reads files: the bodies are written out before timing
            path = workdir / f"body-{i:04d}.json"
            path.write_bytes(body)
            files.append(str(path))
    con = duckdb.connect(config={"threads": 1})
    raw = bool(spec.get("raw"))
    names = [*DUCKDB_COLUMNS, "send_date", "last_date"] if raw else list(DUCKDB_COLUMNS)
    columns = "{" + ", ".join(f"'{k}': '{'JSON' if raw else DUCKDB_COLUMNS[k]}'" for k in names) + "}"
    texts = {path: Path(path).read_bytes() for path in files}

    def parse(chunk: list) -> dict:
        rows = keys = 0
        for path in chunk:
            rows += con.sql(f"SELECT * FROM read_json('{path}', format='array', columns={columns})").to_arrow_table().num_rows
            if raw:
                keys += texts[path].count(b'":')
        return {"rows": rows, "keys": keys}

    parse(files[:2])
    return fastest(lambda i: parse(files), int(spec.get("passes", 3)))


def json_loads(spec: dict) -> dict:
    bodies = pickle.loads(Path(spec["bodies"]).read_bytes())

    def parse(chunk: list) -> None:
        for body, _ in chunk:
            json.loads(body.decode("utf-8"))

    parse(bodies[:2])
    return fastest(lambda i: parse(bodies), int(spec.get("passes", 3)))


# -- over HTTP ------------------------------------------------------------------------------------------


def ours_client_http(spec: dict) -> dict:
    from smsc_dagster.core.client import SMSCClient
    from smsc_dagster.storage.contract import rows_to_table
    from smsc_dagster.storage.partitions import PartitionStore, StagedIngest

    workdir = Path(spec["workdir"])

    def run(api_start: dt.date, api_end: dt.date, data_dir: Path) -> dict:
        # The history asset's body, without Dagster: currency, the paging walk, conversion, staging, commit.
        with SMSCClient(
            login=spec["login"],
            password=spec["password"],
            base_url=spec["base_url"],
            budget_path=str(workdir / "budget.sqlite3"),
            requests_per_hour=NO_WAIT_PER_HOUR,
            identical_per_minute=NO_WAIT_PER_HOUR,
        ) as client:
            staging = StagedIngest(
                PartitionStore(data_dir, "sms_history"), api_start, api_end, spec["timezone"], signature={"b": 1}
            )
            staging.resume_point()
            currency = client.get_currency()
            for page in client.iter_history(api_start, api_end, channel="sms"):
                fetched_at = dt.datetime.fromtimestamp(client.clock.now(), dt.timezone.utc)
                rows = page.rows + page.repeated if getattr(page, "repeated", None) else page.rows
                table = rows_to_table(rows, channel="sms", currency=currency, timezone=spec["timezone"], fetched_at=fetched_at)
                staging.add_page(table, page.cursor)
            days = staging.commit({"paging_complete": True, "requests": client.stats.requests})
            return {"rows": sum(s.rows for s in days.values()), "requests": client.stats.requests}

    warm = dt.date.fromisoformat(spec["warmup_day"])
    run(warm, warm, workdir / "warmup")
    return timed(lambda: run(dt.date.fromisoformat(spec["api_start"]), dt.date.fromisoformat(spec["api_end"]), workdir / "data"))


def ours_dagster_http(spec: dict) -> dict:
    import dagster as dg

    from smsc_dagster import build_smsc_definitions

    workdir = Path(spec["workdir"])
    home = workdir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    resource = no_wait_resource(spec, workdir)
    defs = build_smsc_definitions(
        start_date=spec["warmup_day"], timezone=spec["timezone"], data_dir=str(workdir / "data"), resource=resource
    )
    job = defs.resolve_job_def("smsc_refresh")
    key = dg.AssetKey(["smsc", "sms_history"])
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    with dg.DagsterInstance.local_temp(str(home)) as instance:

        def run(first: str, last: str) -> dict:
            result = job.execute_in_process(
                instance=instance,
                tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
                run_config=quiet,
                asset_selection=[key],
            )
            assert result.success
            return {}

        run(spec["warmup_day"], spec["warmup_day"])
        out = timed(lambda: run(spec["api_start"], spec["api_end"]))
    import pyarrow.parquet as pq

    files = list((workdir / "data" / "sms_history").glob("date=*/data.parquet"))
    warm_file = workdir / "data" / "sms_history" / f"date={spec['warmup_day']}" / "data.parquet"
    out["rows"] = sum(pq.ParquetFile(p).metadata.num_rows for p in files if p != warm_file)
    return out


def dlt_pipeline(spec: dict) -> dict:
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"  # no network but 127.0.0.1
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt
    from dlt.sources.helpers.rest_client.paginators import BasePaginator
    from dlt.sources.rest_api import rest_api_source

    class PrevIdPaginator(BasePaginator):
        """SMSC's history paging: the next page is ``prev_id`` = the smallest ``int_id`` of this page, until a
        page holds fewer than ``cnt`` rows."""

        def __init__(self) -> None:
            super().__init__()
            self.prev_id: int | None = None

        def update_state(self, response, data=None) -> None:  # noqa: ANN001
            rows = data or []
            if len(rows) < PAGE:
                self._has_next_page = False
                return
            self.prev_id = min(int(r["int_id"]) for r in rows)

        def update_request(self, request) -> None:  # noqa: ANN001
            request.params["prev_id"] = self.prev_id

    workdir = Path(spec["workdir"])

    def run(start: dt.date, end: dt.date, name: str) -> dict:
        source = rest_api_source(
            {
                "client": {"base_url": spec["base_url"], "paginator": PrevIdPaginator()},
                "resources": [
                    {
                        "name": "sms_history",
                        "endpoint": {
                            "path": "/sys/get.php",
                            "method": "GET",
                            "params": {
                                "get_messages": 1, "fmt": 3, "charset": "utf-8", "cnt": PAGE, "format": 0,
                                "start": start.strftime("%d.%m.%Y"), "end": end.strftime("%d.%m.%Y"),
                                "login": spec["login"], "psw": spec["password"],
                            },
                            "data_selector": "$",
                            # SMSC answers a page past the end with error 3 "message not found": no rows.
                            "response_actions": [{"content": "message not found", "action": "ignore"}],
                        },
                        "write_disposition": "append",
                    }
                ],
            }
        )
        pipeline = dlt.pipeline(
            pipeline_name=f"smsc_{name}",
            destination=dlt.destinations.duckdb(str(workdir / f"{name}.duckdb")),
            dataset_name="smsc",
            pipelines_dir=str(workdir / "pipelines"),
        )
        pipeline.run(source, loader_file_format=spec.get("loader_file_format"))
        with pipeline.sql_client() as sql:
            (rows,) = sql.execute_sql("SELECT count(*) FROM sms_history")[0]
        return {"rows": rows}

    warm = dt.date.fromisoformat(spec["warmup_day"])
    run(warm, warm, "warmup")
    return timed(lambda: run(dt.date.fromisoformat(spec["api_start"]), dt.date.fromisoformat(spec["api_end"]), "main"))


MODES = {
    "ours_bytes": ours_bytes,
    "pyarrow_json": pyarrow_json,
    "json_loads": json_loads,
    "orjson_loads": orjson_loads,
    "duckdb_json": duckdb_json,
    "ours_client_http": ours_client_http,
    "ours_dagster_http": ours_dagster_http,
    "dlt": dlt_pipeline,
}


def main() -> None:
    spec = json.loads(sys.argv[1])
    pin_to_cpu(int(spec.get("pin", 0)))
    import pyarrow as pa

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    workdir = Path(spec["workdir"])
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out = MODES[spec["mode"]](spec)
    out["mode"] = spec["mode"]
    if "smsc_dagster.storage.contract" in sys.modules:  # which copy of the package ran (the baseline runs another)
        out["package"] = Path(sys.modules["smsc_dagster.storage.contract"].__file__).parents[2].name  # which copy ran (no machine path)
    out["peak_rss_mb"] = peak_rss_mb()
    emit(out)


if __name__ == "__main__":
    main()
