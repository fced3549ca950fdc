"""The marts against days computed by hand: hand-made history partitions, each mart's exact rows."""

from __future__ import annotations

import datetime as dt
import os
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa
import pytest

from smsc_dagster.storage.codes import CODES, CODES_SCHEMA, ERRORS, STATUSES, code_name, codes_table
from smsc_dagster.storage.contract import rows_to_table, status_class
from smsc_dagster.storage.layout import Layout
from smsc_dagster.storage.marts import (
    LATENCY_TABLE,
    MART_COLUMNS,
    SENDER_DAILY_TABLE,
    Marts,
    exact_ratio,
    mart_schema,
)
from smsc_dagster.storage.partitions import write_table_atomic
from smsc_dagster.storage.warehouse import Warehouse

from .pipeline_support import row

TZ = "Asia/Almaty"
FETCHED = dt.datetime(2026, 11, 5, tzinfo=dt.timezone.utc)
DAY1, DAY2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)
D = Decimal


def at_noon(day: dt.date, plus_s: int = 0) -> int:
    """The Unix time of local noon of ``day`` (plus some seconds): well inside the day's partition."""
    return int(dt.datetime.combine(day, dt.time(12), ZoneInfo(TZ)).timestamp()) + plus_s


def history(rows: list[dict], currency: str = "KZT") -> pa.Table:
    return rows_to_table(rows, channel="sms", currency=currency, timezone=TZ, fetched_at=FETCHED)


def write_day(layout: Layout, day: dt.date, *tables: pa.Table) -> None:
    write_table_atomic(pa.concat_tables(tables), layout.store("sms").path(day))


class Ids:
    def __init__(self) -> None:
        self.next = 1000

    def __call__(self) -> int:
        self.next += 1
        return self.next


@pytest.fixture
def setup(tmp_path):
    layout = Layout(tmp_path / "data")
    warehouse = Warehouse(layout)
    with warehouse.connect() as conn:
        yield layout, Marts(warehouse), conn


def rows_of(conn, table: str, order: str = "ALL") -> list[tuple]:
    return conn.execute(f"SELECT * FROM smsc.{table} ORDER BY {order}").fetchall()


# -- delivery_latency ---------------------------------------------------------------------------------------

LATENCIES = [1, 2, 3, 5, 8, 13, 21, 34, 55, 400]


def latency_day(day: dt.date, ids: Ids) -> pa.Table:
    sent = at_noon(day)
    rows = [
        row(ids(), sent + i, last_timestamp=sent + i + latency, operator="Beeline KZ")
        for i, latency in enumerate(reversed(LATENCIES))  # stored in no particular order
    ]
    rows += [
        row(ids(), sent, last_timestamp=0, operator="Beeline KZ"),  # delivered, no status change time
        row(ids(), sent, last_timestamp=sent - 5, operator="Beeline KZ"),  # status change before sending
        row(ids(), sent, status=2, last_timestamp=sent + 7, operator="Beeline KZ"),  # read: the time is the read
        row(ids(), sent, status=20, err=1, last_timestamp=sent + 3, operator="Beeline KZ"),  # failed: not here
        row(ids(), sent, status=0, last_timestamp=0, operator="Beeline KZ"),  # pending: not here
        row(ids(), sent, last_timestamp=sent + 60, operator="Kcell"),
        row(ids(), sent, last_timestamp=sent + 300, operator="Kcell"),
        row(ids(), sent, last_timestamp=sent + 301, operator="Kcell"),
        row(ids(), sent, last_timestamp=0, operator="Tele2"),  # delivered, nothing measured
    ]
    return history(rows)


