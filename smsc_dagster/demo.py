"""The demo behind ``make demo``: the whole pipeline on the built-in simulator, into a real Dagster instance.

It configures the same environment variables ``dagster dev`` reads, and creates its run against the code
location the UI loads (``workspace.yaml``: module ``smsc_dagster.definitions``, location ``smsc_dagster``), so
the run and its materializations show on the UI's Overview, Jobs and asset pages afterwards, linked to the job.
``smsc-dagster dev`` (:mod:`smsc_dagster.dev`) serves the same simulated account, so a backfill launched from the
UI reads the same history.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg

from .storage import Warehouse
from .testing import SimulatedAccount, SMSCSimulator

if TYPE_CHECKING:
    from dagster._core.remote_representation.code_location import CodeLocation
    from dagster._core.remote_representation.external import RemoteRepository

DEMO_SEED = 42
# The demo account's first partition: a constant, so the demo and `smsc-dagster dev` (started at any later time)
# describe the same partitions, and the first one never moves (the reason SMSC_START_DATE is required).
DEMO_START_DATE = "2026-09-01"
# Where `smsc-dagster demo` and `smsc-dagster dev` serve the simulator. One address for both: the store records the
# account it was read from as host (with port) plus login, and refuses another, so dev must serve the demo's
# account at the demo's address for a UI backfill to add to the demo's data.
DEMO_SIM_PORT = 8766
SIM_HOST = "127.0.0.1"
DEFINITIONS_MODULE = "smsc_dagster.definitions"
LOCATION_NAME = "smsc_dagster"  # workspace.yaml's location_name, and [tool.dagster] code_location_name
REFRESH_JOB = "smsc_refresh"
# Variables the demo environment sets (SMSC_API_KEY is removed: the demo account signs in with login/password).
DEMO_ENV_VARS = ("SMSC_LOGIN", "SMSC_PASSWORD", "SMSC_BASE_URL", "SMSC_DATA_DIR", "SMSC_START_DATE")


def demo_account(seed: int = DEMO_SEED) -> SimulatedAccount:
    """The simulated account the demo and ``smsc-dagster dev`` serve."""
    return SimulatedAccount(seed=seed)


def resolve_data_dir(data_dir: str | None) -> str:
    """The demo's data directory: ``data_dir``, else ``SMSC_DATA_DIR``, else ``./data``, as an absolute path."""
    return str(Path(data_dir or os.environ.get("SMSC_DATA_DIR") or "data").resolve())


def demo_environment(account: SimulatedAccount, base_url: str, data_dir: str) -> dict[str, str]:
    """The ``SMSC_*`` variables that point the code location at a simulator serving ``account``."""
    return {
        "SMSC_LOGIN": account.login,  # the simulator's demo account, not a real credential
        "SMSC_PASSWORD": account.password,
        "SMSC_BASE_URL": base_url,
        "SMSC_DATA_DIR": data_dir,
        "SMSC_START_DATE": DEMO_START_DATE,
    }


def apply_demo_environment(env: Mapping[str, str], target: dict[str, str] | None = None) -> None:
    """Write ``env`` into ``target`` (default ``os.environ``) and drop ``SMSC_API_KEY``, which would win over
    the login."""
    target = os.environ if target is None else target  # type: ignore[assignment]
    target.update(env)
    target.pop("SMSC_API_KEY", None)


def serves_account(base_url: str, account: SimulatedAccount) -> bool:
    """Whether ``base_url`` answers the account's balance request, i.e. is a simulator serving ``account``."""
    query = urllib.parse.urlencode({"login": account.login, "psw": account.password, "fmt": 3})
    try:
        with urllib.request.urlopen(f"{base_url}/sys/balance.php?{query}", timeout=5) as response:  # noqa: S310
            return "balance" in json.loads(response.read())
    except (OSError, ValueError):
        return False


class SimulatorPortInUse(RuntimeError):
    """The demo's simulator port is taken by something that is not a simulator of the demo account."""


@contextmanager
def demo_simulator(account: SimulatedAccount, port: int) -> Iterator[tuple[str, SMSCSimulator | None]]:
    """``(base_url, simulator)``: a wall-clock simulator of ``account`` on ``port`` (0: a free one) for the
    block; or, when ``port`` is taken by a simulator already serving the account (a running ``smsc-dagster
    dev``), that one's address and None."""
    sim = SMSCSimulator(account, host=SIM_HOST, port=port)
    try:
        sim.start()
    except OSError as exc:
        base_url = f"http://{SIM_HOST}:{port}"
        if port and serves_account(base_url, account):
            print(f"Using the simulator already serving the demo account on {base_url} (`smsc-dagster dev`).")
            yield base_url, None
            return
        raise SimulatorPortInUse(
            f"the demo simulator's port {port} is in use ({exc.strerror}): stop what holds it, or pass --sim-port N "
            "to both `smsc-dagster demo` and `smsc-dagster dev` (the store remembers the simulator's address)"
        ) from None
    try:
        yield sim.base_url, sim
    finally:
        sim.stop()


