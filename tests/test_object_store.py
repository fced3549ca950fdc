"""``data_dir="s3://bucket/prefix"``: partitions, staging, the resume cursor and the warehouse in a real
S3-compatible server (moto's standalone server on 127.0.0.1, tests/servers.py), read back with
``smsc_dagster.connect``."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import smsc_dagster
from smsc_dagster import SMSCConfigError, SMSCResource, build_smsc_definitions
from smsc_dagster.storage import Layout, RemotePath, Warehouse, WarehouseLockedError, store_root
from smsc_dagster.storage.filesystem import arrow_file
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import QUIET, local_day_span, range_tags


def _keys(root: RemotePath) -> list[str]:
    infos = root.fs.get_file_info(pafs.FileSelector(root.key, recursive=True, allow_not_found=True))
    return sorted(i.path[len(root.key) + 1:] for i in infos if i.type == pafs.FileType.File)


def _defs(sim, tmp_path, data_dir, account=None):
    resource = SMSCResource(
        login=sim.account.login, password=sim.account.password, base_url=sim.base_url,
        api_timezone=sim.account.timezone, budget_path=str(tmp_path / "budget.sqlite3"),
    )
    return build_smsc_definitions(
        account=account, start_date="2026-09-01", timezone="Asia/Almaty", data_dir=data_dir, resource=resource,
    )


def _run(defs, instance, first, last, job="smsc_refresh"):
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=range_tags(first, last), run_config=QUIET, raise_on_error=False
    )


def test_refresh_on_s3_matches_the_simulator_and_reads_back_with_connect(s3_env, tmp_path):
    bucket = s3_env.new_bucket()
    data_dir = f"s3://{bucket}/prod"
    account = SimulatedAccount(seed=11, messages_per_day=1500)
    with SMSCSimulator(account) as sim, dg.instance_for_test() as instance:
        defs = _defs(sim, tmp_path, data_dir, account="acme")
        result = _run(defs, instance, "2026-09-02", "2026-09-03", job="smsc_acme_refresh")
        assert result.success
        root = store_root(data_dir) / "acme"
        keys = _keys(root)
        # Committed partitions, the manifest and the exported tables; no temporary object, no staging left.
        assert "sms_history/date=2026-09-02/data.parquet" in keys
        assert "sms_history/date=2026-09-03/data.parquet" in keys
        assert "_smsc_store.json" in keys
        assert "delivery_daily/data.parquet" in keys and "delivery_by_operator/data.parquet" in keys
        assert not [k for k in keys if k.endswith(".tmp") or k.startswith(".staging/")], keys
        assert "warehouse.duckdb" in _keys(store_root(data_dir))
        # Exact rows, day by day, against the simulator's truth.
        layout = Layout(data_dir, "acme")
        for day in ("2026-09-02", "2026-09-03"):
            stored = layout.store("sms").read(dt.date.fromisoformat(day))
            start, end = local_day_span(day, "Asia/Almaty")
            truth = sim.expected_rows(start, end, channel="sms")
            assert sorted(stored.column("int_id").to_pylist()) == sorted(int(r["int_id"]) for r in truth)
        total = sum(1 for day in ("2026-09-02", "2026-09-03")
                    for _ in sim.expected_rows(*local_day_span(day, "Asia/Almaty"), channel="sms"))
        conn = smsc_dagster.connect(data_dir)
        try:
            assert conn.execute("SELECT count(*) FROM smsc_acme.sms_history").fetchone()[0] == total
            assert conn.execute("SELECT sum(messages) FROM smsc_acme.delivery_daily").fetchone()[0] == total
            assert conn.execute("SELECT sum(messages) FROM smsc_all.delivery_by_operator").fetchone()[0] == total
            by_op = conn.execute(
                "SELECT operator, count(*) FROM smsc_acme.sms_history GROUP BY 1 ORDER BY 1"
            ).fetchall()
            assert by_op == conn.execute(
                "SELECT operator, sum(messages)::BIGINT FROM smsc_acme.delivery_by_operator GROUP BY 1 ORDER BY 1"
            ).fetchall()
        finally:
            conn.close()


def test_bad_s3_locations_are_named(s3_env, monkeypatch):
    with pytest.raises(SMSCConfigError, match="s3://bucket/prefix"):
        store_root("s3:///no-bucket")
    with pytest.raises(SMSCConfigError, match="without '\\?'"):
        store_root("s3://bucket/prefix?endpoint_override=x")
    with pytest.raises(SMSCConfigError, match="not supported"):
        store_root("gs://bucket/prefix")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "ftp://127.0.0.1:1")
    with pytest.raises(SMSCConfigError, match="AWS_ENDPOINT_URL must be an http"):
        store_root("s3://bucket/prefix")


def test_audit_and_a_second_refresh_on_s3(s3_env, tmp_path):
    """The weekly audit reads the store's partitions; a second refresh replaces its days in place."""
    bucket = s3_env.new_bucket()
    data_dir = f"s3://{bucket}/smsc"
    account = SimulatedAccount(seed=12, messages_per_day=700)
    with SMSCSimulator(account) as sim, dg.instance_for_test() as instance:
        defs = _defs(sim, tmp_path, data_dir)
        assert _run(defs, instance, "2026-09-02", "2026-09-04").success
        before = {k: v for k, v in _etags(store_root(data_dir)).items() if k.startswith("sms_history/")}
        assert _run(defs, instance, "2026-09-03", "2026-09-04").success
        after = {k: v for k, v in _etags(store_root(data_dir)).items() if k.startswith("sms_history/")}
        assert sorted(after) == sorted(before)  # the same three objects, two of them rewritten
        audit = defs.resolve_job_def("smsc_audit").execute_in_process(
            instance=instance, run_config=QUIET, raise_on_error=False
        )
        evaluations = {e.check_name: e.passed for e in audit.get_asset_check_evaluations()}
        assert evaluations and all(evaluations.values()), evaluations
        conn = smsc_dagster.connect(data_dir)
        try:
            stored = conn.execute("SELECT count(*) FROM smsc.sms_history").fetchone()[0]
            daily = conn.execute("SELECT sum(messages) FROM smsc.delivery_daily").fetchone()[0]
        finally:
            conn.close()
        truth = sum(len(sim.expected_rows(*local_day_span(d, "Asia/Almaty"), channel="sms"))
                    for d in ("2026-09-02", "2026-09-03", "2026-09-04"))
        assert stored == daily == truth


