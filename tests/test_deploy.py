"""The deployment files in ``deploy/`` agree with what the code reads (docker itself is not needed):

* ``docker-compose.yaml`` has the webserver, the daemon, Postgres, the S3-compatible store and the code
  location; every ``SMSC_*`` variable it sets is one the package reads, the required ones are set, and the
  code location loads from exactly that environment (its store pointed at the test's S3 server);
* the daemon's run launcher passes every variable a run needs into the run containers;
* ``dagster.yaml`` (storage, run queue, pools) makes a working instance on a real PostgreSQL server;
* ``workspace.yaml`` points at the code service's gRPC port; the Helm values name the same variables.
"""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psycopg2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
SMSC_SERVICES = ("code", "webserver", "daemon")
# The AWS variables the store is reached with (smsc_dagster.storage.filesystem).
AWS_VARS = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}
COMPOSE_VALUES = {"POSTGRES_PASSWORD": "pg-test-password", "SMSC_LOGIN": "shop", "SMSC_PASSWORD": "secret-pw",
                  "MINIO_PASSWORD": "minio-test-password"}


def package_variables() -> set[str]:
    """Every SMSC_* name the package's source mentions in a string."""
    names: set[str] = set()
    for path in (ROOT / "smsc_dagster").rglob("*.py"):
        if "testing" in path.parts:
            continue
        names |= set(re.findall(r"[\"'](SMSC_[A-Z_]+)[\"']", path.read_text()))
    return names


def substituted(value: str) -> str:
    """Compose's ``${VAR}`` / ``${VAR:?message}`` interpolation with the test's values."""
    return re.sub(r"\$\{([A-Z_]+)(:\?[^}]*)?\}", lambda m: COMPOSE_VALUES[m.group(1)], value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())


def smsc_env(compose: dict) -> dict[str, str]:
    envs = [compose["services"][s]["environment"] for s in SMSC_SERVICES]
    assert all(env == envs[0] for env in envs)  # one environment for the code, webserver and daemon
    return {k: substituted(str(v)) for k, v in envs[0].items()}


def test_compose_has_the_services_and_only_variables_the_code_reads(compose):
    services = compose["services"]
    assert {"postgres", "minio", "code", "webserver", "daemon"} <= set(services)
    env = smsc_env(compose)
    read = package_variables()
    unknown = sorted(k for k in env if k.startswith("SMSC_") and k not in read)
    assert unknown == []
    assert not [k for k in env if k.startswith("AWS_") and k not in AWS_VARS]
    # What a production location must set, and where it points.
    assert env["SMSC_DATA_DIR"].startswith("s3://")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", env["SMSC_START_DATE"])
    budget = urllib.parse.urlsplit(env["SMSC_BUDGET_URL"])
    assert budget.scheme == "postgresql" and budget.hostname == "postgres" and budget.hostname in services
    assert urllib.parse.urlsplit(env["AWS_ENDPOINT_URL"]).hostname == "minio"
    instance_db = urllib.parse.urlsplit(env["DAGSTER_POSTGRES_URL"])
    assert instance_db.scheme == "postgresql+psycopg2" and instance_db.hostname in services
    assert {"SMSC_LOGIN", "SMSC_PASSWORD"} <= set(env) or "SMSC_API_KEY" in env
    # Secrets are interpolated from the environment of `docker compose`, never written in the file.
    raw = (DEPLOY / "docker-compose.yaml").read_text()
    for name in ("SMSC_PASSWORD", "POSTGRES_PASSWORD", "MINIO_PASSWORD"):
        assert re.search(rf"{name}: \$\{{{name}:\?", raw) or f"${{{name}}}" in raw, name
    # The code service serves the location the workspace names.
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    command = services["code"]["command"]
    assert workspace["host"] == "code" and str(workspace["port"]) == command[command.index("-p") + 1]
    assert command[command.index("-m") + 1] == "smsc_dagster.definitions"


def test_run_containers_get_every_variable_a_run_needs(compose):
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    launcher = instance["run_launcher"]
    assert launcher["class"] == "DockerRunLauncher"
    passed = set(launcher["config"]["env_vars"])
    env = smsc_env(compose)
    needed = {k for k in env if k.startswith(("SMSC_", "AWS_", "DAGSTER_POSTGRES_"))}
    assert "DAGSTER_POSTGRES_URL" in needed
    assert sorted(needed - passed) == []
    assert launcher["config"]["image"] == {"env": "DAGSTER_RUN_IMAGE"} and "DAGSTER_RUN_IMAGE" in env
    assert launcher["config"]["network"] in compose["networks"]
    assert compose["networks"][launcher["config"]["network"]]["name"] == launcher["config"]["network"]


def test_the_code_location_loads_from_the_compose_environment(compose, s3_env, tmp_path):
    env = smsc_env(compose)
    bucket = s3_env.new_bucket()
    # The same settings, with the store and the API pointed at this machine's test servers.
    env.update(s3_env.env())
    env["SMSC_DATA_DIR"] = env["SMSC_DATA_DIR"].replace("s3://smsc-data/", f"s3://{bucket}/")
    code = (
        "from smsc_dagster.definitions import definitions_from_env\n"
        "defs = definitions_from_env()\n"
        "print(sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith('__')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin", **env, "DAGSTER_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    account = env["SMSC_ACCOUNT"]
    assert proc.stdout.strip() == str(sorted(f"smsc_{account}_{j}" for j in ("audit", "refresh", "rollups")))


def test_dagster_yaml_makes_a_working_instance_on_postgres(postgres_url, tmp_path, monkeypatch):
    import dagster as dg

    name = "dagster_deploy_check"
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.cursor().execute(f"CREATE DATABASE {name}")
    monkeypatch.setenv(
        "DAGSTER_POSTGRES_URL",
        postgres_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1) + "/" + name,
    )
    config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    # dagster-docker is not installed here (the image installs it): everything but the launcher is checked.
    config.pop("run_launcher")
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    try:
        with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
            assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4
            assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
            assert instance.get_runs() == []
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_helm_values_name_the_same_settings(compose):
    values = yaml.safe_load((DEPLOY / "helm-values.yaml").read_text())
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "smsc_dagster.definitions"]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    read = package_variables()
    assert sorted(k for k in env if k.startswith("SMSC_") and k not in read) == []
    assert env["SMSC_DATA_DIR"].startswith("s3://") and "SMSC_START_DATE" in env
    # Credentials and the budget URL come from Kubernetes secrets, never from the values file.
    assert not {"SMSC_LOGIN", "SMSC_PASSWORD", "SMSC_API_KEY", "SMSC_BUDGET_URL"} & set(env)
    secrets = {s["name"] for s in deployment["envSecrets"]}
    assert secrets == {s["name"] for s in values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["concurrency"]["pools"]["defaultLimit"] == 1
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
