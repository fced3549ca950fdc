"""The assets: daily history partitions read from SMSC, and the delivery tables built from them.

Built by factories so one code location can hold several accounts. The history asset owns its storage
(Parquet partitions committed atomically), so it returns metadata, not a value for an IO manager.
"""


import datetime as dt
import warnings
from collections.abc import Sequence

import dagster as dg

from smsc_dagster.core import Channel, api_dates, day_bounds, days_between
from smsc_dagster.storage import (
    CODES_TABLE,
    DAILY_MARTS,
    FAILURE_REASONS_TABLE,
    LATENCY_TABLE,
    PAGING_COMPLETE,
    ROLLUPS,
    SENDER_DAILY_TABLE,
    SENDER_TOTALS_TABLE,
    DayStats,
    Layout,
    Marts,
    Privacy,
    StagedIngest,
    Warehouse,
    rows_to_table,
)

from .checks import day_ranges
from .progress import WalkProgress
from .resource import SMSCResource
from .translator import (
    DELIVERY_DAILY,
    HISTORY,
    MART,
    MART_TOTAL,
    REFERENCE,
    ROLLUP,
    AccountNames,
    SMSCTableProps,
    SMSCTranslator,
)


DEFAULT_LIFETIME_S = 24 * 3600.0  # SMSC's message lifetime (`valid`) is at most 24 h


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The first and last local date of the run's partitions (a single partition or a backfill range)."""
    key_range = context.partition_key_range
    return dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end)


def _single_run_asset(spec: dg.AssetSpec, **kwargs):
    """``multi_asset`` over one spec with ``BackfillPolicy.single_run()`` — the point of these assets (one
    paging walk per backfill). Dagster labels the parameter beta; the warning is silenced here only, not in
    the user's process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.multi_asset(specs=[spec], backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)


def _owned(translator: SMSCTranslator, props: SMSCTableProps, names: AccountNames) -> dg.AssetSpec:
    """The translator's spec, with what the package itself relies on: the account's IO manager and the
    table's name (so the IO manager finds the table whatever the key)."""
    spec = translator.get_asset_spec(props)
    return spec.merge_attributes(metadata={"smsc/table": props.table}).with_io_manager_key(names.io_manager_key)


