"""Loading the stored tables as asset values, so downstream assets and notebooks can ask Dagster for them.

The assets write their own storage (atomic Parquet partitions, DuckDB tables) and return no value; this IO
manager only *loads*: ``defs.load_asset_value(["smsc", "sms_history"], partition_key="2026-11-20")`` returns
that day as a pandas DataFrame, and a downstream asset that takes ``sms_history`` as input receives the
partitions of its run.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd
import pyarrow as pa
from pydantic import Field

from smsc_dagster.core import CHANNELS
from smsc_dagster.storage import HISTORY_SCHEMA, Layout, Warehouse

_HISTORY_TABLES = {c.table: c for c in CHANNELS.values()}


class SMSCTablesIOManager(dg.ConfigurableIOManager):
    """Reads the history partitions and the delivery tables of one account's :class:`Layout`."""

    data_dir: str = Field(description="The pipeline's data directory (Parquet partitions, warehouse.duckdb).")
    account: str | None = Field(
        default=None, description="The account's short name, or None for the single, unnamed account."
    )

    @classmethod
    def for_layout(cls, layout: Layout) -> SMSCTablesIOManager:
        return cls(data_dir=str(layout.data_dir), account=layout.account)

    @property
    def layout(self) -> Layout:
        return Layout(self.data_dir, self.account)

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is not None:
            raise dg.DagsterInvariantViolationError(
                f"{context.asset_key.to_user_string()} stores its own data; it should not return a value"
            )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        table = context.upstream_output.definition_metadata.get("smsc/table") if context.upstream_output else None
        table = table or context.asset_key.path[-1]
        days = (
            [dt.date.fromisoformat(k) for k in context.asset_partition_keys] if context.has_asset_partitions else None
        )
        layout = self.layout
        if table in _HISTORY_TABLES:
            store = layout.store(_HISTORY_TABLES[table])
            wanted = store.days() if days is None else days
            missing = [d.isoformat() for d in wanted if not store.path(d).exists()]
            if missing:
                raise FileNotFoundError(f"{table} has no stored partition for {', '.join(missing[:5])}")
            tables = [store.read(d) for d in wanted]
            return (pa.concat_tables(tables) if tables else HISTORY_SCHEMA.empty_table()).to_pandas()
        warehouse = Warehouse(layout)
        with warehouse.connect(read_only=True) as conn:
            return warehouse.read_table(conn, table, days)
