"""How each stored table becomes a Dagster asset: the names an account gets, and a translator users
subclass to change asset specs (keys, group, owners, tags, kinds, automation conditions) without forking.

Example:
    .. code-block:: python

        import dagster as dg
        from smsc_dagster import SMSCTranslator, build_smsc_definitions

        class MyTranslator(SMSCTranslator):
            def get_asset_spec(self, props):
                spec = super().get_asset_spec(props)
                return spec.replace_attributes(owners=["team:messaging"], tags={"tier": "gold"})

        defs = build_smsc_definitions(start_date="2026-01-01", data_dir="data", translator=MyTranslator())
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg

from smsc_dagster.core import Channel
from smsc_dagster.storage import (
    CODES_COLUMNS,
    DELIVERY_COLUMNS,
    HISTORY_COLUMNS,
    MART_COLUMNS,
    Column,
    Layout,
    Privacy,
    duckdb_type,
    rollup_columns,
)

HISTORY = "history"
DELIVERY_DAILY = "delivery_daily"
ROLLUP = "rollup"
MART = "mart"  # a daily mart: delivery_latency, failure_reasons, delivery_by_sender_daily
MART_TOTAL = "mart_total"  # delivery_by_sender, over every day
REFERENCE = "reference"  # smsc_codes

_MART_DESCRIPTIONS = {
    "delivery_latency": (
        "Delivery latency per day, channel, country and operator: delivered messages, p50/p90/p95/max seconds "
        "from sent_at to status_changed_at (nearest-rank percentiles over status-1 deliveries), and the shares "
        "delivered within 10 s, 60 s and 5 min"
    ),
    "failure_reasons": (
        "Why messages fail, per day, channel, country, operator, status and err, with SMSC's English and "
        "Russian names of both codes from smsc_codes (an unknown code shows as 'unknown', never dropped)"
    ),
    "delivery_by_sender_daily": (
        "Delivery and cost per day, sender_id, channel and message type, with cost per SMS part beside cost per "
        "delivered message (per currency: no sum adds two)"
    ),
    "delivery_by_sender": (
        "Delivery and cost per sender_id, channel and message type over every loaded day, summed from "
        "delivery_by_sender_daily"
    ),
    "smsc_codes": (
        "Reference: SMSC's documented status and err codes with English and Russian names, status class and "
        "whether a status is final; join it to any table's status or err"
    ),
}


@dataclass(frozen=True)
class AccountNames:
    """Every Dagster name one account gets. Without an account they are the original single-account names
    (``smsc``, ``smsc_refresh``...), so an existing deployment keeps its history of runs and schedules."""

    account: str | None = None

    def _name(self, suffix: str) -> str:
        return f"smsc_{self.account}_{suffix}" if self.account else f"smsc_{suffix}"

    @property
    def resource_key(self) -> str:
        return f"smsc_{self.account}" if self.account else "smsc"

    @property
    def io_manager_key(self) -> str:
        return self._name("io_manager")

    @property
    def api_pool(self) -> str:
        """One pool per account: each account has its own 30 requests an hour."""
        return f"smsc_api_{self.account}" if self.account else "smsc_api"

    @property
    def duckdb_pool(self) -> str:
        """One pool for every writer of ``warehouse.duckdb`` (one file per ``data_dir``)."""
        return "smsc_duckdb"

    @property
    def group(self) -> str:
        return f"smsc_{self.account}" if self.account else "smsc"

    @property
    def refresh_job(self) -> str:
        return self._name("refresh")

    @property
    def rollup_job(self) -> str:
        return self._name("rollups")

    @property
    def audit_job(self) -> str:
        return self._name("audit")

    @property
    def schedule(self) -> str:
        return self._name("daily_refresh")

    @property
    def audit_schedule(self) -> str:
        return self._name("weekly_audit")

    @property
    def rollup_sensor(self) -> str:
        return self._name("rollups_after_refresh")


@dataclass(frozen=True)
class SMSCTableProps:
    """What the translator knows about one table.

    Attributes:
        table: the table's name (``sms_history``, ``delivery_daily``, ``delivery_by_operator``...).
        role: ``"history"``, ``"delivery_daily"`` or ``"rollup"``.
        account: the account's short name, or ``None``.
        key_prefix: the prefix given to the builder.
        layout: where the account's data lives.
        timezone: the partitions' zone.
        channel: the channel of a history table (``None`` for the delivery tables).
        deps: the keys this table is computed from (already translated).
        privacy: what a history table stores of recipients and texts (its column descriptions say so).
    """

    table: str
    role: str
    account: str | None
    key_prefix: tuple[str, ...]
    layout: Layout
    timezone: str
    channel: Channel | None = None
    deps: tuple[dg.AssetKey, ...] = field(default_factory=tuple)
    privacy: Privacy = field(default_factory=Privacy)

    @property
    def names(self) -> AccountNames:
        return AccountNames(self.account)


def column_schema(columns: Sequence[Column]) -> dg.TableSchema:
    """The ``dagster/column_schema`` the UI shows, from the data contract."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=duckdb_type(c.type),
                description=c.description,
                constraints=dg.TableColumnConstraints(nullable=not c.required, unique=c.name == "int_id"),
            )
            for c in columns
        ]
    )


