"""Personal data (issue 8, item 4): nothing personal in Dagster's event log by default, and a ``privacy``
setting (keep / keyed hash / drop) for what the tables store of recipients and texts."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster._serdes import serialize_value

from smsc_dagster import Privacy, SMSCAccountComponent, SMSCConfigError, build_smsc_definitions
from smsc_dagster.storage import HISTORY_COLUMNS, file_metadata, mask_address, mask_text
from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import pipeline

DAY = "2026-10-05"
KEY = "correct horse battery staple 42"
DESCRIPTIONS = {c.name: c.description for c in HISTORY_COLUMNS}


def event_log_text(instance: dg.DagsterInstance) -> str:
    """Every event of every run on ``instance`` (materializations and their metadata, logs, failures), as
    one text with non-ASCII characters as themselves (JSON would escape a Cyrillic text out of a search)."""
    events = [entry for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    assert events
    return "\n".join(json.dumps(json.loads(serialize_value(e)), ensure_ascii=False) for e in events)


def files_bytes(*roots: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for root in roots for p in root.rglob("*") if p.is_file()}


def stored_text(data_dir: Path) -> str:
    """Every value of every Parquet file under ``data_dir``, decoded (compression hides bytes from a scan)."""
    tables = [pq.read_table(p).to_pylist() for p in data_dir.rglob("*.parquet")]
    assert tables
    return json.dumps(tables, ensure_ascii=False, default=str)


def partition_metadata(instance: dg.DagsterInstance, table: str = "sms_history") -> dict[str, dict]:
    """The latest materialization metadata of each partition of ``table``."""
    key = dg.AssetKey(["smsc", table])
    records = instance.fetch_materializations(key, limit=1000).records
    out: dict[str, dict] = {}
    for record in sorted(records, key=lambda r: r.storage_id):
        materialization = record.asset_materialization
        out[materialization.partition] = materialization.metadata
    return out


def with_privacy(p, privacy, channels=("sms",)) -> None:
    """Rebuild the pipeline's Definitions (same simulator, instance and data_dir) with ``privacy``."""
    p.defs = build_smsc_definitions(
        start_date="2026-09-01",
        timezone=p.timezone,
        data_dir=str(p.data_dir),
        channels=channels,
        resource=dict(p.defs.resources)["smsc"],
        privacy=privacy,
    )


# -- (a) the default: tables keep everything, metadata is masked ----------------------------------------


def test_masking_helpers_show_only_the_ends():
    assert mask_address("77011234567") == "7701***4567"
    assert mask_address("998901234567") == "9989***4567"
    assert mask_address("ivan.petrov123@mail.ru") == "i***@mail.ru"
    assert mask_address("1234") == "***"
    assert mask_address(None) is None
    assert mask_text("Ваш код подтверждения: 123456") == "Ваш…"
    assert mask_text("Да") == "…"


def test_default_run_keeps_the_tables_but_the_event_log_holds_no_phone_or_text(tmp_path, clock):
    account = SimulatedAccount(seed=81, messages_per_day=60, emails_per_day=20)
    with pipeline(tmp_path, account, clock=clock, channels=("sms", "email")) as p:
        result = p.run(DAY)
        sms_truth, email_truth = p.truth(DAY), p.truth(DAY, "email")
        sms_stored, email_stored = p.partition(DAY), p.partition(DAY, "email_history")
        log = event_log_text(p.instance)
        sms_meta = partition_metadata(p.instance)[DAY]
        email_meta = partition_metadata(p.instance, "email_history")[DAY]
        home_files = files_bytes(tmp_path / "dagster_home")
        sms_file_meta = file_metadata(p.data_dir / "sms_history" / f"date={DAY}" / "data.parquet")
    assert result.success
    assert sms_truth and email_truth

    # The tables keep what SMSC sent (privacy: keep).
    assert [(r["phone"], r["message"]) for r in sms_stored] == [(r["phone"], r["message"]) for r in sms_truth]
    assert [(r["phone"], r["message"]) for r in email_stored] == [(r["phone"], r["message"]) for r in email_truth]
    assert sms_file_meta["privacy"] == {"phone": "keep", "message": "keep"}

    # The preview of a partition: the five newest rows, each recipient masked to its ends.
    def expected_preview(stored: list[dict]) -> str:
        frame = pd.DataFrame(stored[:5])[["int_id", "sent_at", "phone", "operator", "status_name", "cost"]]
        return frame.assign(phone=[masked(v) for v in frame["phone"]]).to_markdown(index=False)

    def masked(address: str) -> str:
        if "@" in address:
            return address[0] + "***@" + address.split("@")[1]
        return address[:4] + "***" + address[-4:]

    assert sms_meta["preview"].value == expected_preview(sms_stored)
    assert email_meta["preview"].value == expected_preview(email_stored)
    newest = sms_stored[0]
    line = next(row for row in sms_meta["preview"].value.splitlines() if f"| {newest['int_id']} |" in row)
    assert f"| {newest['phone'][:4]}***{newest['phone'][-4:]} |" in line and newest["phone"] not in line

    # Nowhere in any event of any run, nor in the instance's files: no number, no address, no text.
    people = [r["phone"] for r in sms_truth + email_truth]
    texts = {r["message"] for r in sms_truth + email_truth}
    assert [a for a in people if a in log] == []
    assert [t for t in texts if t in log] == []
    leaked = {
        str(path.relative_to(tmp_path)): a
        for path, data in home_files.items()
        for a in people
        if a.encode() in data or json.dumps(a).encode() in data
    }
    assert leaked == {}