def test_latency_hand_computed_day(setup):
    layout, marts, conn = setup
    write_day(layout, DAY1, latency_day(DAY1, Ids()))

    assert marts.replace_latency(conn, ["sms"], DAY1, DAY1) == {DAY1: 3}

    # Beeline: 10 measured latencies [1, 2, 3, 5, 8, 13, 21, 34, 55, 400]; nearest rank is the ceil(q*n)-th:
    # p50 -> 5th = 8, p90 -> 9th = 55, p95 -> ceil(9.5) = 10th = 400; max 400. At most 10 s: 1, 2, 3, 5, 8
    # (5 of 10); at most 60 s: all but 400 (9 of 10); at most 300 s: 9 of 10. Delivered: the 10, the one
    # without a change time, the one changed before sending and the read one = 13, three of them unmeasured.
    # Kcell: [60, 300, 301]: p50 -> 2nd = 300, p90 and p95 -> 3rd = 301; <=10 s: 0, <=60 s: 1/3, <=300 s: 2/3.
    # Tele2: one delivered message, no latency: the percentiles and shares are NULL.
    assert rows_of(conn, LATENCY_TABLE) == [
        (DAY1, "sms", "Казахстан", "Beeline KZ", 13, 10, 3, 8, 55, 400, 400, 0.5, 0.9, 0.9),
        (DAY1, "sms", "Казахстан", "Kcell", 3, 3, 0, 300, 301, 301, 301, 0.0, 1 / 3, 2 / 3),
        (DAY1, "sms", "Казахстан", "Tele2", 1, 0, 1, None, None, None, None, None, None, None),
    ]


# -- failure_reasons ----------------------------------------------------------------------------------------


def failure_day(day: dt.date, ids: Ids) -> pa.Table:
    sent = at_noon(day)
    spec = [  # (status, err, how many)
        (20, 1, 2),
        (20, 6, 1),
        (23, 253, 1),
        (20, 9999, 1),  # an err code SMSC has not documented
        (77, 0, 1),  # a status code SMSC has not documented
        (0, 6, 1),  # pending, but with an error: kept
        (1, 0, 3),  # delivered: not a failure
        (0, 0, 1),  # pending without an error: not a failure
    ]
    return history([row(ids(), sent, status=s, err=e) for s, e, n in spec for _ in range(n)])


def test_failure_reasons_names_and_unknown_codes(setup):
    layout, marts, conn = setup
    write_day(layout, DAY1, failure_day(DAY1, Ids()))

    assert marts.replace_failure_reasons(conn, ["sms"], DAY1, DAY1) == {DAY1: 6}

    # 11 messages in the day's one channel/country/operator group; the failures' shares are over all 11.
    key = (DAY1, "sms", "Казахстан", "Beeline KZ")
    assert rows_of(conn, "failure_reasons", "messages DESC, status, err") == [
        (*key, 20, "failed", "cannot be delivered", "Невозможно доставить",
         1, "subscriber does not exist", "Абонент не существует", 2, 2 / 11),
        (*key, 0, "pending", "passed to the operator", "Передано оператору",
         6, "subscriber offline", "Абонент не в сети", 1, 1 / 11),
        (*key, 20, "failed", "cannot be delivered", "Невозможно доставить",
         6, "subscriber offline", "Абонент не в сети", 1, 1 / 11),
        (*key, 20, "failed", "cannot be delivered", "Невозможно доставить",
         9999, "unknown", "неизвестно", 1, 1 / 11),
        (*key, 23, "failed", "prohibited", "Запрещено",
         253, "spam filter", "Запрещено спам-фильтром", 1, 1 / 11),
        (*key, 77, "other", "unknown", "неизвестно",
         0, "none", "Нет ошибки", 1, 1 / 11),
    ]
    # The reference table was written on the way, in the account's schema.
    assert conn.execute("SELECT count(*) FROM smsc.smsc_codes").fetchone() == (len(CODES),)


# -- delivery_by_sender -------------------------------------------------------------------------------------


