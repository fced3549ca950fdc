"""The assets: daily history partitions read from SMSC, and the delivery tables built from them.

Built by factories so one code location can hold several accounts or channels. The history asset owns its
storage (Parquet partitions committed atomically), so it returns metadata, not a value for an IO manager.
"""


import datetime as dt
import warnings
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import dagster as dg
import pyarrow.compute as pc

from .io_manager import IO_MANAGER_KEY
from .resource import SMSCResource
from .schema import HISTORY_COLUMNS, column_schema, rows_to_table
from .storage import DayStats, PartitionStore, StagedIngest
from .warehouse import HISTORY_TABLES, Warehouse

# single_run() is the whole point of the history asset (one paging walk per backfill); Dagster still labels
# the parameter beta, and the warning would greet every user at every load.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=dg.BetaWarning)

API_POOL = "smsc_api"
DUCKDB_POOL = "smsc_duckdb"
GROUP = "smsc"

DELIVERY_COLUMNS = [
    ("date", "DATE", "The partition's local date."),
    ("channel", "VARCHAR", "'sms' or 'email'."),
    ("country", "VARCHAR", "Recipient country."),
    ("operator", "VARCHAR", "Recipient operator."),
    ("messages", "BIGINT", "Messages sent."),
    ("sms_parts", "BIGINT", "SMS parts billed (sum of sms_cnt)."),
    ("delivered", "BIGINT", "Messages with status class 'delivered'."),
    ("failed", "BIGINT", "Messages with status class 'failed'."),
    ("pending", "BIGINT", "Messages still pending."),
    ("other", "BIGINT", "Messages with any other status."),
    ("delivery_rate", "DOUBLE", "delivered / messages."),
    ("settled_delivery_rate", "DOUBLE", "delivered / (delivered + failed); NULL when both are 0."),
    ("cost", "DECIMAL(38,6)", "Total cost, exact."),
    ("currency", "VARCHAR", "Account currency."),
    ("cost_per_delivered", "DECIMAL(18,6)", "cost / delivered; NULL when nothing was delivered."),
]


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The first and last local date of the run's partitions (a single partition or a backfill range)."""
    key_range = context.partition_key_range
    return dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end)


def api_dates(first: dt.date, last: dt.date, timezone: str, api_timezone: str) -> tuple[dt.date, dt.date]:
    """The ``start``/``end`` dates to request so the server's days (in ``api_timezone``) cover the local
    days ``first``..``last`` of ``timezone`` completely."""
    zone, api_zone = ZoneInfo(timezone), ZoneInfo(api_timezone)
    window_start = dt.datetime.combine(first, dt.time(), zone)
    window_end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
    return (
        window_start.astimezone(api_zone).date(),
        (window_end - dt.timedelta(seconds=1)).astimezone(api_zone).date(),
    )


