"""Asset checks: they read what is stored, so they also catch a partition damaged after it was written."""


from collections.abc import Sequence

import dagster as dg
import duckdb

from .schema import REQUIRED_COLUMNS
from .storage import PartitionStore, file_metadata
from .warehouse import Warehouse

CHECK_MEMORY_LIMIT = "96MB"


def build_history_checks(
    *, history_key: dg.AssetKey, store: PartitionStore
) -> list[dg.AssetChecksDefinition]:
    """Checks over every stored partition of one history table."""
    source = f"read_parquet('{store.glob}', hive_partitioning = false, union_by_name = true, filename = true)"

    def query(sql: str) -> list[tuple]:
        if not store.days():
            return []
        # In memory, so reading Parquet never touches the warehouse's lock; with a memory limit and a spill
        # directory, so a GROUP BY over years of history stays small instead of growing with it.
        spill = store.data_dir / ".staging" / "checks_spill"
        config = {"memory_limit": CHECK_MEMORY_LIMIT, "threads": 1, "temp_directory": str(spill)}
        with duckdb.connect(config=config) as conn:
            return conn.execute(sql.format(source=source)).fetchall()

    @dg.asset_check(asset=history_key, name="int_id_unique", description="No int_id appears twice in the history.")
    def int_id_unique() -> dg.AssetCheckResult:
        dupes = query("SELECT int_id, count(*) AS n FROM {source} GROUP BY int_id HAVING n > 1 ORDER BY n DESC LIMIT 5")
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
        bad = query(
            "SELECT regexp_extract(filename, 'date=([0-9-]+)', 1) AS part, count(*) FROM {source} "
            "WHERE CAST(date AS VARCHAR) <> regexp_extract(filename, 'date=([0-9-]+)', 1) GROUP BY part ORDER BY part"
        )
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
        counts = query(
            "SELECT " + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL)" for c in REQUIRED_COLUMNS) + " FROM {source}"
        )
        nulls = dict(zip(REQUIRED_COLUMNS, counts[0])) if counts else {}
        offenders = {c: n for c, n in nulls.items() if n}
        return dg.AssetCheckResult(passed=not offenders, metadata={"null_counts": str(offenders or "none")})

    @dg.asset_check(
        asset=history_key,
        name="paging_complete",
        description="Every stored partition was written by a paging walk that reached the end of its range.",
    )
    def paging_complete() -> dg.AssetCheckResult:
        incomplete = [d.isoformat() for d in store.days() if not file_metadata(store.path(d)).get("paging_complete")]
        return dg.AssetCheckResult(
            passed=not incomplete,
            metadata={"incomplete_partitions": len(incomplete), "examples": str(incomplete[:10])},
        )

    return [int_id_unique, date_matches_partition, required_not_null, paging_complete]


def build_delivery_checks(
    *, delivery_key: dg.AssetKey, channels: Sequence[str], data_dir: str
) -> list[dg.AssetChecksDefinition]:
    """``delivery_daily`` must add up to the history it was computed from."""
    warehouse = Warehouse(data_dir)

    @dg.asset_check(
        asset=delivery_key,
        name="reconciles_with_history",
        description="Per day and channel, delivery_daily's message counts and cost sums equal the history's.",
    )
    def reconciles_with_history() -> dg.AssetCheckResult:
        with warehouse.connect(read_only=True) as conn:
            views = {v.split(".")[-1] for v in _existing_views(conn)}
            parts = [
                f"SELECT date, channel, count(*) AS messages, coalesce(sum(cost), 0) AS cost FROM smsc.{t} GROUP BY ALL"
                for t in ("sms_history", "email_history")
                if t in views
            ]
            if not parts:
                return dg.AssetCheckResult(passed=True, metadata={"mismatched_days": 0})
            mismatches = conn.execute(
                f"""
                WITH h AS ({' UNION ALL '.join(parts)}),
                     d AS (SELECT date, channel, sum(messages) AS messages, sum(cost) AS cost
                           FROM smsc.delivery_daily GROUP BY ALL)
                SELECT coalesce(h.date, d.date) AS date, coalesce(h.channel, d.channel),
                       h.messages, d.messages, h.cost, d.cost
                FROM h FULL OUTER JOIN d ON h.date = d.date AND h.channel = d.channel
                WHERE h.messages IS DISTINCT FROM d.messages OR h.cost IS DISTINCT FROM d.cost
                ORDER BY 1 LIMIT 20
                """
            ).fetchall()
        return dg.AssetCheckResult(
            passed=not mismatches,
            metadata={"mismatched_days": len(mismatches), "examples": str(mismatches[:5])},
        )

    return [reconciles_with_history]


def _existing_views(conn) -> list[str]:
    return [
        f"{s}.{n}"
        for s, n in conn.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE schema_name = 'smsc'"
        ).fetchall()
    ]
