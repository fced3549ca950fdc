"""The Dagster layer: resource, translator, assets, checks, automation, IO manager, component and the
definitions builder. Built on the public surfaces of :mod:`smsc_dagster.storage` and :mod:`smsc_dagster.core`."""

from smsc_dagster.orchestration.automation import SCHEDULE_CRON as SCHEDULE_CRON
from smsc_dagster.orchestration.component import SMSCAccountComponent as SMSCAccountComponent
from smsc_dagster.orchestration.builder import build_smsc_definitions as build_smsc_definitions
from smsc_dagster.orchestration.io_manager import SMSCTablesIOManager as SMSCTablesIOManager
from smsc_dagster.orchestration.resource import SMSCResource as SMSCResource
from smsc_dagster.orchestration.translator import (
    AccountNames as AccountNames,
    SMSCTableProps as SMSCTableProps,
    SMSCTranslator as SMSCTranslator,
)