def _etags(root: RemotePath) -> dict[str, tuple]:
    infos = root.fs.get_file_info(pafs.FileSelector(root.key, recursive=True, allow_not_found=True))
    return {i.path[len(root.key) + 1:]: (i.size, i.mtime) for i in infos if i.type == pafs.FileType.File}


def test_a_writer_that_lost_a_race_uploads_nothing(s3_env):
    bucket = s3_env.new_bucket()
    layout = Layout(f"s3://{bucket}/smsc")
    first, second = Warehouse(layout), Warehouse(layout)
    with first.connect() as conn:
        conn.execute("CREATE SCHEMA smsc; CREATE TABLE smsc.t AS SELECT 1 AS v")
    with pytest.raises(WarehouseLockedError, match="replaced by another writer"):
        with first.connect() as conn:
            conn.execute("INSERT INTO smsc.t VALUES (2)")
            with second.connect() as other:
                other.execute("INSERT INTO smsc.t VALUES (3)")
    with first.connect(read_only=True) as conn:
        assert conn.execute("SELECT v FROM smsc.t ORDER BY v").fetchall() == [(1,), (3,)]
    # The exported copy follows the uploaded warehouse.
    exported = pq.read_table(arrow_file(layout.root / "t" / "data.parquet")).column("v").to_pylist()
    assert sorted(exported) == [1, 3]


def test_connect_on_a_local_data_dir(tmp_path):
    from .pipeline_support import pipeline

    account = SimulatedAccount(seed=13, messages_per_day=400)
    with pipeline(tmp_path, account) as p:
        p.run("2026-09-02", "2026-09-03")
        truth = len(p.truth("2026-09-02")) + len(p.truth("2026-09-03"))
    conn = smsc_dagster.connect(tmp_path / "data")
    try:
        assert conn.execute("SELECT count(*) FROM smsc.sms_history").fetchone()[0] == truth
        assert conn.execute("SELECT sum(messages) FROM smsc.delivery_daily").fetchone()[0] == truth
        assert conn.execute("SELECT sum(messages) FROM smsc.delivery_by_country").fetchone()[0] == truth
    finally:
        conn.close()
    with pytest.raises(smsc_dagster.SMSCDataError, match="holds no smsc_dagster data"):
        smsc_dagster.connect(tmp_path / "empty")
