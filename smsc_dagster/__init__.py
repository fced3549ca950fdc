"""SMSC.kz message history as Dagster assets: Parquet partitions and DuckDB delivery tables.

Example:
    .. code-block:: python

        import dagster as dg
        from smsc_dagster import SMSCResource, build_smsc_definitions

        defs = build_smsc_definitions(
            start_date="2026-01-01",
            data_dir="data",
            resource=SMSCResource(api_key=dg.EnvVar("SMSC_API_KEY")),
        )
"""

from smsc_dagster.budget import RequestBudget as RequestBudget
from smsc_dagster.client import HistoryPage as HistoryPage, SMSCClient as SMSCClient
from smsc_dagster.errors import (
    SMSCAuthError as SMSCAuthError,
    SMSCBlockedError as SMSCBlockedError,
    SMSCBudgetError as SMSCBudgetError,
    SMSCError as SMSCError,
    SMSCParameterError as SMSCParameterError,
    SMSCRateLimitError as SMSCRateLimitError,
    SMSCResponseError as SMSCResponseError,
    SMSCUnavailableError as SMSCUnavailableError,
)
from smsc_dagster.pipeline import build_smsc_definitions as build_smsc_definitions
from smsc_dagster.resource import SMSCResource as SMSCResource

__all__ = [
    "HistoryPage",
    "RequestBudget",
    "SMSCAuthError",
    "SMSCBlockedError",
    "SMSCBudgetError",
    "SMSCClient",
    "SMSCError",
    "SMSCParameterError",
    "SMSCRateLimitError",
    "SMSCResource",
    "SMSCResponseError",
    "SMSCUnavailableError",
    "build_smsc_definitions",
]
