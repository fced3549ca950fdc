"""Every row the server returned is stored or accounted for; odd values are rejected by name; the newest
version of a row wins (issue 8, items 1, 6 and 7)."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from smsc_dagster.core import day_bounds
from smsc_dagster.storage.contract import RowContractError, rows_to_table
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import pipeline, row

ALMATY = ZoneInfo("Asia/Almaty")
MOSCOW = ZoneInfo("Europe/Moscow")
FETCHED = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
CONTRACT_ERROR = "smsc_dagster.storage.contract.RowContractError"


class TamperedAccount(SimulatedAccount):
    """A simulated account whose server misbehaves on purpose, on top of the generated history.

    ``patch``: int_id -> fields rewritten in every row served with that int_id (a re-read that differs).
    ``replace``: int_id -> the rows served in its place on its page (copies of it, in the given order).
    ``resend``: rows added to every page requested with a ``prev_id`` (a server ignoring the cursor for them).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.patch: dict[int, dict] = {}
        self.replace: dict[int, list[dict]] = {}
        self.resend: list[dict] = []

    def history(self, start_ts, end_ts, *, now, channel="sms", cnt=None, prev_id=None, **kwargs):
        rows = super().history(start_ts, end_ts, now=now, channel=channel, cnt=cnt, prev_id=prev_id, **kwargs)
        if cnt is None:  # the ground truth (expected_rows): untampered
            return rows
        served = []
        for r in rows:
            key = int(r["int_id"])
            served.extend(dict(c) for c in self.replace.get(key, [{**r, **self.patch.get(key, {})}]))
        if prev_id is not None:
            served.extend(dict(r) for r in self.resend)
        return served


