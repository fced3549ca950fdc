"""SMSC.kz message history as Dagster assets: Parquet partitions and DuckDB delivery tables.

The package is built in three layers: :mod:`smsc_dagster.core` (the SMSC API without Dagster),
:mod:`smsc_dagster.storage` (the data contract, layout, partitions and warehouse) and
:mod:`smsc_dagster.orchestration` (the Dagster resource, translator, assets, checks, automation, IO manager,
component and builder).

Example:
    .. code-block:: python

        import dagster as dg
        from smsc_dagster import SMSCResource, build_smsc_definitions

        defs = build_smsc_definitions(
            account="acme",
            start_date="2026-01-01",
            data_dir="data",
            resource=SMSCResource(api_key=dg.EnvVar("SMSC_API_KEY")),
        )
"""

from smsc_dagster.core import (
    Channel as Channel,
    HistoryPage as HistoryPage,
    RequestBudget as RequestBudget,
    SMSCAuthError as SMSCAuthError,
    SMSCBlockedError as SMSCBlockedError,
    SMSCBudgetError as SMSCBudgetError,
    SMSCClient as SMSCClient,
    SMSCConfigError as SMSCConfigError,
    SMSCDataError as SMSCDataError,
    SMSCError as SMSCError,
    SMSCParameterError as SMSCParameterError,
    SMSCRateLimitError as SMSCRateLimitError,
    SMSCResponseError as SMSCResponseError,
    SMSCUnavailableError as SMSCUnavailableError,
)
from smsc_dagster.orchestration import (
    AccountNames as AccountNames,
    SMSCAccountComponent as SMSCAccountComponent,
    SMSCResource as SMSCResource,
    SMSCTableProps as SMSCTableProps,
    SMSCTablesIOManager as SMSCTablesIOManager,
    SMSCTranslator as SMSCTranslator,
    build_smsc_definitions as build_smsc_definitions,
)
from smsc_dagster.storage import (
    Layout as Layout,
    Privacy as Privacy,
    Warehouse as Warehouse,
    WarehouseLockedError as WarehouseLockedError,
    connect as connect,
)

__all__ = [
    "AccountNames",
    "SMSCAccountComponent",
    "Channel",
    "HistoryPage",
    "Layout",
    "Privacy",
    "RequestBudget",
    "SMSCAuthError",
    "SMSCBlockedError",
    "SMSCBudgetError",
    "SMSCClient",
    "SMSCConfigError",
    "SMSCDataError",
    "SMSCError",
    "SMSCParameterError",
    "SMSCRateLimitError",
    "SMSCResource",
    "SMSCResponseError",
    "SMSCTableProps",
    "SMSCTablesIOManager",
    "SMSCTranslator",
    "SMSCUnavailableError",
    "Warehouse",
    "WarehouseLockedError",
    "build_smsc_definitions",
    "connect",
]