def sender_day1(ids: Ids) -> list[pa.Table]:
    sent = at_noon(DAY1)
    kzt = history([
        row(ids(), sent, sender_id="ACME", sms_cnt=2, cost="14.50"),
        row(ids(), sent, sender_id="ACME", sms_cnt=1, cost="7.25"),
        row(ids(), sent, sender_id="ACME", sms_cnt=1, cost="7.25", status=20, err=1),
        row(ids(), sent, sender_id="ACME", type=1, sms_cnt=3, cost="10.000001", status=0),
        row(ids(), sent, sender_id="SMSC.KZ", sms_cnt=2, cost="0.000005"),
    ])
    usd = history([row(ids(), sent, sender_id="ACME", sms_cnt=1, cost="0.03")], currency="USD")
    return [kzt, usd]  # one day, two currencies


def sender_day2(ids: Ids) -> pa.Table:
    sent = at_noon(DAY2)
    return history([row(ids(), sent, sender_id="ACME", cost="14.50"), row(ids(), sent, sender_id="ACME", cost="14.50")])


def test_sender_daily_and_totals_never_add_two_currencies(setup):
    layout, marts, conn = setup
    ids = Ids()
    write_day(layout, DAY1, *sender_day1(ids))
    write_day(layout, DAY2, sender_day2(ids))

    assert marts.replace_sender_daily(conn, ["sms"], DAY1, DAY2) == {DAY1: 4, DAY2: 1}

    # ACME/0/KZT day 1: 3 messages, 2+1+1 = 4 parts, 2 delivered, 1 failed; 14.50+7.25+7.25 = 29.00,
    #   29.00/4 = 7.25 a part, 29.00/2 = 14.50 a delivered message.
    # ACME/0/USD day 1: the same sender, day and type in another currency: its own row, never added to KZT.
    # ACME/1/KZT: one pending flash message of 3 parts for 10.000001: 3.3333336666... -> 3.333334 a part.
    # SMSC.KZ/0/KZT: 0.000005 for 2 parts = 0.0000025 -> 0.000003 (half away from zero).
    assert rows_of(conn, SENDER_DAILY_TABLE, "date, sender_id, type, currency") == [
        (DAY1, "ACME", "sms", 0, 3, 4, 2, 1, 0, 0, 2 / 3, D("29.000000"), "KZT", D("7.250000"), D("14.500000")),
        (DAY1, "ACME", "sms", 0, 1, 1, 1, 0, 0, 0, 1.0, D("0.030000"), "USD", D("0.030000"), D("0.030000")),
        (DAY1, "ACME", "sms", 1, 1, 3, 0, 0, 1, 0, 0.0, D("10.000001"), "KZT", D("3.333334"), None),
        (DAY1, "SMSC.KZ", "sms", 0, 1, 2, 1, 0, 0, 0, 1.0, D("0.000005"), "KZT", D("0.000003"), D("0.000005")),
        (DAY2, "ACME", "sms", 0, 2, 2, 2, 0, 0, 0, 1.0, D("29.000000"), "KZT", D("14.500000"), D("14.500000")),
    ]

    # The totals are summed from the per-day table, not from the history: without day 2's file they still
    # hold day 2 until the per-day table is recomputed.
    os.remove(layout.store("sms").path(DAY2))
    assert marts.rebuild_sender_totals(conn) == 4
    # ACME/0/KZT over both days: 5 messages, 6 parts, 4 delivered, 1 failed, 58.00: 58/6 = 9.6666... ->
    # 9.666667 a part, 58/4 = 14.50 a delivered message, 4/5 delivered.
    assert rows_of(conn, "delivery_by_sender", "messages DESC, sender_id, type, currency") == [
        ("ACME", "sms", 0, DAY1, DAY2, 5, 6, 4, 1, 0, 0, 0.8, D("58.000000"), "KZT", D("9.666667"), D("14.500000")),
        ("ACME", "sms", 0, DAY1, DAY1, 1, 1, 1, 0, 0, 0, 1.0, D("0.030000"), "USD", D("0.030000"), D("0.030000")),
        ("ACME", "sms", 1, DAY1, DAY1, 1, 3, 0, 0, 1, 0, 0.0, D("10.000001"), "KZT", D("3.333334"), None),
        ("SMSC.KZ", "sms", 0, DAY1, DAY1, 1, 2, 1, 0, 0, 0, 1.0, D("0.000005"), "KZT", D("0.000003"), D("0.000005")),
    ]


