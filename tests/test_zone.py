"""A changed partition zone never corrupts stored days: the zone the days were filed in is recorded in the
store (``_smsc_store.json``, or for a store written before the manifest existed, read from its rows), and
another zone over the same data_dir is refused at definition load, or at the latest before a run's first
request, with every stored file left as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from smsc_dagster import SMSCConfigError, SMSCResource, build_smsc_definitions
from smsc_dagster.storage import Layout
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import QUIET, pipeline, range_tags

ACCOUNT = SimulatedAccount(seed=81, messages_per_day=300)
DAYS = ("2026-10-01", "2026-10-03")


def hashes(data_dir) -> dict[str, str]:
    """sha256 of every file under ``data_dir`` (Parquet partitions, manifest, warehouse)."""
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(data_dir.rglob("*"))
        if p.is_file()
    }


def resource_for(p, tmp_path) -> SMSCResource:
    return SMSCResource(
        login=ACCOUNT.login, password=ACCOUNT.password, base_url=p.sim.base_url, api_timezone=ACCOUNT.timezone,
        budget_path=str(tmp_path / "budget.sqlite3"),
    )


def build_in(p, tmp_path, timezone: str):
    return build_smsc_definitions(
        start_date="2026-09-01", timezone=timezone, data_dir=str(p.data_dir), resource=resource_for(p, tmp_path)
    )


def run(defs, p, day: str):
    return defs.resolve_job_def("smsc_refresh").execute_in_process(
        instance=p.instance, tags=range_tags(day, day), run_config=QUIET, raise_on_error=False
    )


def almaty_offset() -> str:
    minutes = int(dt.datetime(2026, 10, 3, tzinfo=ZoneInfo("Asia/Almaty")).utcoffset().total_seconds()) // 60
    return f"UTC+{minutes // 60:02d}:{minutes % 60:02d}"


def p_rows(tmp_path, day: str = "2026-10-03") -> list[dict]:
    return pq.read_table(tmp_path / "data" / "sms_history" / f"date={day}" / "data.parquet").to_pylist()


def failure_text(result) -> str:
    assert not result.success
    return next(e for e in result.all_events if e.is_failure).event_specific_data.error.to_string()


def test_the_manifest_records_zone_account_and_login_identity(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        manifest = json.loads((p.data_dir / "_smsc_store.json").read_text())
    assert manifest["timezone"] == "Asia/Almaty" and manifest["account"] is None and manifest["format"] == 1
    assert len(manifest["login_identity"]) == 16 and ACCOUNT.login not in json.dumps(manifest)


def test_another_zone_over_the_same_data_dir_is_refused_at_load_and_nothing_changes(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        before = hashes(p.data_dir)
        requests = len(p.sim.requests)
        with pytest.raises(SMSCConfigError) as caught:
            build_in(p, tmp_path, "UTC")
        after = hashes(p.data_dir)
        assert len(p.sim.requests) == requests
    assert str(caught.value) == (
        "timezone is 'UTC' but the days stored in <data_dir> were filed in 'Asia/Almaty': re-reading a day in "
        "another zone would store its messages twice. Keep timezone='Asia/Almaty', or point data_dir at a new "
        "directory for 'UTC' (and re-run the backfill there)."
    )
    assert after == before and any(k.endswith("data.parquet") for k in before)


def test_a_zone_change_after_load_is_refused_before_the_runs_first_request(tmp_path, clock):
    """Definitions loaded before the store had a manifest (a long-running code server) are stopped by the
    run itself, before the balance request."""
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        utc = build_in(p, tmp_path, "UTC")  # an empty data_dir: loads
        assert p.run(*DAYS).success
        before, requests = hashes(p.data_dir), len(p.sim.requests)
        result = run(utc, p, "2026-10-02")
        after = hashes(p.data_dir)
        spent = p.sim.requests[requests:]
    assert "SMSCConfigError: timezone is 'UTC' but the days stored in <data_dir> were filed in 'Asia/Almaty'" in (
        failure_text(result)
    )
    assert spent == [] and after == before


def test_the_same_zone_still_loads_and_runs(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        again = build_in(p, tmp_path, "Asia/Almaty")
        assert run(again, p, "2026-10-02").success
        (count, distinct) = p.sql("SELECT count(*), count(DISTINCT int_id) FROM smsc.sms_history")[0]
    assert count == distinct > 0


# -- a store written by the previous version: partitions, but no manifest --------------------------------


def test_a_legacy_store_without_manifest_is_checked_from_its_rows_at_load(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        (p.data_dir / "_smsc_store.json").unlink()
        before, requests = hashes(p.data_dir), len(p.sim.requests)
        with pytest.raises(SMSCConfigError) as caught:
            build_in(p, tmp_path, "UTC")
        after = hashes(p.data_dir)
        assert len(p.sim.requests) == requests
    message = str(caught.value)
    misdated = re.fullmatch(
        r"timezone is 'UTC' but the days stored in <data_dir> were filed in 'Asia/Almaty' \(or another zone at "
        + re.escape(almaty_offset())
        + r"\): (\d+) of the (\d+) rows of sms_history 2026-10-03 fall on another local day in 'UTC'\. \(This "
        r"store has no _smsc_store\.json: an earlier version wrote it\.\) Re-reading a day in another zone would "
        r"store its messages twice\. Keep timezone='Asia/Almaty', or point data_dir at a new directory for 'UTC' "
        r"\(and re-run the backfill there\)\.",
        message,
    )
    assert misdated, message
    rows = p_rows(tmp_path)
    assert int(misdated[2]) == len(rows) and int(misdated[1]) == sum(
        r["sent_at"].date() != r["date"] for r in rows
    ) > 0
    assert after == before


def test_a_legacy_store_is_refused_before_the_runs_first_request(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        utc = build_in(p, tmp_path, "UTC")
        assert p.run(*DAYS).success
        (p.data_dir / "_smsc_store.json").unlink()
        before, requests = hashes(p.data_dir), len(p.sim.requests)
        result = run(utc, p, "2026-10-02")
        after, spent = hashes(p.data_dir), p.sim.requests[requests:]
    assert "SMSCConfigError: timezone is 'UTC' but the days stored in <data_dir> were filed in 'Asia/Almaty' (or " in (
        failure_text(result)
    )
    assert spent == [] and after == before


def test_a_legacy_store_in_the_same_zone_loads_and_gets_its_manifest_on_the_next_run(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        manifest = p.data_dir / "_smsc_store.json"
        written = json.loads(manifest.read_text())
        manifest.unlink()
        again = build_in(p, tmp_path, "Asia/Almaty")  # the rows agree with the zone: loads
        assert not manifest.exists()  # loading writes nothing
        assert run(again, p, "2026-10-02").success
        assert json.loads(manifest.read_text()) == written
        with pytest.raises(SMSCConfigError, match=r"were filed in 'Asia/Almaty'"):
            build_in(p, tmp_path, "UTC")


def test_a_legacy_store_whose_newest_day_is_empty_is_judged_by_the_day_before(tmp_path, clock):
    with pipeline(tmp_path, ACCOUNT, clock=clock) as p:
        assert p.run(*DAYS).success
        (p.data_dir / "_smsc_store.json").unlink()
        store = Layout(p.data_dir).store("sms")
        newest = store.path(dt.date(2026, 10, 3))
        table = store.read(dt.date(2026, 10, 3))
        pq.write_table(table.slice(0, 0), newest)
        with pytest.raises(SMSCConfigError, match=r"rows of sms_history 2026-10-02 fall on another local day"):
            build_in(p, tmp_path, "UTC")
