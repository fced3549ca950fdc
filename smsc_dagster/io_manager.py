"""Loading the stored tables as asset values, so downstream assets and notebooks can ask Dagster for them.

The assets write their own storage (atomic Parquet partitions, DuckDB tables) and return no value; this IO
manager only *loads*: ``defs.load_asset_value(["smsc", "sms_history"], partition_key="2026-11-20")`` returns
that day as a pandas DataFrame, and a downstream asset that takes ``sms_history`` as input receives the
partitions of its run.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from .schema import HISTORY_SCHEMA
from .storage import PartitionStore
from .warehouse import HISTORY_TABLES, SCHEMA, Warehouse

IO_MANAGER_KEY = "smsc_io_manager"


class SMSCTablesIOManager(dg.ConfigurableIOManager):
    """Reads the history partitions and the delivery tables of one ``data_dir``."""

    data_dir: str = Field(description="The pipeline's data directory (Parquet partitions, warehouse.duckdb).")

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()} stores its own data; it should not return a value"
            )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.asset_key.path[-1]
        days = (
            [dt.date.fromisoformat(k) for k in context.asset_partition_keys] if context.has_asset_partitions else None
        )
        if table in HISTORY_TABLES.values():
            store = PartitionStore(self.data_dir, table)
            wanted = store.days() if days is None else days
            missing = [d.isoformat() for d in wanted if not store.path(d).exists()]
            if missing:
                raise FileNotFoundError(f"{table} has no stored partition for {', '.join(missing[:5])}")
            tables = [pq.read_table(store.path(d), schema=HISTORY_SCHEMA) for d in wanted]
            return (pa.concat_tables(tables) if tables else HISTORY_SCHEMA.empty_table()).to_pandas()
        with Warehouse(self.data_dir).connect(read_only=True) as conn:
            if days is None:
                return conn.execute(f"SELECT * FROM {SCHEMA}.{table}").df()
            return conn.execute(
                f"SELECT * FROM {SCHEMA}.{table} WHERE date BETWEEN ? AND ? ORDER BY ALL", [min(days), max(days)]
            ).df()


def io_manager_for(data_dir: str | Path) -> SMSCTablesIOManager:
    return SMSCTablesIOManager(data_dir=str(data_dir))
