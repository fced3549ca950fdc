"""Storage: the data contract, the layout of one account's data, the partitions, and the warehouse that
owns every SQL string. No Dagster here; it builds on :mod:`smsc_dagster.core` only."""

from smsc_dagster.storage.contract import (
    DELIVERY_COLUMNS as DELIVERY_COLUMNS,
    HISTORY_COLUMNS as HISTORY_COLUMNS,
    HISTORY_SCHEMA as HISTORY_SCHEMA,
    REQUIRED_COLUMNS as REQUIRED_COLUMNS,
    Column as Column,
    RowContractError as RowContractError,
    duckdb_type as duckdb_type,
    rollup_columns as rollup_columns,
    rows_to_table as rows_to_table,
)
from smsc_dagster.storage.layout import (
    UNION_SCHEMA as UNION_SCHEMA,
    Layout as Layout,
    check_account as check_account,
)
from smsc_dagster.storage.partitions import (
    PAGING_COMPLETE as PAGING_COMPLETE,
    DayStats as DayStats,
    PartitionStore as PartitionStore,
    Settlement as Settlement,
    StagedIngest as StagedIngest,
    file_metadata as file_metadata,
)
from smsc_dagster.storage.privacy import (
    Privacy as Privacy,
    PrivacyFilter as PrivacyFilter,
    mask_address as mask_address,
    mask_table as mask_table,
    mask_text as mask_text,
)
from smsc_dagster.storage.warehouse import (
    ROLLUPS as ROLLUPS,
    HistoryQueries as HistoryQueries,
    Warehouse as Warehouse,
    WarehouseLockedError as WarehouseLockedError,
    by_copies as by_copies,
    connect as connect,
)
from smsc_dagster.storage.filesystem import RemotePath as RemotePath, store_root as store_root
from smsc_dagster.storage.codes import (
    CODES_COLUMNS as CODES_COLUMNS,
    CODES_TABLE as CODES_TABLE,
    codes_table as codes_table,
)
from smsc_dagster.storage.marts import (
    DAILY_MARTS as DAILY_MARTS,
    FAILURE_REASONS_TABLE as FAILURE_REASONS_TABLE,
    LATENCY_TABLE as LATENCY_TABLE,
    MART_COLUMNS as MART_COLUMNS,
    SENDER_DAILY_TABLE as SENDER_DAILY_TABLE,
    SENDER_TOTALS_TABLE as SENDER_TOTALS_TABLE,
    Marts as Marts,
)
