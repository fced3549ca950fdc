"""``smsc-dagster dev`` (``make dev``): the Dagster UI on the demo's account, in one command.

It serves the demo's simulated account (same seed, login and start date as ``make demo``) on wall-clock time with
SMSC's real limits, and runs ``dagster dev`` as a child process with the ``SMSC_*`` environment pointing at it, so
a backfill launched from the UI reads that history. It prints the UI's address once the webserver has loaded the
code location. Ctrl-C (or SIGTERM) stops the UI and then the simulator.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from .demo import (
    DEFINITIONS_MODULE,
    DEMO_SEED,
    DEMO_SIM_PORT,
    LOCATION_NAME,
    SIM_HOST,
    apply_demo_environment,
    demo_account,
    demo_environment,
    resolve_data_dir,
)
from .testing import SMSCSimulator

WORKSPACE_YAML = f"""\
# Written by `smsc-dagster dev`: the package's code location, as in the repository's workspace.yaml.
load_from:
  - python_module:
      module_name: {DEFINITIONS_MODULE}
      location_name: {LOCATION_NAME}
"""
_LOCATION_QUERY = (
    "{ workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus "
    "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
)
_QUIET_SUPERSEDED = "ignore:Function `dev_command` is superseded"
# How long dagster dev gets to stop by itself (it stops its webserver and daemon) before it is killed.
STOP_TIMEOUT_S = 60.0


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _get(url: str, *, data: bytes | None = None, timeout: float = 5.0) -> bytes:
    headers = {"Content-Type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
        return response.read()


def location_status(ui_url: str) -> tuple[str | None, str | None]:
    """``(loadStatus, load error message)`` of the ``smsc_dagster`` location as the webserver reports it
    (a read-only GraphQL query); ``(None, None)`` while the webserver does not answer."""
    try:
        body = _get(f"{ui_url}/graphql", data=json.dumps({"query": _LOCATION_QUERY}).encode())
    except (OSError, urllib.error.URLError):
        return None, None
    workspace = json.loads(body).get("data", {}).get("workspaceOrError", {})
    for entry in workspace.get("locationEntries", []):
        if entry.get("name") == LOCATION_NAME:
            located = entry.get("locationOrLoadError") or {}
            error = located.get("message") if located.get("__typename") == "PythonError" else None
            return entry.get("loadStatus"), error
    return None, None


def wait_until_ready(ui_url: str, child: subprocess.Popen, timeout_s: float) -> str | None:
    """Wait (bounded) until the webserver answers and has loaded the code location. Returns None when ready,
    else why not."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return f"dagster dev exited with code {child.returncode} before the UI was up"
        status, error = location_status(ui_url)
        if status == "LOADED":
            return f"the {LOCATION_NAME} code location failed to load: {error}" if error else None
        time.sleep(0.5)
    return f"the UI did not come up within {timeout_s:.0f} s"


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: have the kernel send dagster dev SIGTERM (which it treats as Ctrl-C) if this process dies."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _load_prctl()  # resolved before any fork: the child only calls it


def stop_child(child: subprocess.Popen, shutdown_fd: int) -> int:
    """Ask dagster dev to stop (its shutdown pipe, once), wait for it, and kill its process group if it hangs."""
    from dagster_shared.ipc import send_ipc_shutdown_message

    try:
        if child.poll() is None:
            send_ipc_shutdown_message(shutdown_fd)  # closes it
        else:
            os.close(shutdown_fd)
    except OSError:
        pass
    try:
        return child.wait(timeout=STOP_TIMEOUT_S)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        print("dagster dev did not stop (in time, or a second interrupt): killing it", flush=True)
        try:
            os.killpg(child.pid, signal.SIGKILL)  # its own session: dagster dev, webserver, daemon, code servers
        except ProcessLookupError:
            pass
        return child.wait()


