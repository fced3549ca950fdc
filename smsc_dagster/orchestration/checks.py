"""Asset checks, in two kinds.

* **Run checks** are partitioned like their asset: they read only the partitions the run materialized, so
  their cost follows the run, not the history (the daily refresh checks three days, in year three as on day
  one).
* **Audit checks** read the whole history — what only a whole-history pass can catch: an ``int_id`` stored
  in two partitions, a day damaged after it was written, ``delivery_daily`` drifting from the history, the
  rollups drifting from ``delivery_daily``. They run in the account's audit job, on its own weekly schedule,
  memory-capped (DuckDB with a memory limit and a spill directory, one file at a time where possible).

The questions themselves (SQL) belong to the warehouse; this module turns their answers into check results.
"""

import datetime as dt
import warnings
from collections.abc import Sequence

import dagster as dg

from smsc_dagster.core import Channel, days_between
from smsc_dagster.storage import PAGING_COMPLETE, REQUIRED_COLUMNS, HistoryQueries, Layout, Warehouse, file_metadata

AUDIT_PREFIX = "audit_"


def _partitioned_check(**kwargs):
    """``dg.asset_check`` for a check partitioned like its asset. Dagster 1.13 labels partitioned checks a
    preview; the warning is silenced here only, not in the user's process."""

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.PreviewWarning)
            return dg.asset_check(**kwargs)(fn)

    return decorate


def _run_days(context: dg.AssetCheckExecutionContext) -> list[dt.date] | None:
    """The local days of the run's partitions; ``None`` when the check runs without partitions."""
    if not context.has_partition_key_range:
        return None
    key_range = context.partition_key_range
    return days_between(dt.date.fromisoformat(key_range.start), dt.date.fromisoformat(key_range.end))


def _scope(days: list[dt.date] | None) -> dict[str, dg.MetadataValue]:
    if days is None:
        return {"checked_partitions": dg.MetadataValue.text("all stored")}
    return {
        "checked_partitions": dg.MetadataValue.int(len(days)),
        "first_partition": dg.MetadataValue.text(days[0].isoformat()),
        "last_partition": dg.MetadataValue.text(days[-1].isoformat()),
    }