# -- (b) hash and drop ------------------------------------------------------------------------------------


def test_hashed_phones_and_dropped_texts_are_stored_and_described(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("SMSC_PRIVACY_KEY", KEY)
    account = SimulatedAccount(seed=82, messages_per_day=80)
    with pipeline(tmp_path, account, clock=clock) as p:
        with_privacy(p, {"phone": "hash", "message": "drop"})
        first = p.run(DAY)
        once = p.partition(DAY)
        second = p.run(DAY)
        twice = p.partition(DAY)
        truth = p.truth(DAY)
        in_duckdb = p.sql("SELECT int_id, phone, message FROM smsc.sms_history ORDER BY int_id DESC")
        spec = next(iter(p.defs.get_assets_def(dg.AssetKey(["smsc", "sms_history"])).specs))
        preview = partition_metadata(p.instance)[DAY]["preview"].value
        log = event_log_text(p.instance)
        data_files = files_bytes(p.data_dir)
        home_files = files_bytes(tmp_path / "dagster_home")
        everything_stored = stored_text(p.data_dir)
        meta = file_metadata(p.data_dir / "sms_history" / f"date={DAY}" / "data.parquet")
    assert first.success and second.success
    key = KEY.encode()
    expected = [(r["int_id"], hmac.new(key, r["phone"].encode(), hashlib.sha256).hexdigest()) for r in truth]

    # Stored: every phone its HMAC-SHA256 hex under the key, every text NULL; the same in both runs.
    assert [(int(i), phone) for i, phone in expected] == [(r["int_id"], r["phone"]) for r in once]
    assert [r["phone"] for r in twice] == [r["phone"] for r in once]
    assert {r["message"] for r in once + twice} == {None}
    assert {r["crc"] for r in once + twice} == {None}  # the checksum of the text goes with it
    assert in_duckdb == [(int(i), phone, None) for i, phone in expected]
    assert meta["privacy"]["phone"] == "hash" and meta["privacy"]["message"] == "drop"
    assert len(meta["privacy"]["key_id"]) == 16 and KEY not in json.dumps(meta)

    # The column schema says how the columns are stored.
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["phone"] == (
        DESCRIPTIONS["phone"] + " Stored as keyed SHA-256 (HMAC) hex (privacy: hash, key from $SMSC_PRIVACY_KEY); "
        "NULL stays NULL."
    )
    assert columns["crc"].endswith("Not stored while the message is not kept (a checksum of the text): always NULL.")
    assert columns["message"] == DESCRIPTIONS["message"] + " Not stored (privacy: drop): always NULL."
    assert columns["operator"] == DESCRIPTIONS["operator"]

    # The preview masks the digests too.
    digest = dict(expected)[truth[0]["int_id"]]
    assert f"| {digest[:4]}***{digest[-4:]} |" in preview and digest not in preview

    # No raw number, no text and no key anywhere: data files (raw bytes and decoded values), instance, log.
    phones = [r["phone"] for r in truth]
    texts = {r["message"] for r in truth}
    assert [a for a in phones if a in everything_stored] == []
    assert [t for t in texts if t in everything_stored] == []
    files = {**data_files, **home_files}
    assert [str(p) for p, data in files.items() if any(a.encode() in data for a in phones)] == []
    assert [str(p) for p, data in files.items() if key in data] == []
    assert KEY not in log and [a for a in phones if a in log] == []


def test_the_component_and_the_environment_set_privacy(tmp_path, monkeypatch):
    component = SMSCAccountComponent.resolve_from_yaml(
        f"""
        account: acme
        api_key_env: ACME_SMSC_API_KEY
        start_date: "2026-09-01"
        data_dir: {tmp_path / "data"}
        privacy: {{phone: hash, message: drop}}
        """
    )
    defs = component.build_defs(None)
    spec = next(iter(defs.get_assets_def(dg.AssetKey(["smsc", "acme", "sms_history"])).specs))
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["message"] == DESCRIPTIONS["message"] + " Not stored (privacy: drop): always NULL."
    assert "keyed SHA-256 (HMAC) hex" in columns["phone"]

    location = env_location(tmp_path, monkeypatch)
    monkeypatch.setenv("SMSC_PRIVACY_MESSAGE", "drop")
    spec = next(iter(location.definitions_from_env().get_assets_def(dg.AssetKey(["smsc", "sms_history"])).specs))
    columns = {c.name: c.description for c in spec.metadata["dagster/column_schema"].columns}
    assert columns["message"] == DESCRIPTIONS["message"] + " Not stored (privacy: drop): always NULL."
    assert columns["phone"] == DESCRIPTIONS["phone"]


# -- (c) settings that cannot work --------------------------------------------------------------------------


def env_location(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("SMSC_"):
            monkeypatch.delenv(name)
    (tmp_path / "dagster_home").mkdir(exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("SMSC_START_DATE", "2026-09-01")
    monkeypatch.setenv("SMSC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SMSC_API_KEY", "k")
    return importlib.import_module("smsc_dagster.definitions")


@pytest.mark.parametrize(
    "privacy, message",
    [
        ({"phone": "x"}, "privacy.phone must be keep, hash or drop, got 'x'"),
        ({"message": "encrypt"}, "privacy.message must be keep, hash or drop, got 'encrypt'"),
        ({"phone": 1}, "privacy.phone must be keep, hash or drop, got 1"),
        ({"phone": None}, "privacy.phone must be keep, hash or drop, got None"),
        ({"phones": "hash"}, "privacy.phones is not a setting: give phone, message and/or key_env"),
        ({"phone": "hash", "key_env": "my key"}, "privacy.key_env must be the name of an environment variable"),
        ("hash", "privacy must be a Privacy or a mapping such as {'phone': 'hash', 'message': 'drop'}, got str"),
    ],
)
def test_bad_privacy_settings_name_the_setting(tmp_path, privacy, message):
    with pytest.raises(SMSCConfigError) as caught:
        build_smsc_definitions(start_date="2026-09-01", data_dir=str(tmp_path / "data"), privacy=privacy)
    assert str(caught.value).startswith(message), str(caught.value)


def test_bad_privacy_in_yaml_or_environment_names_it(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"privacy\.message must be keep, hash or drop, got 'blur'"):
        SMSCAccountComponent.resolve_from_yaml(
            'account: acme\napi_key_env: ACME_SMSC_API_KEY\nstart_date: "2026-09-01"\nprivacy: {message: blur}\n'
        )
    location = env_location(tmp_path, monkeypatch)
    monkeypatch.setenv("SMSC_PRIVACY_PHONE", "mask")
    with pytest.raises(SMSCConfigError) as caught:
        location.definitions_from_env()
    assert str(caught.value) == "SMSC_PRIVACY_PHONE must be keep, hash or drop, got 'mask'"


@pytest.mark.parametrize("value", [None, "", "too-short"])
def test_hash_without_a_usable_key_fails_the_run_before_any_request(tmp_path, clock, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SMSC_PRIVACY_KEY", raising=False)
    else:
        monkeypatch.setenv("SMSC_PRIVACY_KEY", value)
    account = SimulatedAccount(seed=83, messages_per_day=20)
    with pipeline(tmp_path, account, clock=clock) as p:
        with_privacy(p, Privacy(phone="hash"))  # loads: the key is read when a run starts
        result = p.run(DAY, raise_on_error=False)
        requests = list(p.sim.requests)
        failures = result.get_step_failure_events()
    assert not result.success
    assert requests == []
    error = failures[0].step_failure_data.error
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    text = "\n".join(messages)
    if value == "too-short":
        assert "SMSCConfigError: the environment variable SMSC_PRIVACY_KEY (the HMAC key for privacy.phone) holds 9 characters; use a secret of at least 16" in text
    else:
        assert (
            "SMSCConfigError: privacy.phone is hash but the environment variable SMSC_PRIVACY_KEY (the HMAC key) is "
            "not set: set it to a secret of at least 16 characters" in text
        )
    assert not (p.data_dir / "sms_history").exists()


def test_privacy_filter_keeps_rows_schema_and_nulls():
    import pyarrow as pa

    from smsc_dagster.storage import HISTORY_SCHEMA

    table = pa.Table.from_pylist(
        [{"int_id": 1, "phone": "77011234567", "message": "Тест"}, {"int_id": 2, "phone": None, "message": "x"}],
        schema=HISTORY_SCHEMA,
    )
    out = Privacy(phone="hash", message="hash").resolve({"SMSC_PRIVACY_KEY": KEY}).apply(table)
    assert out.schema.equals(HISTORY_SCHEMA) and out.num_rows == 2
    assert out["phone"].to_pylist() == [hmac.new(KEY.encode(), b"77011234567", hashlib.sha256).hexdigest(), None]
    assert out["message"].to_pylist() == [
        hmac.new(KEY.encode(), "Тест".encode(), hashlib.sha256).hexdigest(),
        hmac.new(KEY.encode(), b"x", hashlib.sha256).hexdigest(),
    ]
    dropped = Privacy(message="drop").resolve({}).apply(table)
    assert dropped["message"].to_pylist() == [None, None] and dropped["phone"] == table["phone"]
    assert KEY not in repr(Privacy(phone="hash").resolve({"SMSC_PRIVACY_KEY": KEY}))