def hashes(data_dir) -> dict[str, str]:
    return {
        str(f.relative_to(data_dir)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted((data_dir / "sms_history").rglob("*.parquet"))
    }


def history_metadata(result, day: str) -> dict:
    """The run's totals (an observation of the history asset) with ``day``'s own figures."""
    event = next(
        e for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "sms_history" and e.materialization.partition == day
    )
    observation = next(
        e for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION" and e.asset_key.path[-1] == "sms_history"
        and "run_rows" in e.event_specific_data.asset_observation.metadata
    )
    return {
        **{k: v.value for k, v in observation.event_specific_data.asset_observation.metadata.items()},
        **{k: v.value for k, v in event.materialization.metadata.items()},
    }


def failure_message(result) -> str:
    error = next(e for e in result.all_events if e.is_step_failure).event_specific_data.error
    return (error.cause or error).message.strip()


def table(*rows, timezone: str = "Asia/Almaty"):
    return rows_to_table(list(rows), channel="sms", currency="KZT", timezone=timezone, fetched_at=FETCHED)


# -- item 1: rows outside the partitions are counted; rows outside the request fail the run ---------------


def test_rows_of_the_extra_server_day_are_dropped_and_counted(tmp_path, clock):
    """Partition 2026-10-20 (Almaty, UTC+5) asks the Moscow (UTC+3) days 19.10-20.10: 2 h of server day
    before the partition and 2 h after it come back and must be accounted for."""
    day_start = int(dt.datetime(2026, 10, 20, tzinfo=ALMATY).timestamp())
    day_end = day_start + 86_400
    rows = [
        row(3_000_000_001, int(dt.datetime(2026, 10, 19, tzinfo=MOSCOW).timestamp())),  # server day 1, 00:00
        row(3_000_000_002, day_start - 1),
        row(3_000_000_003, day_start, message="first second of the partition"),
        row(3_000_000_004, day_end - 1, message="last second of the partition"),
        row(3_000_000_005, day_end),
        row(3_000_000_006, int(dt.datetime(2026, 10, 21, tzinfo=MOSCOW).timestamp()) - 1),  # server day 2, 23:59:59
    ]
    account = SimulatedAccount(seed=81, messages_per_day=0, extra_rows=rows)
    with pipeline(tmp_path, account, clock=clock) as p:
        result = p.run("2026-10-20")
        stored = [r["int_id"] for r in p.partition("2026-10-20")]
        served = sum(r.rows for r in p.sim.history_requests())
    meta = history_metadata(result, "2026-10-20")
    assert served == 6
    assert stored == [3_000_000_004, 3_000_000_003]
    assert (meta["run_rows"], meta["rows_outside_partitions"], meta["duplicate_rows"]) == (2, 4, 0)


BAD_TIMES = [
    (0, "send_timestamp=0 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
    (-1, "send_timestamp=-1 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
    ("0", "send_timestamp='0' is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
    (4_102_444_800, "send_timestamp=4102444800 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
    (4_133_980_800, "send_timestamp=4133980800 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
    (10**14, "send_timestamp=100000000000000 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"),
]


@pytest.mark.parametrize("value, problem", BAD_TIMES, ids=["0", "-1", "str0", "2100-01-01", "2101", "1e14"])
def test_a_reread_row_with_an_insane_send_time_fails_the_run_naming_it_and_nothing_stored_changes(
    tmp_path, clock, value, problem
):
    account = TamperedAccount(seed=82, messages_per_day=600)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-19", "2026-10-21").success
        before = hashes(p.data_dir)
        victim = p.partition("2026-10-19")[-1]["int_id"]  # the partitions' oldest row: on a later page
        truth = p.sim.expected_rows(*day_bounds(dt.date(2026, 10, 18), dt.date(2026, 10, 21), "Europe/Moscow"))
        page = 1 + [int(r["int_id"]) for r in truth].index(victim) // 1000
        account.patch[victim] = {"send_timestamp": value}
        result = p.run("2026-10-19", "2026-10-21", raise_on_error=False)
        requests = len(p.sim.history_requests())
        after = hashes(p.data_dir)
        still_there = victim in [r["int_id"] for r in p.partition("2026-10-19")]
    assert not result.success
    assert failure_message(result) == (
        f"{CONTRACT_ERROR}: row with int_id={victim}: {problem}; the row cannot be filed into its day"
    )
    assert (len(truth), page, requests) == (2400, 2, 3 + 2)  # the second walk stopped at the victim's page
    assert len(before) == 3 and after == before and still_there


@pytest.mark.parametrize(
    "when", [dt.datetime(2026, 10, 25, 12), dt.datetime(2026, 10, 21, 21), dt.datetime(2026, 10, 17, 20, 59, 59)]
)
def test_a_row_outside_the_requested_server_days_fails_the_run_naming_it_and_nothing_stored_changes(
    tmp_path, clock, when
):
    seconds = int(when.replace(tzinfo=dt.timezone.utc).timestamp())
    account = TamperedAccount(seed=83, messages_per_day=600)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-19", "2026-10-21").success
        before = hashes(p.data_dir)
        victim = p.partition("2026-10-19")[-1]["int_id"]
        account.patch[victim] = {"send_timestamp": seconds}
        result = p.run("2026-10-19", "2026-10-21", raise_on_error=False)
        after = hashes(p.data_dir)
    start, end = day_bounds(dt.date(2026, 10, 18), dt.date(2026, 10, 21), "Europe/Moscow")
    assert not result.success
    assert failure_message(result) == (
        f"smsc_dagster.core.errors.SMSCDataError: row with int_id={victim}: send_timestamp={seconds} "
        f"({when:%Y-%m-%d %H:%M:%S} UTC) is outside the server days the run requested ([{start}, {end}) = "
        "2026-10-17 21:00:00 to 2026-10-21 21:00:00 UTC); SMSC returned a row it was not asked for, so the run "
        "stops and every stored partition stays as it was"
    )
    assert len(before) == 3 and after == before


def test_last_timestamp_zero_or_empty_means_no_change_yet_and_an_insane_one_is_named():
    send = int(dt.datetime(2026, 10, 20, 12, tzinfo=ALMATY).timestamp())
    rows = [row(11, send), row(10, send, last_timestamp=0), row(9, send, last_timestamp="0"),
            row(8, send, last_timestamp=""), row(7, send, last_timestamp=None)]
    changed = table(*rows).column("status_changed_at").to_pylist()
    assert changed == [dt.datetime.fromtimestamp(send + 30, dt.timezone.utc), None, None, None, None]
    with pytest.raises(RowContractError) as negative:
        table(row(12, send), row(13, send, last_timestamp=-30))
    assert str(negative.value) == (
        "row with int_id=13: last_timestamp=-30 is not a Unix time between 2000-01-01 and 2100-01-01 (UTC)"
    )
    with pytest.raises(RowContractError) as huge:
        table(row(14, send, last_timestamp=10**20))
    assert str(huge.value) == "row with int_id=14: last_timestamp=100000000000000000000 does not fit int64"


# -- item 6: odd costs are rejected by name, the accepted forms are exact --------------------------------


@pytest.mark.parametrize(
    "cost, expected",
    [("1e3", Decimal("1000")), ("1.5E2", Decimal("150")), ("14,50", Decimal("14.5")), ("0,005", Decimal("0.005")),
     ("1234,500", Decimal("1234.5")), (" 2.50 ", Decimal("2.5")), (1000.0, Decimal("1000"))],
)
def test_accepted_cost_forms_are_exact(cost, expected):
    send = int(dt.datetime(2026, 10, 20, 12, tzinfo=ALMATY).timestamp())
    assert table(row(21, send), row(20, send, cost=cost)).column("cost").to_pylist() == [Decimal("14.5"), expected]


@pytest.mark.parametrize(
    "cost, problem",
    [
        ("NaN", "has a cost that is not a finite number: 'NaN'"),
        ("Infinity", "has a cost that is not a finite number: 'Infinity'"),
        ("-Infinity", "has a cost that is not a finite number: '-Infinity'"),
        ("sNaN", "has a cost that is not a finite number: 'sNaN'"),
        (float("nan"), "has a cost that is not a finite number: 'nan'"),
        (float("inf"), "has a cost that is not a finite number: 'inf'"),
        ("1,500", "has an ambiguous cost '1,500': a thousands separator or a decimal comma? "
                  "Refusing to guess between the two readings"),
        ("1,500,000", "has a cost that is not a number: '1,500,000' (commas are not thousands separators here)"),
        ("1,500.25", "has a cost that is not a number: '1,500.25' (commas are not thousands separators here)"),
        ("1_000", "has a cost that is not a number: '1_000'"),
        ("1e400", "has a cost of 10^12 or more, beyond decimal(18,6): '1e400'"),
        ("0.0000001", "has a cost with more than 6 decimals: '0.0000001'"),
    ],
)
def test_odd_costs_are_rejected_naming_the_row(cost, problem):
    send = int(dt.datetime(2026, 10, 20, 12, tzinfo=ALMATY).timestamp())
    with pytest.raises(RowContractError) as error:
        table(row(31, send), row(30, send, cost=cost))
    assert str(error.value) == f"row 2 (int_id=30) {problem}"


def test_a_reread_cost_of_infinity_fails_the_run_naming_the_row_and_nothing_stored_changes(tmp_path, clock):
    account = TamperedAccount(seed=84, messages_per_day=300)
    with pipeline(tmp_path, account, clock=clock) as p:
        assert p.run("2026-10-20").success
        before = hashes(p.data_dir)
        victim = p.partition("2026-10-20")[3]["int_id"]
        account.patch[victim] = {"cost": "Infinity"}
        result = p.run("2026-10-20", raise_on_error=False)
        after = hashes(p.data_dir)
    index = 1 + next(i for i, r in enumerate(p.sim.account.rows_between(
        *day_bounds(dt.date(2026, 10, 19), dt.date(2026, 10, 20), "Europe/Moscow"), now=clock.now()))
        if int(r["int_id"]) == victim)
    assert not result.success
    assert failure_message(result) == (
        f"{CONTRACT_ERROR}: row {index} (int_id={victim}) has a cost that is not a finite number: 'Infinity'"
    )
    assert len(before) == 1 and after == before


# -- item 7: the newest version of a row wins, and duplicates are counted --------------------------------


def test_the_newest_copy_of_a_row_wins_across_and_within_pages_and_duplicates_are_counted(tmp_path, clock):
    account = TamperedAccount(seed=85, messages_per_day=600)  # 1200 server rows: two pages
    with pipeline(tmp_path, account, clock=clock) as p:
        truth = p.truth("2026-10-20")
        a, b, c, d = truth[0], truth[5], truth[10], truth[15]  # all on the first page (the newest 1000)
        newer = lambda r, **f: {**r, "last_timestamp": r["last_timestamp"] + 3600, **f}  # noqa: E731
        # a: re-sent on page 2 with a newer status; d: re-sent on page 2 with an older one
        account.resend = [newer(a, status=20, err=1), {**d, "last_timestamp": d["last_timestamp"] - 60, "status": 0}]
        # b: twice on page 1, the newer copy second; c: a copy without last_timestamp first
        account.replace = {
            int(b["int_id"]): [b, newer(b, status=22, err=249)],
            int(c["int_id"]): [{**c, "last_timestamp": 0, "status": 25}, c],
        }
        result = p.run("2026-10-20")
        stored = {r["int_id"]: r for r in p.partition("2026-10-20")}
        history = p.sim.history_requests()
        api_rows = len(p.sim.expected_rows(*day_bounds(dt.date(2026, 10, 19), dt.date(2026, 10, 20), "Europe/Moscow")))
    meta = history_metadata(result, "2026-10-20")
    assert [r.rows for r in history] == [1002, 202]
    assert sorted(stored, reverse=True) == [int(r["int_id"]) for r in truth]
    pick = lambda r: (r["status"], r["err"], int(r["status_changed_at"].timestamp()))  # noqa: E731
    assert pick(stored[int(a["int_id"])]) == (20, 1, a["last_timestamp"] + 3600)
    assert pick(stored[int(b["int_id"])]) == (22, 249, b["last_timestamp"] + 3600)
    assert pick(stored[int(c["int_id"])]) == (c["status"], c["err"], c["last_timestamp"])
    assert pick(stored[int(d["int_id"])]) == (d["status"], d["err"], d["last_timestamp"])
    assert meta["duplicate_rows"] == 4
    assert meta["run_rows"] == len(truth) and meta["rows_outside_partitions"] == api_rows - len(truth)


def test_a_client_alone_gets_each_row_once_and_the_copies_apart(make_client, clock):
    account = TamperedAccount(seed=86, messages_per_day=600)
    with SMSCSimulator(account, clock=clock) as sim:
        truth = sim.expected_rows(*account.day_range(dt.date(2026, 10, 19), dt.date(2026, 10, 20)))
        first, twin = truth[0], truth[7]
        account.resend = [{**first, "status": 20}]
        account.replace = {int(twin["int_id"]): [{**twin, "last_timestamp": 0}, twin]}
        pages = list(make_client(sim).iter_history(dt.date(2026, 10, 19), dt.date(2026, 10, 20)))
    assert [row for page in pages for row in page.rows] == truth
    assert [page.repeated for page in pages] == [[{**twin, "last_timestamp": 0}], [{**first, "status": 20}]]