def build_history_asset(
    *,
    channel: str,
    partitions_def: dg.DailyPartitionsDefinition,
    data_dir: str,
    key_prefix: Sequence[str] = ("smsc",),
    resource_key: str = "smsc",
) -> dg.AssetsDefinition:
    """The daily-partitioned history of one channel (``"sms"`` or ``"email"``).

    A backfill of any range runs as one run with one paging walk per six months: SMSC's 30 requests an hour
    are spent on rows, not on restarting the walk for every day.

    Example:
        >>> sms = build_history_asset(channel="sms", partitions_def=daily, data_dir="data")
    """
    table = HISTORY_TABLES[channel]
    timezone = partitions_def.timezone or "UTC"

    @dg.asset(
        key=dg.AssetKey([*key_prefix, table]),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=API_POOL,
        group_name=GROUP,
        kinds={"parquet"},
        io_manager_key=IO_MANAGER_KEY,
        required_resource_keys={resource_key},
        description=(
            f"Every {channel.upper() if channel == 'sms' else 'e-mail'} message SMSC sent for the account, one "
            f"partition per local day in {timezone}: status, operator, country and exact cost. Stored as "
            f"Parquet at {{data_dir}}/{table}/date=YYYY-MM-DD/; a partition is replaced atomically."
        ),
        metadata={"dagster/column_schema": column_schema(HISTORY_COLUMNS), "data_dir": data_dir},
    )
    def _history(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        smsc: SMSCResource = getattr(context.resources, resource_key)
        first, last = partition_days(context)
        api_start, api_end = api_dates(first, last, timezone, smsc.api_timezone)
        store = PartitionStore(data_dir, table)
        with smsc.get_client(logger=context.log) as client:
            staging = StagedIngest(
                store,
                first,
                last,
                timezone,
                signature={
                    "channel": channel,
                    "base_url": client.base_url,
                    "api_start": api_start.isoformat(),
                    "api_end": api_end.isoformat(),
                    "timezone": timezone,
                },
            )
            resume = staging.resume_point()
            if resume:
                context.log.info(f"Resuming an interrupted fetch of {first}..{last} at cursor {resume}")
            currency = client.get_currency()
            context.log.info(f"Fetching {channel} history {api_start:%d.%m.%Y}-{api_end:%d.%m.%Y} ({smsc.api_timezone})")
            for page in client.iter_history(api_start, api_end, channel=channel, resume=resume):
                fetched_at = dt.datetime.fromtimestamp(client.clock.now(), dt.timezone.utc)
                rows = rows_to_table(
                    page.rows, channel=channel, currency=currency, timezone=timezone, fetched_at=fetched_at
                )
                oldest = pc.min(rows["sent_at"]).value // 1_000_000 if rows.num_rows else None
                staging.add_page(rows, page.cursor, oldest)
            stats = client.stats
            days = staging.commit(
                {
                    "paging_complete": True,
                    "run_id": context.run.run_id,
                    "requests": stats.requests,
                    "pages": stats.pages,
                    "api_start": api_start.isoformat(),
                    "api_end": api_end.isoformat(),
                    "currency": currency,
                }
            )
        for day, day_stat in days.items():
            context.add_asset_metadata(
                _day_metadata(day_stat, currency, stats.requests, stats.pages), partition_key=day.isoformat()
            )
        total = sum(s.rows for s in days.values())
        context.log.info(
            f"{table}: {total} rows in {len(days)} partitions from {stats.requests} requests ({stats.pages} pages)"
        )
        return dg.MaterializeResult(
            metadata={
                "run_rows": dg.MetadataValue.int(total),
                "run_partitions": dg.MetadataValue.int(len(days)),
                "requests": dg.MetadataValue.int(stats.requests),
                "pages": dg.MetadataValue.int(stats.pages),
                "retries": dg.MetadataValue.int(stats.retries),
                "paging_complete": dg.MetadataValue.bool(True),
            }
        )

    return _history


def _day_metadata(day: DayStats, currency: str, requests: int, pages: int) -> dict[str, dg.MetadataValue]:
    settled = day.delivered + day.failed
    return {
        "dagster/row_count": dg.MetadataValue.int(day.rows),
        "requests": dg.MetadataValue.int(requests),
        "pages": dg.MetadataValue.int(pages),
        "paging_complete": dg.MetadataValue.bool(True),
        "cost_total": dg.MetadataValue.text(f"{day.cost} {currency}"),
        "currency": dg.MetadataValue.text(currency),
        "delivery_rate": dg.MetadataValue.float(day.delivered / day.rows if day.rows else 0.0),
        "settled_delivery_rate": dg.MetadataValue.float(day.delivered / settled if settled else 0.0),
        "pending_share": dg.MetadataValue.float(day.pending / day.rows if day.rows else 0.0),
        "preview": dg.MetadataValue.md(day.preview or "_no messages this day_"),
    }


def build_delivery_assets(
    *,
    history_keys: Sequence[dg.AssetKey],
    channels: Sequence[str],
    partitions_def: dg.DailyPartitionsDefinition,
    data_dir: str,
    key_prefix: Sequence[str] = ("smsc",),
) -> list[dg.AssetsDefinition]:
    """``delivery_daily`` (per partition) and the ``delivery_by_operator`` / ``delivery_by_country`` rollups,
    all DuckDB tables in ``{data_dir}/warehouse.duckdb``, schema ``smsc``."""
    warehouse = Warehouse(data_dir)
    schema = dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in DELIVERY_COLUMNS])

    @dg.asset(
        key=dg.AssetKey([*key_prefix, "delivery_daily"]),
        deps=list(history_keys),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        group_name=GROUP,
        kinds={"duckdb"},
        io_manager_key=IO_MANAGER_KEY,
        description=(
            "Delivery rate and cost per day, channel, country and operator (DuckDB table smsc.delivery_daily). "
            "Recomputed from the history for the run's partitions, replacing them in one transaction."
        ),
        metadata={"dagster/column_schema": schema, "dagster/table_name": "smsc.delivery_daily"},
    )
    def delivery_daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        first, last = partition_days(context)
        with warehouse.connect() as conn:
            warehouse.refresh_views(conn)
            written = warehouse.replace_delivery_daily(conn, channels, first, last)
            per_day = dict(
                conn.execute(
                    "SELECT date, count(*) FROM smsc.delivery_daily WHERE date BETWEEN ? AND ? GROUP BY date",
                    [first, last],
                ).fetchall()
            )
        day = first
        while day <= last:
            context.add_asset_metadata(
                {"dagster/row_count": dg.MetadataValue.int(per_day.get(day, 0))}, partition_key=day.isoformat()
            )
            day += dt.timedelta(days=1)
        return dg.MaterializeResult(metadata={"run_rows": dg.MetadataValue.int(written)})

    def rollup(by: str) -> dg.AssetsDefinition:
        rollup_schema = dg.TableSchema(
            columns=[dg.TableColumn(n, t, description=d) for n, t, d in DELIVERY_COLUMNS if n != "date" and not (by == "country" and n == "operator")]
            + [
                dg.TableColumn("first_date", "DATE", description="First loaded day."),
                dg.TableColumn("last_date", "DATE", description="Last loaded day."),
            ]
        )

        @dg.asset(
            key=dg.AssetKey([*key_prefix, f"delivery_by_{by}"]),
            deps=[delivery_daily.key],
            pool=DUCKDB_POOL,
            group_name=GROUP,
            kinds={"duckdb"},
            io_manager_key=IO_MANAGER_KEY,
            description=(
                f"Delivery rate and cost per {'channel, country and operator' if by == 'operator' else 'channel and country'} "
                f"over every loaded day (DuckDB table smsc.delivery_by_{by})."
            ),
            metadata={"dagster/column_schema": rollup_schema, "dagster/table_name": f"smsc.delivery_by_{by}"},
        )
        def _rollup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            with warehouse.connect() as conn:
                warehouse.refresh_views(conn)
                rows = warehouse.rebuild_rollup(conn, channels, by)
                preview = conn.execute(f"SELECT * FROM smsc.delivery_by_{by} LIMIT 10").df()
            return dg.MaterializeResult(
                metadata={
                    "dagster/row_count": dg.MetadataValue.int(rows),
                    "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
                }
            )

        return _rollup

    return [delivery_daily, rollup("operator"), rollup("country")]