@contextmanager
def code_location(instance: dg.DagsterInstance) -> Iterator[tuple[CodeLocation, RemoteRepository]]:
    """The ``smsc_dagster`` code location as ``dagster dev`` loads it (a code server for the module, started
    with this process's environment), and its one repository."""
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster.version import __version__

    target = ModuleTarget(
        module_name=DEFINITIONS_MODULE, attribute=None, working_directory=None, location_name=LOCATION_NAME
    )
    with WorkspaceProcessContext(
        instance, target, version=__version__, read_only=False, code_server_log_level="warning"
    ) as process_context:
        workspace = process_context.create_request_context()
        error = workspace.get_code_location_error(LOCATION_NAME)
        if error is not None:
            raise RuntimeError(f"the {LOCATION_NAME} code location did not load:\n{error.to_string()}")
        location = workspace.get_code_location(LOCATION_NAME)
        (repository,) = location.get_repositories().values()
        yield location, repository


def create_located_run(
    instance: dg.DagsterInstance,
    location: CodeLocation,
    repository: RemoteRepository,
    job_name: str,
    *,
    run_config: Mapping[str, object],
    tags: Mapping[str, str],
) -> dg.DagsterRun:
    """A run of ``job_name`` created against the code location, as ``dagster job launch`` and the UI create
    theirs: with the job's snapshot, execution plan and remote origin, so the UI links it to the job."""
    from dagster._core.definitions.selector import JobSubsetSelector

    selector = JobSubsetSelector(
        location_name=location.name, repository_name=repository.name, job_name=job_name, op_selection=None
    )
    remote_job = location.get_job(selector)
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
    ).execution_plan_snapshot
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.tags, **tags},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


def run_demo(*, days: int = 14, seed: int = DEMO_SEED, data_dir: str | None = None, sim_port: int = 0) -> int:
    """Materialize the last ``days`` partitions and the delivery tables from a simulated account, in one run of
    ``smsc_refresh`` (which rebuilds the rollups itself); print the delivery-by-operator table. Returns a process
    exit code.

    ``sim_port`` 0 serves the simulator on a free port; ``smsc-dagster demo`` passes :data:`DEMO_SIM_PORT`, where
    ``smsc-dagster dev`` serves the same account afterwards (a store accepts only the address it was read from).
    """
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: run `make demo`, or `DAGSTER_HOME=$PWD/dagster_home smsc-dagster demo`.")
        return 2
    data_dir = resolve_data_dir(data_dir)
    instance = dg.DagsterInstance.get()
    account = demo_account(seed)
    try:
        with demo_simulator(account, sim_port) as (base_url, sim):
            apply_demo_environment(demo_environment(account, base_url, data_dir))
            run, days_read = _materialize(instance, base_url, days)
            if run.status != dg.DagsterRunStatus.SUCCESS:
                print(f"run {run.run_id} failed: see it in the UI (`make dev`), DAGSTER_HOME={instance.root_directory}")
                return 1
            requests = f"{len(sim.history_requests())} history requests" if sim is not None else "the running simulator"
    except SimulatorPortInUse as exc:
        print(exc)
        return 2
    _report(data_dir, run, days_read, requests)
    return 0


def _materialize(instance: dg.DagsterInstance, base_url: str, days: int) -> tuple[dg.DagsterRun, int]:
    """One run of ``smsc_refresh`` over the last ``days`` partitions, created against the code location and
    executed in this process. Returns the finished run and the number of days."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    from .definitions import definitions_from_env

    defs = definitions_from_env()  # built now, from the environment just set
    refresh = defs.resolve_job_def(REFRESH_JOB)
    keys = refresh.partitions_def.get_partition_keys()[-days:]
    print(f"SMSC simulator on {base_url}; materializing {keys[0]} .. {keys[-1]} into {instance.root_directory}")
    # In this process (the run is small); console logs at WARNING keep the demo's output readable.
    run_config = {
        "execution": {"config": {"in_process": {}}},
        "loggers": {"console": {"config": {"log_level": "WARNING"}}},
    }
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    with code_location(instance) as (location, repository):
        run = create_located_run(instance, location, repository, REFRESH_JOB, run_config=run_config, tags=tags)
    # The code location supplied the run's snapshot and origin; the steps run here, with the definitions built
    # above from the same module and environment.
    execute_run(InMemoryJob(refresh), run, instance)
    return instance.get_run_by_id(run.run_id), len(keys)


def _report(data_dir: str, run: dg.DagsterRun, days: int, requests: str) -> None:
    warehouse = Warehouse(data_dir)
    with warehouse.connect(read_only=True) as conn:
        (rows,) = conn.execute("SELECT count(*) FROM smsc.sms_history").fetchone()
        table = conn.execute(
            """
            SELECT country, operator, messages, delivered, failed, pending,
                   round(delivery_rate * 100, 1) AS "delivery_%", round(settled_delivery_rate * 100, 1) AS "settled_%",
                   cost, currency, cost_per_delivered
            FROM smsc.delivery_by_operator ORDER BY messages DESC
            """
        ).df()
    print()
    print(f"{rows} messages over {days} days, read with {requests} (run {run.run_id})")
    print("Delivery by operator (smsc.delivery_by_operator):")
    print(table.to_string(index=False))
    print()
    print(f"Parquet:  {data_dir}/sms_history/date=YYYY-MM-DD/data.parquet")
    print(f"DuckDB:   {warehouse.path}  (schema smsc: sms_history, delivery_daily, delivery_by_operator, ...)")
    print("UI:       make dev   (the Dagster UI on this instance and the demo's account, at http://127.0.0.1:3000)")
