"""Asset checks: they read what is stored, so they also catch a partition damaged after it was written.

The questions themselves (SQL) belong to the warehouse; this module turns their answers into check results.
"""


from collections.abc import Sequence

import dagster as dg

from smsc_dagster.core import Channel
from smsc_dagster.storage import REQUIRED_COLUMNS, HistoryQueries, Layout, Warehouse, file_metadata

PAGING_COMPLETE = "paging_complete"


def build_history_checks(
    *, history_key: dg.AssetKey, layout: Layout, channel: Channel
) -> list[dg.AssetChecksDefinition]:
    """Checks over every stored partition of one history table."""
    store = layout.store(channel)

    def queries() -> HistoryQueries:
        return HistoryQueries(store, layout.spill_dir)

    @dg.asset_check(asset=history_key, name="int_id_unique", description="No int_id appears twice in the history.")
    def int_id_unique() -> dg.AssetCheckResult:
        dupes = queries().duplicate_ids()
        return dg.AssetCheckResult(
            passed=not dupes,
            metadata={"duplicate_ids": len(dupes), "examples": str([d[0] for d in dupes])},
        )

    @dg.asset_check(
        asset=history_key,
        name="date_matches_partition",
        description="Every row's date equals the date of the partition file it is stored in.",
    )
    def date_matches_partition() -> dg.AssetCheckResult:
        bad = queries().misfiled()
        return dg.AssetCheckResult(
            passed=not bad,
            metadata={"misfiled_rows": sum(n for _, n in bad), "partitions": str([p for p, _ in bad][:10])},
        )

    @dg.asset_check(
        asset=history_key,
        name="required_columns_not_null",
        description=f"No NULL in the required columns: {', '.join(REQUIRED_COLUMNS)}.",
    )
    def required_not_null() -> dg.AssetCheckResult:
        offenders = {c: n for c, n in queries().null_counts().items() if n}
        return dg.AssetCheckResult(passed=not offenders, metadata={"null_counts": str(offenders or "none")})

    @dg.asset_check(
        asset=history_key,
        name=PAGING_COMPLETE,
        description="Every stored partition was written by a paging walk that reached the end of its range.",
    )
    def paging_complete() -> dg.AssetCheckResult:
        incomplete = [d.isoformat() for d in store.days() if not file_metadata(store.path(d)).get(PAGING_COMPLETE)]
        return dg.AssetCheckResult(
            passed=not incomplete,
            metadata={"incomplete_partitions": len(incomplete), "examples": str(incomplete[:10])},
        )

    return [int_id_unique, date_matches_partition, required_not_null, paging_complete]


def build_delivery_checks(
    *, delivery_key: dg.AssetKey, channels: Sequence[Channel], layout: Layout
) -> list[dg.AssetChecksDefinition]:
    """``delivery_daily`` must add up to the history it was computed from."""
    warehouse = Warehouse(layout)

    @dg.asset_check(
        asset=delivery_key,
        name="reconciles_with_history",
        description="Per day and channel, delivery_daily's message counts and cost sums equal the history's.",
    )
    def reconciles_with_history() -> dg.AssetCheckResult:
        mismatches, problem = warehouse.reconcile_delivery_daily(channels)
        metadata = {"mismatched_days": len(mismatches), "examples": str(mismatches[:5])}
        if problem:
            metadata["problem"] = problem
        return dg.AssetCheckResult(passed=not mismatches and not problem, metadata=metadata)

    return [reconciles_with_history]
