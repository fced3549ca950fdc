"""`make demo` and `make dev`: the demo's run is linked to the code location the UI loads, builds the rollups
once, and `smsc-dagster dev` serves the UI and the same simulated account until interrupted.

The demo runs once per module (a temporary DAGSTER_HOME and data directory, the simulator on a free port); the
dev test starts `smsc-dagster dev` against that instance as a user would after `make demo`. Waits are bounded
and poll for readiness: no fixed sleeps.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest

from smsc_dagster.cli import main
from smsc_dagster.core.budget import account_key
from smsc_dagster.demo import (
    DEMO_ENV_VARS,
    DEMO_SEED,
    DEMO_START_DATE,
    LOCATION_NAME,
    SimulatorPortInUse,
    demo_account,
    demo_simulator,
    run_demo,
    serves_account,
)
from smsc_dagster.storage.layout import login_identity
from smsc_dagster.testing import SMSCSimulator

ROOT = Path(__file__).resolve().parents[1]
DAYS = 3
# Generous bounds on a loaded 2-core machine; each is a deadline on a readiness poll, not a sleep.
DEV_READY_S = 240.0
DEV_STOP_S = 120.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """One demo run into a fresh instance: ``(dagster_home, data_dir, sim_port, printed output)``."""
    tmp = tmp_path_factory.mktemp("demo")
    home, data_dir = tmp / "dagster_home", tmp / "data"
    home.mkdir()
    shutil.copy(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")  # the real run queue and pools
    sim_port = _free_port()
    with pytest.MonkeyPatch.context() as mp:
        for name in (*DEMO_ENV_VARS, "SMSC_API_KEY"):
            mp.setenv(name, "restored-after-the-demo")  # so that each is put back afterwards
        mp.delenv("SMSC_API_KEY")
        for name in ("SMSC_ACCOUNT", "SMSC_CHANNELS", "SMSC_BUDGET_PATH", "SMSC_CLOCK_SPEED", "SMSC_CLOCK_ORIGIN"):
            mp.delenv(name, raising=False)
        mp.setenv("DAGSTER_HOME", str(home))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = run_demo(days=DAYS, data_dir=str(data_dir), sim_port=sim_port)
        assert code == 0, out.getvalue()
        assert os.environ["SMSC_START_DATE"] == DEMO_START_DATE
    yield home, data_dir, sim_port, out.getvalue()


def test_demo_run_is_linked_to_the_code_location_and_builds_the_rollups_once(demo) -> None:
    home, _, _, output = demo
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1, [r.job_name for r in runs]  # one run: the refresh job rebuilds the rollups itself
        (run,) = runs
        assert run.job_name == "smsc_refresh" and run.status == dg.DagsterRunStatus.SUCCESS
        origin = run.remote_job_origin
        assert origin is not None, "the run was created without the code location: the UI cannot link it"
        assert origin.repository_origin.code_location_origin.location_name == LOCATION_NAME
        assert origin.repository_origin.repository_name == "__repository__"
        assert origin.job_name == "smsc_refresh"
        assert run.job_code_origin is not None
        assert run.run_id in output

        records = instance.get_records_for_run(
            run_id=run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=10_000
        ).records
        built = Counter(r.event_log_entry.dagster_event.asset_key.to_user_string() for r in records)
        assert built["smsc/sms_history"] == DAYS and built["smsc/delivery_daily"] == DAYS, built
        assert built["smsc/delivery_by_operator"] == 1 and built["smsc/delivery_by_country"] == 1, built


def test_demo_reuses_a_running_simulator_of_its_account_and_refuses_a_foreign_port() -> None:
    account = demo_account()
    with SMSCSimulator(account) as sim:  # as `smsc-dagster dev` leaves one running
        with demo_simulator(account, sim.port) as (base_url, own):
            assert base_url == sim.base_url and own is None
    with socket.socket() as holder:  # something else on the port
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        with pytest.raises(SimulatorPortInUse, match="--sim-port"):
            with demo_simulator(account, holder.getsockname()[1]):
                pass


def test_dev_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["dev", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--port", "--sim-port", "--data-dir", "--timeout"):
        assert option in text


def test_dev_serves_the_ui_and_the_demo_account_until_interrupted(demo, tmp_path: Path) -> None:
    home, data_dir, sim_port, _ = demo
    ui_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSC_")}
    env["DAGSTER_HOME"] = str(home)
    # From a folder without workspace.yaml: dev writes the package's own location (same name) for dagster dev.
    proc = subprocess.Popen(
        [sys.executable, "-m", "smsc_dagster.cli", "dev", "--port", str(ui_port), "--sim-port", str(sim_port),
         "--data-dir", str(data_dir), "--timeout", str(DEV_READY_S)],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Dagster UI: "):
                ready.set()
        ready.set()  # EOF: it exited

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(DEV_READY_S + 30), "no output from smsc-dagster dev"
        assert proc.poll() is None, "".join(lines)
        url = f"http://127.0.0.1:{ui_port}"
        assert f"Dagster UI: {url}" in "".join(lines)

        with urllib.request.urlopen(f"{url}/server_info", timeout=30) as response:
            assert response.status == 200
        data = _graphql(
            url,
            "{ runsOrError { ... on Runs { results { jobName status repositoryOrigin { repositoryLocationName } } } } "
            'assetNodeOrError(assetKey: {path: ["smsc", "sms_history"]}) { ... on AssetNode { '
            "partitionKeysByDimension { partitionKeys } } } }",
        )
        (run,) = data["runsOrError"]["results"]  # the demo's run, linked to the location the UI loaded
        assert run["repositoryOrigin"]["repositoryLocationName"] == LOCATION_NAME
        assert run["jobName"] == "smsc_refresh" and run["status"] == "SUCCESS"
        (dimension,) = data["assetNodeOrError"]["partitionKeysByDimension"]
        assert dimension["partitionKeys"][0] == DEMO_START_DATE  # the demo's partitions, not moved

        # The demo's account, at the address the demo's store was read from (so a UI backfill may add to it).
        assert serves_account(f"http://127.0.0.1:{sim_port}", demo_account(DEMO_SEED))
        manifest = json.loads((data_dir / "_smsc_store.json").read_text())
        assert manifest["login_identity"] == login_identity(account_key(f"127.0.0.1:{sim_port}", login="demo"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(timeout=DEV_STOP_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail("smsc-dagster dev did not stop on SIGINT:\n" + "".join(lines))
        reader.join(timeout=10)
    assert code == 0, "".join(lines)
    # Both stopped: the UI's and the simulator's ports are free again (dagster dev waits for its webserver).
    deadline = time.monotonic() + 30
    while not (_port_free(ui_port) and _port_free(sim_port)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _port_free(ui_port) and _port_free(sim_port), "".join(lines)
    assert "Simulator stopped." in "".join(lines)