# -- re-running one day -------------------------------------------------------------------------------------


def test_rerun_of_one_day_replaces_only_that_day(setup):
    layout, marts, conn = setup
    ids = Ids()
    write_day(layout, DAY1, latency_day(DAY1, ids), failure_day(DAY1, ids))
    write_day(layout, DAY2, latency_day(DAY2, ids), failure_day(DAY2, ids))
    runs = (marts.replace_latency, marts.replace_failure_reasons, marts.replace_sender_daily)
    tables = (LATENCY_TABLE, "failure_reasons", SENDER_DAILY_TABLE)
    for run in runs:
        run(conn, ["sms"], DAY1, DAY2)
    def day1(table: str) -> list[tuple]:
        return conn.execute(f"SELECT * FROM smsc.{table} WHERE date = ? ORDER BY ALL", [DAY1]).fetchall()

    day1_before = {t: day1(t) for t in tables}

    # Day 2 now holds one failed message from Kcell, with an unknown err.
    failed = row(ids(), at_noon(DAY2), status=20, err=4242, operator="Kcell", sender_id="X")
    write_day(layout, DAY2, history([failed]))
    assert marts.replace_latency(conn, ["sms"], DAY2, DAY2) == {DAY2: 0}
    assert marts.replace_failure_reasons(conn, ["sms"], DAY2, DAY2) == {DAY2: 1}
    assert marts.replace_sender_daily(conn, ["sms"], DAY2, DAY2) == {DAY2: 1}

    for table in tables:
        assert day1(table) == day1_before[table]
    assert conn.execute(f"SELECT count(*) FROM smsc.{LATENCY_TABLE} WHERE date = ?", [DAY2]).fetchone() == (0,)
    assert conn.execute("SELECT operator, status, err, err_name_en, messages, share FROM smsc.failure_reasons "
                        "WHERE date = ?", [DAY2]).fetchall() == [("Kcell", 20, 4242, "unknown", 1, 1.0)]
    assert conn.execute(f"SELECT sender_id, messages, failed FROM smsc.{SENDER_DAILY_TABLE} WHERE date = ?",
                        [DAY2]).fetchall() == [("X", 1, 1)]

    # A day whose file is gone is emptied, the others stay.
    os.remove(layout.store("sms").path(DAY2))
    assert marts.replace_failure_reasons(conn, ["sms"], DAY2, DAY2) == {DAY2: 0}
    assert conn.execute("SELECT DISTINCT date FROM smsc.failure_reasons").fetchall() == [(DAY1,)]


def test_a_failed_replacement_keeps_the_old_rows(setup, monkeypatch):
    layout, marts, conn = setup
    write_day(layout, DAY1, latency_day(DAY1, Ids()))
    marts.replace_latency(conn, ["sms"], DAY1, DAY1)
    before = rows_of(conn, LATENCY_TABLE)
    monkeypatch.setattr(marts.warehouse, "_history_source", lambda channels, days: "no_such_relation")
    with pytest.raises(duckdb.Error):
        marts.replace_latency(conn, ["sms"], DAY1, DAY1)
    assert rows_of(conn, LATENCY_TABLE) == before


# -- the reference codes ------------------------------------------------------------------------------------

# Every code of the reference's "Status codes" and "Delivery error codes" tables (smsc-api.md).
DOCUMENTED_STATUSES = {-3, -2, -1, 0, 1, 2, 3, 4, 20, 22, 23, 24, 25}
DOCUMENTED_ERRORS = {0, 1, 2, 3, 4, 6, 11, 12, 13, 21, 200, 219, 220, *range(237, 256)}


