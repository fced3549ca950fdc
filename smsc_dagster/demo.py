"""The demo behind ``make demo``: the whole pipeline on the built-in simulator, into a real Dagster instance.

It configures the same environment variables ``dagster dev`` reads, so the runs and materializations it makes
are the ones the UI shows afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from .testing import SimulatedAccount, SMSCSimulator
from .storage import Warehouse


def run_demo(*, days: int = 14, seed: int = 42, data_dir: str | None = None) -> int:
    """Materialize the last ``days`` partitions and the delivery tables from a simulated account; print the
    delivery-by-operator table. Returns a process exit code."""
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set: run `make demo`, or `DAGSTER_HOME=$PWD/dagster_home smsc-dagster demo`.")
        return 2
    data_dir = str(Path(data_dir or os.environ.get("SMSC_DATA_DIR") or "data").resolve())
    instance = dg.DagsterInstance.get()
    account = SimulatedAccount(seed=seed)
    with SMSCSimulator(account) as sim:
        os.environ.update(
            {
                "SMSC_LOGIN": account.login,  # the simulator's demo account, not a real credential
                "SMSC_PASSWORD": account.password,
                "SMSC_BASE_URL": sim.base_url,
                "SMSC_DATA_DIR": data_dir,
            }
        )
        os.environ.setdefault("SMSC_START_DATE", (dt.date.today() - dt.timedelta(days=90)).isoformat())
        os.environ.pop("SMSC_API_KEY", None)
        from .definitions import definitions_from_env

        defs = definitions_from_env()
        refresh = defs.resolve_job_def("smsc_refresh")
        keys = refresh.partitions_def.get_partition_keys()[-days:]
        print(f"SMSC simulator on {sim.base_url}; materializing {keys[0]} .. {keys[-1]} into {instance.root_directory}")
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = refresh.execute_in_process(
            run_config=quiet,
            instance=instance,
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        )
        if not result.success:
            return 1
        if not defs.resolve_job_def("smsc_rollups").execute_in_process(run_config=quiet, instance=instance).success:
            return 1
        requests = len(sim.history_requests())
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
    print(f"{rows} messages over {len(keys)} days, read with {requests} history requests")
    print("Delivery by operator (smsc.delivery_by_operator):")
    print(table.to_string(index=False))
    print()
    print(f"Parquet:  {data_dir}/sms_history/date=YYYY-MM-DD/data.parquet")
    print(f"DuckDB:   {warehouse.path}  (schema smsc: sms_history, delivery_daily, delivery_by_operator, delivery_by_country)")
    print("UI:       DAGSTER_HOME=$PWD/dagster_home .venv/bin/dagster dev   (then open http://127.0.0.1:3000)")
    return 0
