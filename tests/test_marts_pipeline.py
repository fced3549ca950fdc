"""The marts as Dagster assets: built by the refresh run for its partitions, exact against the raw history."""

from __future__ import annotations

from decimal import Decimal

from smsc_dagster.testing import SimulatedAccount

from .pipeline_support import local_day_span, pipeline


def test_the_refresh_run_builds_the_marts_for_its_days(tmp_path, clock):
    account = SimulatedAccount(seed=81, messages_per_day=500)
    with pipeline(tmp_path, account, clock=clock) as p:
        result = p.run("2026-10-01", "2026-10-03")
        assert result.success
        keys = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
        truth = [r for d in ("2026-10-01", "2026-10-02", "2026-10-03")
                 for r in p.sim.expected_rows(*local_day_span(d, "Asia/Almaty"))]
        latency_days = p.sql("SELECT DISTINCT date FROM smsc.delivery_latency ORDER BY 1")
        delivered_1 = p.sql("SELECT sum(delivered) FROM smsc.delivery_latency")[0][0]
        failures = p.sql("SELECT sum(messages) FROM smsc.failure_reasons")[0][0]
        senders = p.sql(
            "SELECT sender_id, channel, sum(messages), sum(cost) FROM smsc.delivery_by_sender GROUP BY ALL ORDER BY 1"
        )
        daily_senders = p.sql(
            "SELECT sender_id, channel, sum(messages), sum(cost) FROM smsc.delivery_by_sender_daily GROUP BY ALL ORDER BY 1"
        )
        unknown = p.sql("SELECT count(*) FROM smsc.failure_reasons WHERE err_name_en IS NULL OR status_name_en IS NULL")
        codes = p.sql("SELECT count(*) FROM smsc.smsc_codes")[0][0]
    assert {"delivery_latency", "failure_reasons", "delivery_by_sender_daily", "delivery_by_sender", "smsc_codes"} <= keys
    assert [str(d) for (d,) in latency_days] == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert delivered_1 == sum(1 for r in truth if int(r["status"]) in (1, 2, 4))
    failed_or_erred = sum(
        1 for r in truth
        if int(r["status"]) in (3, 20, 22, 23, 24, 25) or int(r["status"]) not in (-2, -1, 0, 1, 2, 3, 4, 20, 22, 23, 24, 25)
        or int(r.get("err") or 0) != 0
    )
    assert failures == failed_or_erred
    by_sender: dict[str, tuple[int, Decimal]] = {}
    for r in truth:
        n, c = by_sender.get(r["sender_id"], (0, Decimal(0)))
        by_sender[r["sender_id"]] = (n + 1, c + Decimal(str(r["cost"])))
    assert [(s, n, c) for s, _, n, c in senders] == sorted((s, n, c) for s, (n, c) in by_sender.items())
    assert senders == daily_senders
    assert unknown == [(0,)] and codes > 40