def run_dev(
    *,
    port: int = 3000,
    host: str = "127.0.0.1",
    sim_port: int = DEMO_SIM_PORT,
    seed: int = DEMO_SEED,
    data_dir: str | None = None,
    workspace: str | None = None,
    ready_timeout_s: float = 300.0,
) -> int:
    """Serve the demo account and the Dagster UI until interrupted. Returns a process exit code."""
    dagster_home = os.environ.get("DAGSTER_HOME")
    if not dagster_home:
        print("DAGSTER_HOME is not set: run `make dev`, or `DAGSTER_HOME=$PWD/dagster_home smsc-dagster dev`.")
        return 2
    if not port_is_free(host, port):
        print(f"port {port} on {host} is in use (another `dagster dev`?): pass --port N, or `make dev PORT=N`.")
        return 2
    if sim_port and not port_is_free(SIM_HOST, sim_port):
        print(f"the demo simulator's port {sim_port} is in use (another `smsc-dagster dev`?): stop it, or pass "
              "--sim-port N to both `smsc-dagster demo` and `smsc-dagster dev` (the store remembers the address).")
        return 2
    data_dir = resolve_data_dir(data_dir)
    account = demo_account(seed)

    # SIGTERM and SIGHUP stop everything as Ctrl-C does.
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with (
            SMSCSimulator(account, host=SIM_HOST, port=sim_port) as sim,
            tempfile.TemporaryDirectory(prefix="smsc-dev-") as tmp,
        ):
            env = dict(os.environ)
            apply_demo_environment(demo_environment(account, sim.base_url, data_dir), env)
            # `dagster dev` warns that `dg dev` supersedes it; dg is only in the dev extra, dagster dev is here.
            env["PYTHONWARNINGS"] = ",".join(filter(None, (env.get("PYTHONWARNINGS"), _QUIET_SUPERSEDED)))
            if workspace is None and Path("workspace.yaml").is_file():
                workspace = "workspace.yaml"
            if workspace is None:
                workspace = str(Path(tmp, "workspace.yaml"))
                Path(workspace).write_text(WORKSPACE_YAML)
            print(f"SMSC simulator on {sim.base_url}: the demo's account (seed {seed}, login {account.login}), "
                  "with SMSC's limits of 30 history requests an hour", flush=True)
            print(f"Starting dagster dev (DAGSTER_HOME={dagster_home}, data in {data_dir}) ...", flush=True)
            return _serve_ui(env, workspace, host, port, ready_timeout_s)
    except KeyboardInterrupt:  # before dagster dev started, or after it stopped
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("Simulator stopped.", flush=True)


def _serve_ui(env: dict[str, str], workspace: str, host: str, port: int, ready_timeout_s: float) -> int:
    """Run ``dagster dev`` until it exits or this process is interrupted; stop it in either case."""
    from dagster_shared.ipc import get_ipc_shutdown_pipe

    ui_url = f"http://{host}:{port}"
    read_fd, shutdown_fd = get_ipc_shutdown_pipe()
    command = [
        sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", host, "-p", str(port),
        "--shutdown-pipe", str(read_fd),
    ]
    # Its own session: a terminal's Ctrl-C reaches only this process, which stops dagster dev once, through
    # its shutdown pipe (a second interrupt would cut dagster dev's own shutdown of its webserver short).
    child = subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, pass_fds=[read_fd], start_new_session=True,
        preexec_fn=_die_with_parent if _PRCTL is not None else None,
    )
    os.close(read_fd)
    try:
        problem = wait_until_ready(ui_url, child, ready_timeout_s)
        if problem is not None:
            print(problem, flush=True)
            stop_child(child, shutdown_fd)
            return 1
        print(flush=True)
        print(f"Dagster UI: {ui_url}   (Ctrl-C stops the UI and the simulator)", flush=True)
        print(f"  the history asset, to materialize a few days: {ui_url}/assets/smsc/sms_history", flush=True)
        print(flush=True)
        code = child.wait()
        print(f"dagster dev exited with code {code}", flush=True)
        stop_child(child, shutdown_fd)
        return code
    except KeyboardInterrupt:
        print("\nStopping dagster dev ...", flush=True)
        stop_child(child, shutdown_fd)
        return 0