def build_history_asset(
    *,
    channel: Channel,
    layout: Layout,
    partitions_def: dg.DailyPartitionsDefinition,
    key_prefix: Sequence[str] = ("smsc",),
    translator: SMSCTranslator | None = None,
    privacy: Privacy | None = None,
    lifetime_s: float = DEFAULT_LIFETIME_S,
) -> dg.AssetsDefinition:
    """The daily-partitioned history of one channel of one account.

    A backfill of any range runs as one run with one paging walk per six months: SMSC's 30 requests an hour
    are spent on rows, not on restarting the walk for every day.

    ``privacy`` says what is stored of recipients and texts (default: everything kept); it is applied to each
    page before anything is written, and the HMAC key it needs is read when the run starts.

    Example:
        >>> sms = build_history_asset(channel=SMS, layout=Layout("data"), partitions_def=daily)
    """
    timezone = partitions_def.timezone or "UTC"
    privacy = Privacy.coerce(privacy)
    names = AccountNames(layout.account)
    props = SMSCTableProps(
        table=channel.table, role=HISTORY, account=layout.account, key_prefix=tuple(key_prefix),
        layout=layout, timezone=timezone, channel=channel, privacy=privacy,
    )
    spec = _owned(translator or SMSCTranslator(), props, names)

    @_single_run_asset(
        spec,
        name=f"{names.group}_{channel.table}",
        partitions_def=partitions_def,
        pool=names.api_pool,
        required_resource_keys={names.resource_key},
    )
    def _history(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        smsc: SMSCResource = getattr(context.resources, names.resource_key)
        scrub = privacy.resolve()  # the HMAC key, read now: a missing one fails before any request
        first, last = partition_days(context)
        api_start, api_end = api_dates(first, last, timezone, smsc.api_timezone)
        store = layout.store(channel)
        with smsc.get_client(logger=context.log) as client:
            # Before the first request: refuse a store filed in another zone or read from another account.
            layout.claim(timezone=timezone, account_id=client.account_id)
            staging = StagedIngest(
                store,
                first,
                last,
                timezone,
                signature=layout.staging_signature(
                    channel=channel,
                    account_id=client.account_id,
                    api_start=api_start.isoformat(),
                    api_end=api_end.isoformat(),
                    timezone=timezone,
                ) | {"privacy": scrub.record},  # never resume staging stored under another privacy or key
                # A row sent outside the server days requested fails the run; inside them but outside the
                # partitions (the extra server day a zone difference asks for) it is dropped and counted.
                window=day_bounds(api_start, api_end, smsc.api_timezone),
            )
            resume = staging.resume_point()
            if resume:
                context.log.info(f"Resuming an interrupted fetch of {first}..{last} at cursor {resume}")
            walk_started = client.clock.now()  # an empty day counts as read when the walk began
            currency = client.get_currency()
            context.log.info(f"Fetching {channel.name} history {api_start:%d.%m.%Y}-{api_end:%d.%m.%Y} ({smsc.api_timezone})")
            window = day_bounds(api_start, api_end, smsc.api_timezone)
            progress = WalkProgress(
                asset_key=spec.key,
                start_ts=window[0],
                end_ts=window[1],
                clock=client.clock,
                requests_left=lambda: client.budget.requests_per_hour - client.budget.spent_last_hour(),
                log=context.log,
                emit=context.log_event,
                label=channel.table,
            )
            for page in client.iter_history(api_start, api_end, channel=channel, resume=resume):
                fetched_at = dt.datetime.fromtimestamp(client.clock.now(), dt.timezone.utc)
                rows = rows_to_table(
                    # page.repeated: copies of int_ids already served; staging keeps each row's newest version
                    page.rows + page.repeated if page.repeated else page.rows,
                    channel=channel.name, currency=currency, timezone=timezone, fetched_at=fetched_at,
                )
                rows = scrub.apply(rows)  # before anything is written, staging included
                staging.add_page(rows, page.cursor)
                progress.page(rows)
            progress.finish()
            stats = client.stats
            days = staging.commit(
                {
                    PAGING_COMPLETE: True,
                    "run_id": context.run.run_id,
                    "requests": stats.requests,
                    "pages": stats.pages,
                    "api_start": api_start.isoformat(),
                    "api_end": api_end.isoformat(),
                    "currency": currency,
                    "timezone": timezone,
                    "channel": channel.name,
                    "account": layout.account,
                    "privacy": scrub.record,
                    "read_at": walk_started,
                }
            )
        for day, day_stat in days.items():
            settlement = store.settlement(day, timezone, lifetime_s)
            context.add_asset_metadata(
                {**_day_metadata(day_stat, currency), "settled": dg.MetadataValue.bool(settlement.settled)},
                partition_key=day.isoformat(),
            )
        total = sum(s.rows for s in days.values())
        context.log.info(
            f"{channel.table}: {total} rows in {len(days)} partitions from {stats.requests} requests ({stats.pages} pages)"
        )
        # The run's totals once, as an observation of the asset (not repeated on every partition, where they
        # would plot as flat lines); each partition's materialization carries that day's figures only.
        context.log_event(
            dg.AssetObservation(
                asset_key=spec.key,
                metadata={
                    "run_rows": dg.MetadataValue.int(total),
                    "run_partitions": dg.MetadataValue.int(len(days)),
                    "first_partition": dg.MetadataValue.text(first.isoformat()),
                    "last_partition": dg.MetadataValue.text(last.isoformat()),
                    "requests": dg.MetadataValue.int(stats.requests),
                    "pages": dg.MetadataValue.int(stats.pages),
                    "retries": dg.MetadataValue.int(stats.retries),
                    "rows_outside_partitions": dg.MetadataValue.int(days.rows_outside_partitions),
                    "duplicate_rows": dg.MetadataValue.int(days.duplicate_rows),
                    PAGING_COMPLETE: dg.MetadataValue.bool(True),
                },
            )
        )
        return dg.MaterializeResult()

    return _history


def _day_metadata(day: DayStats, currency: str) -> dict[str, dg.MetadataValue]:
    settled = day.delivered + day.failed
    return {
        "dagster/row_count": dg.MetadataValue.int(day.rows),
        "cost_total": dg.MetadataValue.float(float(day.cost)),  # a number, so the UI plots it; exact in the table
        "currency": dg.MetadataValue.text(currency),
        "delivery_rate": dg.MetadataValue.float(day.delivered / day.rows if day.rows else 0.0),
        "settled_delivery_rate": dg.MetadataValue.float(day.delivered / settled if settled else 0.0),
        "pending_share": dg.MetadataValue.float(day.pending / day.rows if day.rows else 0.0),
        "pending": dg.MetadataValue.int(day.pending),
        "preview": dg.MetadataValue.md(day.preview or "_no messages this day_"),
    }


def _figures_metadata(figures: dict) -> dict[str, dg.MetadataValue]:
    """One day's delivery figures as numbers the UI plots over the partitions."""
    messages, delivered, costs = figures["messages"], figures["delivered"], figures["costs"]
    metadata = {
        "messages": dg.MetadataValue.int(messages),
        "delivered": dg.MetadataValue.int(delivered),
        "delivery_rate": dg.MetadataValue.float(delivered / messages if messages else 0.0),
    }
    if len(costs) == 1:  # a plot of cost adds no two currencies
        (currency, cost), = costs.items()
        metadata["cost_total"] = dg.MetadataValue.float(float(cost))
        metadata["currency"] = dg.MetadataValue.text(str(currency))
    for name in ("latency_p50_s", "latency_p90_s"):
        if name in figures:
            metadata[name] = dg.MetadataValue.float(figures[name])
    return metadata


def _props_for(layout: Layout, key_prefix: Sequence[str], timezone: str):
    """``props(table, role, deps)`` for the DuckDB tables of one account."""

    def props(table: str, role: str, deps: Sequence[dg.AssetKey]) -> SMSCTableProps:
        return SMSCTableProps(
            table=table, role=role, account=layout.account, key_prefix=tuple(key_prefix), layout=layout,
            timezone=timezone, deps=tuple(deps),
        )

    return props


def build_delivery_assets(
    *,
    history_keys: Sequence[dg.AssetKey],
    channels: Sequence[Channel],
    layout: Layout,
    partitions_def: dg.DailyPartitionsDefinition,
    key_prefix: Sequence[str] = ("smsc",),
    translator: SMSCTranslator | None = None,
) -> list[dg.AssetsDefinition]:
    """``delivery_daily`` (per partition) and the ``delivery_by_operator`` / ``delivery_by_country`` rollups:
    DuckDB tables in the account's schema of ``{data_dir}/warehouse.duckdb``."""
    translator = translator or SMSCTranslator()
    names = AccountNames(layout.account)
    warehouse = Warehouse(layout)
    timezone = partitions_def.timezone or "UTC"

    props = _props_for(layout, key_prefix, timezone)

    daily_spec = _owned(translator, props("delivery_daily", DELIVERY_DAILY, history_keys), names)

    @_single_run_asset(
        daily_spec,
        name=f"{names.group}_delivery_daily",
        partitions_def=partitions_def,
        pool=names.duckdb_pool,
    )
    def delivery_daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        first, last = partition_days(context)
        with warehouse.connect() as conn:
            warehouse.refresh_views(conn)
            per_day, figures = {}, {}
            for lo, hi in warehouse.in_batches(conn, day_ranges(first, last)):  # a month at a time: the peak follows the batch
                per_day |= warehouse.replace_delivery_daily(conn, channels, lo, hi)
                figures |= warehouse.day_figures(conn, channels, lo, hi)
        for day in days_between(first, last):
            context.add_asset_metadata(
                {"dagster/row_count": dg.MetadataValue.int(per_day[day]), **_figures_metadata(figures[day])},
                partition_key=day.isoformat(),
            )
        return dg.MaterializeResult(metadata={"run_rows": dg.MetadataValue.int(sum(per_day.values()))})

    def rollup(by: str) -> dg.AssetsDefinition:
        table = f"delivery_by_{by}"
        spec = _owned(translator, props(table, ROLLUP, [daily_spec.key]), names)

        @dg.multi_asset(specs=[spec], name=f"{names.group}_{table}", pool=names.duckdb_pool)
        def _rollup(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            with warehouse.connect() as conn:
                rows = warehouse.rebuild_rollup(conn, by)
                preview = warehouse.preview(conn, table)
            return dg.MaterializeResult(
                metadata={
                    "dagster/row_count": dg.MetadataValue.int(rows),
                    "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
                }
            )

        return _rollup

    return [delivery_daily, *(rollup(by) for by in ROLLUPS)]


def build_mart_assets(
    *,
    history_keys: Sequence[dg.AssetKey],
    channels: Sequence[Channel],
    layout: Layout,
    partitions_def: dg.DailyPartitionsDefinition,
    key_prefix: Sequence[str] = ("smsc",),
    translator: SMSCTranslator | None = None,
) -> list[dg.AssetsDefinition]:
    """The marts senders ask for: ``smsc_codes`` (reference), the daily ``delivery_latency``,
    ``failure_reasons`` and ``delivery_by_sender_daily``, and ``delivery_by_sender`` over every day."""
    translator = translator or SMSCTranslator()
    names = AccountNames(layout.account)
    warehouse = Warehouse(layout)
    marts = Marts(warehouse)
    timezone = partitions_def.timezone or "UTC"

    props = _props_for(layout, key_prefix, timezone)

    # After the history in a run: a refresh refused before its first request leaves the warehouse untouched.
    codes_spec = _owned(translator, props(CODES_TABLE, REFERENCE, history_keys), names)

    @dg.multi_asset(specs=[codes_spec], name=f"{names.group}_{CODES_TABLE}", pool=names.duckdb_pool)
    def codes(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with warehouse.connect() as conn:
            rows = marts.write_codes(conn)
        return dg.MaterializeResult(metadata={"dagster/row_count": dg.MetadataValue.int(rows)})

    replace = {
        LATENCY_TABLE: marts.replace_latency,
        FAILURE_REASONS_TABLE: marts.replace_failure_reasons,
        SENDER_DAILY_TABLE: marts.replace_sender_daily,
    }

    def daily(table: str) -> dg.AssetsDefinition:
        deps = [*history_keys, codes_spec.key] if table == FAILURE_REASONS_TABLE else list(history_keys)
        spec = _owned(translator, props(table, MART, deps), names)

        @_single_run_asset(spec, name=f"{names.group}_{table}", partitions_def=partitions_def, pool=names.duckdb_pool)
        def _daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            first, last = partition_days(context)
            with warehouse.connect() as conn:
                per_day = {}
                for lo, hi in warehouse.in_batches(conn, day_ranges(first, last)):  # a month at a time: the peak follows the batch
                    per_day |= replace[table](conn, channels, lo, hi)
            for day in days_between(first, last):
                context.add_asset_metadata(
                    {"dagster/row_count": dg.MetadataValue.int(per_day.get(day, 0))}, partition_key=day.isoformat()
                )
            return dg.MaterializeResult(metadata={"run_rows": dg.MetadataValue.int(sum(per_day.values()))})

        return _daily

    daily_marts = [daily(t) for t in DAILY_MARTS]
    sender_daily_key = next(a.key for a, t in zip(daily_marts, DAILY_MARTS) if t == SENDER_DAILY_TABLE)
    totals_spec = _owned(translator, props(SENDER_TOTALS_TABLE, MART_TOTAL, [sender_daily_key]), names)

    @dg.multi_asset(specs=[totals_spec], name=f"{names.group}_{SENDER_TOTALS_TABLE}", pool=names.duckdb_pool)
    def sender_totals(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        with warehouse.connect() as conn:
            rows = marts.rebuild_sender_totals(conn)
            preview = warehouse.preview(conn, SENDER_TOTALS_TABLE)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(rows),
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
            }
        )

    return [codes, *daily_marts, sender_totals]