def test_codes_cover_the_reference_and_agree_with_the_contract():
    assert {c.code for c in STATUSES} == DOCUMENTED_STATUSES
    assert {c.code for c in ERRORS} == DOCUMENTED_ERRORS
    assert len({(c.kind, c.code) for c in CODES}) == len(CODES)
    for code in STATUSES:
        assert code.status_class == status_class(code.code), code
    assert all(c.name_en and c.name_ru and c.status_class is None and c.final is None for c in ERRORS)
    assert [c.code for c in STATUSES if c.final] == [1, 2, 3, 4, 20, 22, 23, 24, 25]
    assert code_name("err", 254) == "unregistered sender ID"
    assert code_name("err", 245, russian=True) == "Статус не получен"
    assert code_name("status", 77) == "unknown" and code_name("err", None, russian=True) == "неизвестно"
    table = codes_table()
    assert table.schema == CODES_SCHEMA and table.num_rows == len(CODES)
    assert table.slice(0, 1).to_pylist() == [
        {"kind": "status", "code": -3, "name_en": "message not found (a status-lookup artefact)",
         "name_ru": "Сообщение не найдено", "status_class": "other", "final": None}
    ]


def test_codes_table_per_account_and_in_the_union(tmp_path):
    layout = Layout(tmp_path / "data", account="acme")
    warehouse = Warehouse(layout)
    marts = Marts(warehouse)
    write_day(layout, DAY1, failure_day(DAY1, Ids()))
    with warehouse.connect() as conn:
        assert marts.write_codes(conn) == len(CODES)
        assert marts.write_codes(conn) == len(CODES)  # rewritten, not appended
        spam = conn.execute("SELECT name_en FROM smsc_acme.smsc_codes WHERE kind = 'err' AND code = 253").fetchall()
        assert spam == [("spam filter",)]
        marts.replace_failure_reasons(conn, ["sms"], DAY1, DAY1)
        assert conn.execute("SELECT DISTINCT account FROM smsc_all.smsc_codes").fetchall() == [("acme",)]
        assert conn.execute(
            "SELECT account, sum(messages) FROM smsc_all.failure_reasons GROUP BY ALL"
        ).fetchall() == [("acme", 7)]


# -- contract and exactness ---------------------------------------------------------------------------------


def test_tables_match_their_contract(setup):
    layout, marts, conn = setup
    ids = Ids()
    write_day(layout, DAY1, latency_day(DAY1, ids), failure_day(DAY1, ids), *sender_day1(ids))
    marts.replace_latency(conn, ["sms"], DAY1, DAY1)
    marts.replace_failure_reasons(conn, ["sms"], DAY1, DAY1)
    marts.replace_sender_daily(conn, ["sms"], DAY1, DAY1)
    marts.rebuild_sender_totals(conn)
    for table, columns in MART_COLUMNS.items():
        described = conn.execute(
            "SELECT column_name, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'smsc' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        assert described == [(c.name, "NO" if c.required else "YES") for c in columns], table
        assert all(c.description for c in columns)
        arrow = marts.read_arrow(conn, table, DAY1, DAY1)
        assert arrow.schema == mart_schema(table) and arrow.num_rows > 0, table


@pytest.mark.parametrize("cost", ["29", "0.000005", "-0.000005", "10.000001", "-7.333333", "999999999999.999999"])
@pytest.mark.parametrize("n", [1, 2, 3, 6, 7])
def test_exact_ratio_rounds_half_away_from_zero(cost, n):
    expected = (D(cost) / n).quantize(D("0.000001"), rounding=ROUND_HALF_UP)  # ROUND_HALF_UP: away from zero
    (got,) = duckdb.execute(f"SELECT {exact_ratio('c', 'n')} FROM (SELECT ?::DECIMAL(38, 6) AS c, ?::BIGINT AS n)",
                            [cost, n]).fetchone()
    assert got == expected
    assert duckdb.execute(f"SELECT {exact_ratio('1.5', '0')}").fetchone() == (None,)
