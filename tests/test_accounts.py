"""Several SMSC accounts in one code location: three accounts of one simulated host (different logins),
one data_dir, one merged Definitions, real runs on a real instance."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import duckdb
import pytest

from smsc_dagster import (
    AccountNames,
    SMSCConfigError,
    SMSCResource,
    SMSCTranslator,
    build_smsc_definitions,
)
from smsc_dagster.core import RequestBudget
from smsc_dagster.storage import Layout
from smsc_dagster.testing import FaultPlan, SimulatedAccount, SMSCSimulator

from .pipeline_support import QUIET, local_day_span, range_tags

ACCOUNTS = {
    "acme": SimulatedAccount(seed=51, login="acme-login", password="acme-pass", messages_per_day=300),
    "globex": SimulatedAccount(seed=52, login="globex-login", password="globex-pass", messages_per_day=200),
    "initech": SimulatedAccount(seed=53, login="initech-login", password="initech-pass", messages_per_day=100),
}


def build(name: str, sim: SMSCSimulator, tmp_path, **kwargs) -> dg.Definitions:
    account = ACCOUNTS[name]
    resource = SMSCResource(
        login=account.login,
        password=account.password,
        base_url=sim.base_url,
        api_timezone=account.timezone,
        budget_path=str(tmp_path / "budget.sqlite3"),
        max_retries=kwargs.pop("max_retries", 5),
    )
    return build_smsc_definitions(
        account=name, start_date="2026-09-01", data_dir=str(tmp_path / "data"), resource=resource, **kwargs
    )


@pytest.fixture
def three(tmp_path, clock):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    first, *rest = ACCOUNTS.values()
    with SMSCSimulator(first, accounts=rest, clock=clock) as sim:
        defs = dg.Definitions.merge(*(build(name, sim, tmp_path) for name in ACCOUNTS))
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            yield sim, defs, instance


def run(defs, instance, name, first, last=None, **kwargs):
    job = defs.resolve_job_def(AccountNames(name).refresh_job)
    return job.execute_in_process(
        instance=instance, tags=range_tags(first, last or first), run_config=QUIET, **kwargs
    )


def test_names_derive_from_the_account_and_stay_as_before_without_one(tmp_path):
    acme = AccountNames("acme")
    assert (acme.resource_key, acme.io_manager_key, acme.api_pool, acme.group) == (
        "smsc_acme", "smsc_acme_io_manager", "smsc_api_acme", "smsc_acme"
    )
    assert (acme.refresh_job, acme.rollup_job, acme.schedule, acme.rollup_sensor) == (
        "smsc_acme_refresh", "smsc_acme_rollups", "smsc_acme_daily_refresh", "smsc_acme_rollups_after_refresh"
    )
    plain = AccountNames(None)
    assert (plain.resource_key, plain.io_manager_key, plain.api_pool, plain.refresh_job, plain.schedule) == (
        "smsc", "smsc_io_manager", "smsc_api", "smsc_refresh", "smsc_daily_refresh"
    )
    defs = build_smsc_definitions(account="acme", start_date="2026-09-01", data_dir=str(tmp_path), channels=("sms", "email"),
                                  resource=SMSCResource(api_key="k"))
    keys = sorted(k.to_user_string() for k in defs.resolve_all_asset_keys())
    assert keys == [
        "smsc/acme/delivery_by_country", "smsc/acme/delivery_by_operator", "smsc/acme/delivery_by_sender",
        "smsc/acme/delivery_by_sender_daily", "smsc/acme/delivery_daily", "smsc/acme/delivery_latency",
        "smsc/acme/email_history", "smsc/acme/failure_reasons", "smsc/acme/sms_history", "smsc/acme/smsc_codes",
    ]
    history = defs.resolve_assets_def(dg.AssetKey(["smsc", "acme", "sms_history"]))
    assert history.specs_by_key[history.key].group_name == "smsc_acme"
    assert next(iter(history.op.pool for _ in [0])) == "smsc_api_acme"
    assert history.required_resource_keys >= {"smsc_acme"}
    layout = Layout(tmp_path, "acme")
    assert layout.store("sms").root == tmp_path.resolve() / "acme" / "sms_history"
    assert layout.schema == "smsc_acme" and Layout(tmp_path).schema == "smsc"
    assert Layout(tmp_path).store("sms").root == tmp_path.resolve() / "sms_history"


@pytest.mark.parametrize("bad", ["Acme", "1acme", "ac-me", "", "acme!", "a" * 41])
def test_a_bad_account_name_is_refused_naming_the_pattern(tmp_path, bad):
    with pytest.raises(SMSCConfigError, match=r"account must be .*\[a-z\]\[a-z0-9_\]\*"):
        build_smsc_definitions(account=bad, start_date="2026-09-01", data_dir=str(tmp_path), resource=SMSCResource(api_key="k"))


def test_the_same_account_twice_in_one_code_location_is_a_clear_error(tmp_path):
    one = build_smsc_definitions(account="acme", start_date="2026-09-01", data_dir=str(tmp_path), resource=SMSCResource(api_key="k"))
    two = build_smsc_definitions(account="acme", start_date="2026-09-01", data_dir=str(tmp_path / "other"),
                                 key_prefix=["other"], resource=SMSCResource(api_key="k2"))
    with pytest.raises(Exception, match="smsc_acme"):
        dg.Definitions.validate_loadable(dg.Definitions.merge(one, two))


def test_three_accounts_on_one_host_stay_apart(three, tmp_path, clock):
    sim, defs, instance = three
    dg.Definitions.validate_loadable(defs)
    per_account_requests = {}
    for name in ACCOUNTS:
        before = len(sim.history_requests())
        assert run(defs, instance, name, "2026-10-01", "2026-10-03").success
        per_account_requests[name] = sim.history_requests()[before:]
    for name, account in ACCOUNTS.items():
        # every request of this account's run carried this account's login, and only it
        assert {r.account for r in per_account_requests[name]} == {account.login}
        for day in ("2026-10-01", "2026-10-02", "2026-10-03"):
            frame = defs.load_asset_value(["smsc", name, "sms_history"], partition_key=day, instance=instance)
            truth = sim.expected_rows(*local_day_span(day, "Asia/Almaty"), account=account)
            assert sorted(frame["int_id"].tolist()) == sorted(int(r["int_id"]) for r in truth), (name, day)
            assert sorted(frame["phone"].tolist()) == sorted(r["phone"] for r in truth), (name, day)
    # each account's budget is its own ledger key, holding exactly its own requests
    for name, account in ACCOUNTS.items():
        key = f"127.0.0.1:{sim.port}|login:{account.login}"
        budget = RequestBudget(tmp_path / "budget.sqlite3", key, clock=clock)
        assert budget.spent_last_hour() == len(per_account_requests[name]), name
    # one warehouse, one schema per account, and one place to compare them
    with duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"), read_only=True) as conn:
        compare = conn.execute(
            "SELECT account, sum(messages) FROM smsc_all.delivery_daily GROUP BY account ORDER BY account"
        ).fetchall()
        per_schema = {
            name: conn.execute(f"SELECT sum(messages) FROM smsc_{name}.delivery_daily").fetchone()[0] for name in ACCOUNTS
        }
        history = conn.execute("SELECT account, count(*) FROM smsc_all.sms_history GROUP BY ALL ORDER BY 1").fetchall()
    expected = {
        name: sum(len(sim.expected_rows(*local_day_span(d, "Asia/Almaty"), account=a))
                  for d in ("2026-10-01", "2026-10-02", "2026-10-03"))
        for name, a in ACCOUNTS.items()
    }
    assert compare == sorted(expected.items())
    assert per_schema == expected
    assert history == sorted(expected.items())
    # files sit in the account's own folder; nothing at the top level of data_dir but the accounts and warehouse
    data = tmp_path / "data"
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith("warehouse.duckdb")) == sorted(ACCOUNTS)
    manifest = json.loads((data / "acme" / "_smsc_store.json").read_text())
    assert manifest["account"] == "acme" and manifest["timezone"] == "Asia/Almaty"
    assert "acme-login" not in json.dumps(manifest) and "acme-pass" not in json.dumps(manifest)


def test_a_failed_run_of_one_account_is_never_resumed_by_another(three, tmp_path):
    sim, defs, instance = three
    sim.set_faults(FaultPlan(schedule={2: "error_4"}))
    failed = run(defs, instance, "acme", "2026-10-01", "2026-10-06", raise_on_error=False)
    assert not failed.success
    sim.set_faults(None)
    acme_state = list((tmp_path / "data" / "acme" / ".staging").rglob("state.jsonl"))
    assert len(acme_state) == 1
    before = len(sim.history_requests())
    assert run(defs, instance, "globex", "2026-10-01", "2026-10-06").success
    globex = sim.history_requests()[before:]
    # globex walked its own history from the start: its first request has no cursor
    assert "prev_id" not in globex[0].params and {r.account for r in globex} == {"globex-login"}
    assert acme_state[0].exists()  # acme's staging untouched, still waiting for acme's re-run


def test_staging_of_one_identity_is_not_resumed_under_another_login(tmp_path, clock):
    """Same account name, same data_dir, another SMSC login: refused before any request is spent."""
    first, second = ACCOUNTS["acme"], ACCOUNTS["globex"]
    home = tmp_path / "dagster_home"
    home.mkdir()
    with SMSCSimulator(first, accounts=[second], clock=clock) as sim, dg.DagsterInstance.local_temp(str(home)) as instance:
        defs = build("acme", sim, tmp_path)
        assert run(defs, instance, "acme", "2026-10-01").success
        impostor = SMSCResource(login=second.login, password=second.password, base_url=sim.base_url,
                                api_timezone=second.timezone, budget_path=str(tmp_path / "budget.sqlite3"))
        defs2 = build_smsc_definitions(account="acme", start_date="2026-09-01", data_dir=str(tmp_path / "data"), resource=impostor)
        before = len(sim.requests)
        result = run(defs2, instance, "acme", "2026-10-01", raise_on_error=False)
        assert not result.success
        error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
        assert "refusing to mix two SMSC accounts" in (error.cause.message if error.cause else error.message)
        assert len(sim.requests) == before  # not even the balance request


def test_a_translator_subclass_changes_specs_and_the_wiring_follows(tmp_path):
    class Team(SMSCTranslator):
        def get_asset_spec(self, props):
            spec = super().get_asset_spec(props)
            return spec.replace_attributes(
                key=dg.AssetKey(["messaging", props.account or "main", props.table]),
                group_name="messaging",
            ).merge_attributes(owners=["team:messaging"], tags={"tier": "gold"})

    defs = build_smsc_definitions(account="acme", start_date="2026-09-01", data_dir=str(tmp_path),
                                  resource=SMSCResource(api_key="k"), translator=Team())
    graph = defs.resolve_asset_graph()
    daily = dg.AssetKey(["messaging", "acme", "delivery_daily"])
    assert graph.get(daily).parent_keys == {dg.AssetKey(["messaging", "acme", "sms_history"])}
    assert graph.get(dg.AssetKey(["messaging", "acme", "delivery_by_operator"])).parent_keys == {daily}
    spec = defs.resolve_assets_def(daily).specs_by_key[daily]
    assert spec.owners == ["team:messaging"] and spec.tags["tier"] == "gold" and spec.group_name == "messaging"
    checks = {c.asset_key for c in defs.resolve_asset_graph().asset_check_keys}
    assert checks == {
        daily, dg.AssetKey(["messaging", "acme", "sms_history"]),
        dg.AssetKey(["messaging", "acme", "delivery_by_operator"]), dg.AssetKey(["messaging", "acme", "delivery_by_country"]),
    }
    reasons = dg.AssetKey(["messaging", "acme", "failure_reasons"])
    assert graph.get(reasons).parent_keys == {
        dg.AssetKey(["messaging", "acme", "sms_history"]), dg.AssetKey(["messaging", "acme", "smsc_codes"])
    }
