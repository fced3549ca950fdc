"""The YAML component through ``dg``, in a project laid out as ``dg`` expects, with two accounts of one
simulated host: scaffold, check, list, launch a partition, and no secret in the snapshot or the instance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import local_day_span

BIN = Path(sys.executable).parent
ACME = SimulatedAccount(seed=61, login="acme-login", password="Acme&Secret=9 x%", messages_per_day=200)
GLOBEX = SimulatedAccount(seed=62, login="globex-login", password="Globex&Secret=7 y%", messages_per_day=150)

PYPROJECT = """\
[project]
name = "agency"
version = "0.1.0"
requires-python = ">=3.10"

[tool.dg]
directory_type = "project"

[tool.dg.project]
root_module = "agency"
"""
DEFINITIONS = """\
from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""


def dg_cmd(project: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dg"), *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "agency"
    (root / "agency" / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "agency" / "__init__.py").write_text("")
    (root / "agency" / "defs" / "__init__.py").write_text("")
    (root / "agency" / "definitions.py").write_text(DEFINITIONS)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMSC_", "ACME_", "GLOBEX_"))}
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(root),
        DAGSTER_HOME=str(home),
        ACME_SMSC_LOGIN=ACME.login,
        ACME_SMSC_PASSWORD=ACME.password,
        GLOBEX_SMSC_LOGIN=GLOBEX.login,
        GLOBEX_SMSC_PASSWORD=GLOBEX.password,
        NO_COLOR="1",
        COLUMNS="200",
    )
    return root, env, tmp_path


def test_two_accounts_in_yaml_scaffold_check_list_and_materialize(project, clock):
    root, env, tmp_path = project
    with SMSCSimulator(ACME, accounts=[GLOBEX], clock=clock) as sim:
        for name in ("acme", "globex"):
            done = dg_cmd(root, env, "scaffold", "defs", "smsc_dagster.SMSCAccountComponent", name)
            assert done.returncode == 0, done.stderr
            path = root / "agency" / "defs" / name / "defs.yaml"
            scaffolded = yaml.safe_load(path.read_text())
            assert scaffolded["type"] == "smsc_dagster.SMSCAccountComponent"
            assert scaffolded["attributes"]["account"] == name
            # point the scaffolded account at the simulator, credentials by variable name
            attributes = scaffolded["attributes"]
            attributes.pop("api_key_env")
            attributes.update(
                login_env=f"{name.upper()}_SMSC_LOGIN",
                password_env=f"{name.upper()}_SMSC_PASSWORD",
                base_url=sim.base_url,
                api_timezone="Europe/Moscow",
                start_date="2026-09-01",
                data_dir=str(tmp_path / "data"),
                budget_path=str(tmp_path / "budget.sqlite3"),
            )
            path.write_text(yaml.safe_dump(scaffolded, sort_keys=False))

        check = dg_cmd(root, env, "check", "defs")
        assert check.returncode == 0, check.stdout + check.stderr
        listed = dg_cmd(root, env, "list", "defs", "--json")
        assert listed.returncode == 0, listed.stderr
        defs = json.loads(listed.stdout)
        keys = sorted(a["asset_key"] for a in defs["assets"])
        assert keys == sorted(
            f"smsc/{n}/{t}"
            for n in ("acme", "globex")
            for t in ("sms_history", "delivery_daily", "delivery_by_operator", "delivery_by_country",
                      "delivery_latency", "failure_reasons", "delivery_by_sender_daily", "delivery_by_sender",
                      "smsc_codes")
        )
        assert sorted(j["name"] for j in defs["jobs"]) == [
            "smsc_acme_audit", "smsc_acme_refresh", "smsc_acme_rollups",
            "smsc_globex_audit", "smsc_globex_refresh", "smsc_globex_rollups",
        ]

        launched = dg_cmd(root, env, "launch", "--job", "smsc_globex_refresh", "--partition", "2026-10-02")
        assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
        requests = sim.history_requests()
        truth = sim.expected_rows(*local_day_span("2026-10-02", "Asia/Almaty"), account=GLOBEX)

    stored = pq.read_table(tmp_path / "data" / "globex" / "sms_history" / "date=2026-10-02" / "data.parquet")
    assert sorted(stored["int_id"].to_pylist()) == sorted(int(r["int_id"]) for r in truth)
    assert {r.account for r in requests} == {GLOBEX.login}
    assert not (tmp_path / "data" / "acme").exists()

    # No form of either password in the listing, the snapshot Dagster serves, the instance, or the data.
    snapshot = subprocess.run(
        [sys.executable, "-c", SNAPSHOT], cwd=root, env=env, capture_output=True, text=True, timeout=300
    )
    assert snapshot.returncode == 0, snapshot.stderr
    assert "smsc_globex" in snapshot.stdout and "GLOBEX_SMSC_PASSWORD" in snapshot.stdout
    texts = [listed.stdout, launched.stdout, launched.stderr, check.stdout, snapshot.stdout]
    files = [f for f in tmp_path.rglob("*") if f.is_file() and f.suffix not in (".py", ".toml", ".yaml")]
    for password in (ACME.password, GLOBEX.password):
        for text in texts:
            assert password not in text
        for f in files:
            assert password.encode() not in f.read_bytes(), f


# The code location's snapshot, as the webserver receives it from the code server.
SNAPSHOT = """
import dagster as dg
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from agency.definitions import defs
repo = defs().get_repository_def()
print(serialize_value(RepositorySnap.from_def(repo)))
"""


def test_a_secret_value_where_a_variable_name_belongs_is_refused(tmp_path):
    from smsc_dagster import SMSCAccountComponent

    with pytest.raises(Exception, match=r"\*name\* of an environment variable"):
        SMSCAccountComponent(account="acme", start_date="2026-09-01", api_key_env="s3cr3t-key-value")
    with pytest.raises(Exception) as refused:
        SMSCAccountComponent(account="acme", start_date="2026-09-01", password_env="Pa55-w0rd value", login_env="ACME")
    assert "Pa55-w0rd" not in str(refused.value)  # pydantic must not echo the value into the error
    with pytest.raises(Exception, match="credentials missing"):
        SMSCAccountComponent(account="acme", start_date="2026-09-01")