def build_history_checks(
    *,
    history_key: dg.AssetKey,
    layout: Layout,
    channel: Channel,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> list[dg.AssetChecksDefinition]:
    """Run checks over the partitions a run of one history table wrote."""
    store = layout.store(channel)

    def queries(days: list[dt.date] | None) -> HistoryQueries:
        return HistoryQueries(store, layout.spill_dir, days)

    @_partitioned_check(
        asset=history_key,
        name="int_id_unique",
        partitions_def=partitions_def,
        description="No int_id appears twice in the partitions the run wrote.",
    )
    def int_id_unique(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        dupes = queries(days).duplicate_ids()
        return dg.AssetCheckResult(
            passed=not dupes,
            metadata={"duplicate_ids": len(dupes), "examples": str([d[0] for d in dupes]), **_scope(days)},
        )

    @_partitioned_check(
        asset=history_key,
        name="date_matches_partition",
        partitions_def=partitions_def,
        description="Every row's date equals the date of the partition file it is stored in.",
    )
    def date_matches_partition(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        bad = queries(days).misfiled()
        return dg.AssetCheckResult(
            passed=not bad,
            metadata={
                "misfiled_rows": sum(n for _, n in bad), "partitions": str([p for p, _ in bad][:10]), **_scope(days)
            },
        )

    @_partitioned_check(
        asset=history_key,
        name="required_columns_not_null",
        partitions_def=partitions_def,
        description=f"No NULL in the required columns: {', '.join(REQUIRED_COLUMNS)}.",
    )
    def required_not_null(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        offenders = {c: n for c, n in queries(days).null_counts().items() if n}
        return dg.AssetCheckResult(
            passed=not offenders, metadata={"null_counts": str(offenders or "none"), **_scope(days)}
        )

    @_partitioned_check(
        asset=history_key,
        name=PAGING_COMPLETE,
        partitions_def=partitions_def,
        description="Every partition the run wrote comes from a paging walk that reached the end of its range.",
    )
    def paging_complete(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        wanted = store.days() if days is None else [d for d in days if store.path(d).exists()]
        incomplete = [d.isoformat() for d in wanted if not file_metadata(store.path(d)).get(PAGING_COMPLETE)]
        return dg.AssetCheckResult(
            passed=not incomplete,
            metadata={"incomplete_partitions": len(incomplete), "examples": str(incomplete[:10]), **_scope(days)},
        )

    return [int_id_unique, date_matches_partition, required_not_null, paging_complete]


def build_delivery_checks(
    *,
    delivery_key: dg.AssetKey,
    channels: Sequence[Channel],
    layout: Layout,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> list[dg.AssetChecksDefinition]:
    """``delivery_daily`` must add up to the history it was computed from, for the run's days."""
    warehouse = Warehouse(layout)

    @_partitioned_check(
        asset=delivery_key,
        name="reconciles_with_history",
        partitions_def=partitions_def,
        description="Per day and channel of the run, delivery_daily's message counts and cost sums equal the history's.",
    )
    def reconciles_with_history(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        mismatches, problem = warehouse.reconcile_delivery_daily(channels, days)
        metadata = {"mismatched_days": len(mismatches), "examples": str(mismatches[:5]), **_scope(days)}
        if problem:
            metadata["problem"] = problem
        return dg.AssetCheckResult(passed=not mismatches and not problem, metadata=metadata)

    return [reconciles_with_history]


def build_rollup_checks(*, rollup_keys: dict[str, dg.AssetKey], layout: Layout) -> list[dg.AssetChecksDefinition]:
    """Each rollup must equal ``delivery_daily`` summed over every day (days x groups rows: cheap)."""
    warehouse = Warehouse(layout)

    def check(by: str, key: dg.AssetKey) -> dg.AssetChecksDefinition:
        @dg.asset_check(
            asset=key,
            name="reconciles_with_delivery_daily",
            description=f"delivery_by_{by} equals delivery_daily summed per group and currency over every day.",
        )
        def _reconciles() -> dg.AssetCheckResult:
            mismatches, problem = warehouse.reconcile_rollup(by)
            metadata = {"mismatched_groups": len(mismatches), "examples": str(mismatches[:5])}
            if problem:
                metadata["problem"] = problem
            return dg.AssetCheckResult(passed=not mismatches and not problem, metadata=metadata)

        return _reconciles

    return [check(by, key) for by, key in rollup_keys.items()]


def build_audit_checks(
    *,
    history_keys: dict[Channel, dg.AssetKey],
    delivery_key: dg.AssetKey,
    layout: Layout,
) -> list[dg.AssetChecksDefinition]:
    """Whole-history checks for the audit job."""
    warehouse = Warehouse(layout)
    checks = []
    for channel, key in history_keys.items():
        store = layout.store(channel)

        def _for(store=store, key=key) -> list[dg.AssetChecksDefinition]:
            @dg.asset_check(
                asset=key,
                name=f"{AUDIT_PREFIX}int_id_unique",
                description="Audit: no int_id is stored twice anywhere in the history (across partitions too).",
            )
            def audit_unique() -> dg.AssetCheckResult:
                dupes = HistoryQueries(store, layout.spill_dir).duplicate_ids()
                return dg.AssetCheckResult(
                    passed=not dupes, metadata={"duplicate_ids": len(dupes), "examples": str([d[0] for d in dupes])}
                )

            @dg.asset_check(
                asset=key,
                name=f"{AUDIT_PREFIX}partitions_intact",
                description=(
                    "Audit: every stored partition reads whole, holds the rows it was committed with, comes from a "
                    "complete paging walk, and holds only its own day."
                ),
            )
            def audit_intact() -> dg.AssetCheckResult:
                queries = HistoryQueries(store, layout.spill_dir)
                damaged = queries.damaged()
                misfiled = queries.misfiled() if not damaged else []
                return dg.AssetCheckResult(
                    passed=not damaged and not misfiled,
                    metadata={
                        "damaged_partitions": len(damaged),
                        "damage": str(damaged[:10]),
                        "misfiled_partitions": str([p for p, _ in misfiled][:10]),
                        "stored_partitions": len(store.days()),
                    },
                )

            return [audit_unique, audit_intact]

        checks += _for()

    channels = list(history_keys)

    @dg.asset_check(
        asset=delivery_key,
        name=f"{AUDIT_PREFIX}reconciles_with_history",
        description="Audit: over every day, delivery_daily's message counts and cost sums equal the history's.",
    )
    def audit_delivery() -> dg.AssetCheckResult:
        mismatches, problem = warehouse.reconcile_delivery_daily(channels)
        metadata = {"mismatched_days": len(mismatches), "examples": str(mismatches[:5])}
        if problem:
            metadata["problem"] = problem
        return dg.AssetCheckResult(passed=not mismatches and not problem, metadata=metadata)

    return [*checks, audit_delivery]
