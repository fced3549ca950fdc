"""Asset checks, in two kinds.

* **Run checks** are partitioned like their asset: they read only the partitions the run materialized, so
  their cost follows the run, not the history (the daily refresh checks three days, in year three as on day
  one).
* **Audit checks** read the whole history — what only a whole-history pass can catch: an ``int_id`` stored
  in two partitions, a day damaged after it was written, ``delivery_daily`` drifting from the history, the
  rollups drifting from ``delivery_daily``. They run in the account's audit job, on its own weekly schedule,
  memory-capped (DuckDB with a memory limit and a spill directory, one file at a time where possible).

The questions themselves (SQL) belong to the warehouse; this module turns their answers into check results.

A run check over a backfill asks its question a batch of at most :data:`RUN_BATCH_DAYS` partitions at a time
and adds the answers up, so its peak memory follows the batch, not the range (a 200-day backfill peaks like
a 50-day one). ``int_id_unique`` still finds an id stored in two partitions of different batches: two files
can share an id only where their int_id ranges overlap, and overlapping files are never split between
batches (the usual case, ids growing with time, makes every file its own range).
"""

import datetime as dt
import warnings
from collections.abc import Sequence

import dagster as dg

from smsc_dagster.core import Channel, days_between
from smsc_dagster.storage import (
    PAGING_COMPLETE,
    REQUIRED_COLUMNS,
    HistoryQueries,
    Layout,
    Warehouse,
    by_copies,
    file_metadata,
)

AUDIT_PREFIX = "audit_"
# A run's partitions are checked (and its per-day tables recomputed) this many days at a time.
RUN_BATCH_DAYS = 31
# int_id_unique groups at most this many ids in one GROUP BY (more: hash buckets of int_id, one at a time).
RUN_BATCH_IDS = 250_000


def day_batches(days: Sequence[dt.date], size: int | None = None) -> list[list[dt.date]]:
    """``days`` in consecutive batches of at most ``size`` (default :data:`RUN_BATCH_DAYS`)."""
    days, size = list(days), size or RUN_BATCH_DAYS
    return [days[i : i + size] for i in range(0, len(days), size)]


def day_ranges(first: dt.date, last: dt.date, size: int | None = None) -> list[tuple[dt.date, dt.date]]:
    """``first``..``last`` as consecutive ``(first, last)`` ranges of at most ``size`` days."""
    return [(batch[0], batch[-1]) for batch in day_batches(days_between(first, last), size)]


def run_duplicate_ids(store, spill_dir, days: Sequence[dt.date], limit: int = 5) -> list[tuple[int | None, int]]:
    """``(int_id, copies)`` of ids stored more than once in the partitions ``days`` (across partitions too),
    most copies first — the answer of one GROUP BY over every file, asked in bounded batches.

    The files' int_id ranges are read a batch at a time; sorted by their lowest id, the files are cut into
    groups only between files whose ranges do not overlap (no id can be in both sides), each group at most
    :data:`RUN_BATCH_DAYS` files and :data:`RUN_BATCH_IDS` rows unless its files overlap further; a larger
    group is grouped one hash bucket of int_id at a time. NULL int_ids are counted across every file, as the
    single GROUP BY would."""
    ranges = [r for batch in day_batches(days) for r in HistoryQueries(store, spill_dir, batch).id_ranges()]
    nulls = sum(r[4] for r in ranges)
    groups: list[tuple[list[dt.date], int]] = []
    members: list[dt.date] = []
    rows, top = 0, None
    for part, low, high, count, _ in sorted((r for r in ranges if r[1] is not None), key=lambda r: r[1]):
        apart = top is None or low > top
        if members and apart and (len(members) >= RUN_BATCH_DAYS or rows + count > RUN_BATCH_IDS):
            groups.append((members, rows))
            members, rows, top = [], 0, None
        members.append(dt.date.fromisoformat(part))
        rows += count
        top = high if top is None else max(top, high)
    if members:
        groups.append((members, rows))
    found = []
    for group, rows in groups:
        queries = HistoryQueries(store, spill_dir, sorted(group))
        buckets = max(1, -(-rows // RUN_BATCH_IDS))
        found += [d for d in queries.duplicate_ids(limit, buckets=buckets) if d[0] is not None]
    if nulls > 1:
        found.append((None, nulls))
    return sorted(found, key=by_copies)[:limit]


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

    def _wanted(days: list[dt.date] | None) -> list[dt.date]:
        """The run's days (every stored day for a check run without partitions), to ask in batches."""
        return store.days() if days is None else days

    @_partitioned_check(
        asset=history_key,
        name="int_id_unique",
        partitions_def=partitions_def,
        description="No int_id appears twice in the partitions the run wrote.",
    )
    def int_id_unique(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        days = _run_days(context)
        dupes = run_duplicate_ids(store, layout.spill_dir, _wanted(days))
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
        bad = [b for batch in day_batches(_wanted(days)) for b in queries(batch).misfiled()]
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
        counts: dict[str, int] = {}
        for batch in day_batches(_wanted(days)):
            for column, n in queries(batch).null_counts().items():
                counts[column] = counts.get(column, 0) + n
        offenders = {c: n for c, n in counts.items() if n}
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
        mismatches, problem = _reconcile_in_batches(warehouse, channels, days)
        metadata = {"mismatched_days": len(mismatches), "examples": str(mismatches[:5]), **_scope(days)}
        if problem:
            metadata["problem"] = problem
        return dg.AssetCheckResult(passed=not mismatches and not problem, metadata=metadata)

    return [reconciles_with_history]


def _reconcile_in_batches(
    warehouse: Warehouse, channels: Sequence[Channel], days: list[dt.date] | None
) -> tuple[list[tuple], str | None]:
    """:meth:`Warehouse.reconcile_delivery_daily` over a run's days, :data:`RUN_BATCH_DAYS` at a time: the same
    mismatched days in the same order (each batch's come ordered by day; at most 20 in all), every problem named.
    A row stored under another batch's day is counted with its file's batch, so its day still mismatches."""
    if days is None:
        return warehouse.reconcile_delivery_daily(channels)
    mismatches: list[tuple] = []
    problems: list[str] = []
    for batch in day_batches(days):
        found, problem = warehouse.reconcile_delivery_daily(channels, batch)
        mismatches += found
        if problem and problem not in problems:
            problems.append(problem)
    return mismatches[:20], "; ".join(problems) or None


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