class SMSCTranslator:
    """Turns an :class:`SMSCTableProps` into the :class:`dagster.AssetSpec` of that table.

    Subclass it and override :meth:`get_asset_spec` (calling ``super()``) to change keys, group, owners,
    tags, kinds or automation conditions; the builder wires dependencies, checks and jobs to whatever keys
    it returns.
    """

    def get_asset_key(self, props: SMSCTableProps) -> dg.AssetKey:
        account = [props.account] if props.account else []
        return dg.AssetKey([*props.key_prefix, *account, props.table])

    def get_asset_spec(self, props: SMSCTableProps) -> dg.AssetSpec:
        """The spec of one table. Keep ``partitions_def`` as given: the history and ``delivery_daily`` must
        share one daily partitioning."""
        return dg.AssetSpec(
            key=self.get_asset_key(props),
            deps=list(props.deps),
            description=self._description(props),
            group_name=props.names.group,
            kinds={"parquet"} if props.role == HISTORY else {"duckdb"},
            tags={"smsc/account": props.account} if props.account else None,
            metadata=self._metadata(props),
            freshness_policy=self._freshness(props),
        )

    def _freshness(self, props: SMSCTableProps) -> dg.FreshnessPolicy | None:
        """The history is late when yesterday is still missing by mid-morning (10:00 in the partitions' zone):
        the daily refresh runs at 05:30 and should have landed it by then."""
        if props.role != HISTORY:
            return None
        return dg.FreshnessPolicy.cron(
            deadline_cron="0 10 * * *", lower_bound_delta=dt.timedelta(hours=10), timezone=props.timezone
        )

    def _description(self, props: SMSCTableProps) -> str:
        layout = props.layout
        if props.role == HISTORY:
            channel = props.channel
            assert channel is not None
            return (
                f"Every {channel.label} message SMSC sent for the account, one partition per local day in "
                f"{props.timezone}: status, operator, country and exact cost. Stored as Parquet at "
                f"{layout.store(channel).root}/date=YYYY-MM-DD/data.parquet; a partition is replaced atomically."
            )
        if props.role == DELIVERY_DAILY:
            return (
                f"Delivery rate and cost per day, channel, country and operator (DuckDB table "
                f"{layout.table_name('delivery_daily')}). Recomputed from the history for the run's partitions, "
                "replacing them in one transaction."
            )
        if props.role in (MART, MART_TOTAL, REFERENCE):
            return f"{_MART_DESCRIPTIONS[props.table]} (DuckDB table {layout.table_name(props.table)})."
        by = props.table.removeprefix("delivery_by_")
        what = "channel, country and operator" if by == "operator" else "channel and country"
        return (
            f"Delivery rate and cost per {what} over every loaded day (DuckDB table {layout.table_name(props.table)}), "
            "summed from delivery_daily."
        )

    def _metadata(self, props: SMSCTableProps) -> dict[str, object]:
        if props.role == HISTORY:
            return {"dagster/column_schema": column_schema(props.privacy.columns(HISTORY_COLUMNS))}
        if props.role in (MART, MART_TOTAL):
            columns = MART_COLUMNS[props.table]
        elif props.role == REFERENCE:
            columns = CODES_COLUMNS
        elif props.role == DELIVERY_DAILY:
            columns = DELIVERY_COLUMNS
        else:
            columns = rollup_columns(props.table.removeprefix("delivery_by_"))
        return {
            "dagster/column_schema": column_schema(columns),
            "dagster/table_name": props.layout.table_name(props.table),
        }
