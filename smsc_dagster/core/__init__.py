"""The core: SMSC's API without Dagster — client, request budget, response parsing, errors, clocks, dates.

Nothing here imports Dagster or the storage layer; anyone can use :class:`SMSCClient` on its own.
"""

from smsc_dagster.core.budget import (
    RequestBudget as RequestBudget,
    account_key as account_key,
    is_budget_url as is_budget_url,
    ledger_url as ledger_url,
)
from smsc_dagster.core.channels import (
    CHANNELS as CHANNELS,
    Channel as Channel,
    get_channel as get_channel,
    parse_channels as parse_channels,
)
from smsc_dagster.core.client import (
    HistoryPage as HistoryPage,
    SMSCClient as SMSCClient,
    credentials_problem as credentials_problem,
    validate_base_url as validate_base_url,
)
from smsc_dagster.core.clock import Clock as Clock, FakeClock as FakeClock, clock_from_env as clock_from_env
from smsc_dagster.core.dates import (
    api_dates as api_dates,
    check_timezone as check_timezone,
    day_bounds as day_bounds,
    days_between as days_between,
    parse_date as parse_date,
)
from smsc_dagster.core.errors import (
    SMSCAuthError as SMSCAuthError,
    SMSCBlockedError as SMSCBlockedError,
    SMSCBudgetError as SMSCBudgetError,
    SMSCConfigError as SMSCConfigError,
    SMSCDataError as SMSCDataError,
    SMSCError as SMSCError,
    SMSCParameterError as SMSCParameterError,
    SMSCRateLimitError as SMSCRateLimitError,
    SMSCResponseError as SMSCResponseError,
    SMSCUnavailableError as SMSCUnavailableError,
)
from smsc_dagster.core.response import (
    HISTORY_FIELDS as HISTORY_FIELDS,
    RawRows as RawRows,
    digit_ints as digit_ints,
    parse_history_body as parse_history_body,
)
