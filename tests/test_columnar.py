"""The fast ingest path (issue 11, item 3) changes nothing but speed: orjson's parse of real simulator bodies
gives the objects json.loads gives, tables and committed files come out byte for byte as before, odd bodies
and rows fail with the same named errors, and staged files left without fsync are checked before a resume
trusts them."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests

from smsc_dagster.core import SMSCError
from smsc_dagster.core import client as client_module
from smsc_dagster.core import response
from smsc_dagster.storage import contract, partitions
from smsc_dagster.storage.contract import HISTORY_SCHEMA, RowContractError, rows_to_table
from smsc_dagster.storage.partitions import (
    PartitionStore,
    StagedIngest,
    file_metadata,
    replace_file_metadata,
    write_table_atomic,
)
from smsc_dagster.testing import SimulatedAccount, SMSCSimulator

from .pipeline_support import outcome, row, same_objects

FETCHED = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)
DAYS = (dt.date(2026, 10, 19), dt.date(2026, 10, 21))
SEND = int(dt.datetime(2026, 10, 20, 12, tzinfo=dt.timezone.utc).timestamp())



def raw(int_id, **fields) -> dict:
    """A documented row whose ``int_id`` is exactly ``int_id`` (a number or a string)."""
    return {**row(0, SEND, **fields), "int_id": int_id}


# Rows a real server might send beside the generated ones: int_id as strings, unknown fields of every JSON
# kind, numbers where strings are usual, Cyrillic and emoji, a cost as a JSON number.
ODD_BUT_VALID = [
    raw("1900000009", id="ord-1", crc="abc", tariff={"zone": "KZ", "parts": [1, 2]}),
    raw(1_900_000_008, id=42, crc=1234567890123, note="Сәлем 👋", flag=True, ratio=0.5, none_field=None),
    raw(1_900_000_007, phone=77011234567, cost=14.5, mccmnc=40101, message="emoji 😀 \u2028 \"quoted\""),
    raw("1900000006", cost="1e3", last_timestamp=0, extra_list=["a", 1, None]),
]


def post(sim, *, channel: str = "sms", charset: str = "utf-8", prev_id: int | None = None) -> requests.Response:
    """One history request over HTTP, with the client's parameters."""
    params = {
        "get_messages": 1, "format": 8 if channel == "email" else 0, "cnt": 1000, "fmt": 3, "charset": charset,
        "start": DAYS[0].strftime("%d.%m.%Y"), "end": DAYS[1].strftime("%d.%m.%Y"),
        "login": sim.account.login, "psw": sim.account.password,
    }
    if prev_id is not None:
        params["prev_id"] = prev_id
    return requests.post(f"{sim.base_url}/sys/get.php", data=params, timeout=30)


def recorded_pages(sim, channel: str, charset: str) -> list[tuple[bytes, str]]:
    """Every page of the window as the server sent it (bytes and Content-Type), walked like the client."""
    pages, prev_id = [], None
    while True:
        answer = post(sim, channel=channel, charset=charset, prev_id=prev_id)
        pages.append((answer.content, answer.headers["Content-Type"]))
        data = response.parse_json_body(response.decode_body(answer.content, answer.headers["Content-Type"]))
        if len(data) < 1000:
            return pages
        prev_id = min(int(r["int_id"]) for r in data)


def standard(body: bytes, content_type: str):
    """What the client did before the fast path: decode by the header, then json.loads."""
    return response.parse_json_body(response.decode_body(body, content_type))


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, **partitions.COMMITTED_WRITE_OPTIONS)
    return sink.getvalue()


@pytest.fixture(scope="module")
def bodies(tmp_path_factory) -> dict[tuple[str, str], list[tuple[bytes, str]]]:
    """Real bodies over HTTP: SMS (three pages) and e-mail, in UTF-8, windows-1251 and KOI8-R."""
    account = SimulatedAccount(
        seed=111, messages_per_day=800, emails_per_day=40, timezone="Europe/Moscow", extra_rows=ODD_BUT_VALID
    )
    with SMSCSimulator(account, rate_limits=False) as sim:
        return {
            (channel, charset): recorded_pages(sim, channel, charset)
            for channel in ("sms", "email")
            for charset in ("utf-8", "windows-1251", "koi8-r")
        }


# -- parse: the same objects, by the faster route ------------------------------------------------------------


def test_simulator_pages_parse_to_the_same_objects_and_take_the_fast_route(bodies):
    fast = 0
    for (channel, charset), pages in bodies.items():
        for body, content_type in pages:
            assert charset in content_type
            got, expected = outcome(response.parse_body, body, content_type), outcome(standard, body, content_type)
            assert got[0] == expected[0] == "ok", (channel, charset)
            assert same_objects(got[1], expected[1]), (channel, charset)
            fast += response._fast_array(body, content_type) is not None
    # Every page that is a JSON array took orjson's route (the rest are error 3 objects after a full page).
    arrays = sum(body.startswith(b"[") for pages in bodies.values() for body, _ in pages)
    assert fast == arrays >= 6 * 2


ODD_BODIES = [
    (b'[{"int_id": 1, "cost": NaN}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "cost": Infinity}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "cost": -Infinity}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "cost": 1E400}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "last_timestamp": 100000000000000000000}]', "application/json; charset=utf-8"),
    (b'[{"int_id": -9223372036854775809}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 18446744073709551615}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "1234567890123456789"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "\\ud800"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "\\ud83d\\ude00"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "\xed\xa0\x80"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "\xff"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "\x98"}]', "application/json; charset=windows-1251"),
    (b'[{"int_id": 1, "message": "\xcf\xf0\xe8"}]', "application/json"),  # no charset: SMSC's windows-1251
    (b'[{"int_id": 1, "message": "\xf0\xd2\xc9"}]', "application/json; charset=koi8-r"),
    (b'[{"int_id": 1, "int_id": "2"}]', "application/json; charset=utf-8"),
    (b'[{"int_id": 1, "message": "a\tb"}]', "application/json; charset=utf-8"),
    (b"\xef\xbb\xbf[1]", "application/json; charset=utf-8"),
    (b" [1]", "application/json; charset=utf-8"),
    (b"[1] trailing", "application/json; charset=utf-8"),
    (b'[{"int_id": 1}', "application/json; charset=utf-8"),
    (b"[", "application/json; charset=utf-8"),
    (b"[]", "application/json; charset=utf-8"),
    (b'{"error": "message not found", "error_code": 3}', "application/json; charset=utf-8"),
    (b'{"error": "authorise error", "error_code": 2}', "application/json; charset=utf-8"),
    (b'"just a string"', "application/json; charset=utf-8"),
    (b"<html><body>502 Bad Gateway</body></html>", "text/html; charset=utf-8"),
    (b'[{"int_id": 1}]', "application/json; charset=utf-16"),
    ("[{\"int_id\": 1, \"message\": \"Привет\"}]".encode("utf-16"), "application/json; charset=utf-16"),
]


@pytest.mark.parametrize("body, content_type", ODD_BODIES)
def test_odd_bodies_give_the_same_objects_or_the_same_named_error(body, content_type):
    got, expected = outcome(response.parse_body, body, content_type), outcome(standard, body, content_type)
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert same_objects(got[1], expected[1])
    else:
        assert got == expected


def test_bodies_orjson_would_read_differently_are_left_to_json():
    # orjson reads an integer beyond 64 bits as a float; json keeps it: such a body never takes the fast route.
    big = b'[{"int_id": 1, "last_timestamp": 100000000000000000000}]'
    assert response._fast_array(big, "application/json; charset=utf-8") is None
    data = response.parse_body(big, "application/json; charset=utf-8")
    assert data[0]["last_timestamp"] == 10**20 and type(data[0]["last_timestamp"]) is int
    with pytest.raises(RowContractError) as error:
        rows_to_table([row(14, SEND, last_timestamp=data[0]["last_timestamp"])], channel="sms", currency="KZT",
                      timezone="UTC", fetched_at=FETCHED)
    assert str(error.value) == "row with int_id=14: last_timestamp=100000000000000000000 does not fit int64"


# -- rows: the same tables and files -----------------------------------------------------------------------


def test_tables_from_the_fast_path_are_identical_to_the_standard_path(bodies):
    seen_extra = seen_string_ids = 0
    for (channel, charset), pages in bodies.items():
        for body, content_type in pages:
            if not body.startswith(b"["):
                continue
            convert = lambda rows: rows_to_table(  # noqa: E731
                rows, channel=channel, currency="KZT", timezone="Asia/Almaty", fetched_at=FETCHED
            )
            fast, slow = convert(response.parse_body(body, content_type)), convert(standard(body, content_type))
            assert fast.schema.equals(slow.schema, check_metadata=True)
            assert fast.equals(slow)
            assert parquet_bytes(fast) == parquet_bytes(slow)
            seen_extra += fast["extra"].null_count < fast.num_rows
            seen_string_ids += any(isinstance(r["int_id"], str) for r in standard(body, content_type))
    assert seen_extra and seen_string_ids  # unknown fields and string int_ids were among the pages


def test_the_conversion_reads_rows_of_any_mapping_and_dicts_alike():
    rows = [row(3, SEND), row(2, SEND, note="x"), raw("1")]
    convert = lambda rows: rows_to_table(rows, channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)  # noqa: E731
    class Row(dict):
        pass
    assert convert(rows).equals(convert([Row(r) for r in rows]))
    # A row lacking a field reads it as NULL on either route.
    partial = [row(3, SEND), {k: v for k, v in row(2, SEND).items() if k != "region"}]
    table = convert(partial)
    assert table["region"].to_pylist() == ["Алматы", None]
    assert table.equals(convert([Row(r) for r in partial]))


@pytest.mark.parametrize(
    "values",
    [[1, 2, 3], [1, "a", None], [7, "ord-7"], [2**70, 1], [True, 1], [1.5, 2], ["x", {"a": [1, "é"]}],
     [-5, 0, 2**63 - 1], [-(2**63)], [1, None], [None, None], ["só", "stríng"]],
)
def test_numbers_among_the_strings_become_the_text_they_always_became(values):
    """id and crc arrive as numbers or strings: each kind of page takes its own shortcut to the same text."""
    rows = [{**row(9 - i, SEND), "id": v, "crc": v} for i, v in enumerate(values)]
    expected = [None if v is None else v if isinstance(v, str) else str(v) if type(v) is int else json.dumps(v)
                for v in values]
    table = rows_to_table(rows, channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)
    assert table["id"].to_pylist() == expected and table["crc"].to_pylist() == expected


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cost", float("nan"), "row 2 (int_id=30) has a cost that is not a finite number: 'nan'"),
        ("cost", "1,500", "row 2 (int_id=30) has an ambiguous cost '1,500': a thousands separator or a decimal "
                          "comma? Refusing to guess between the two readings"),
        ("send_timestamp", 0, "row with int_id=30: send_timestamp=0 is not a Unix time between 2000-01-01 and "
                              "2100-01-01 (UTC); the row cannot be filed into its day"),
        ("int_id", None, "row 2 has no int_id (int_id=None): int_id is required to deduplicate and page"),
        ("status", "x", "row 2 has a non-integer status: 'x'"),
    ],
)
def test_odd_rows_in_a_fast_page_fail_with_the_same_named_error(field, value, message):
    """A page whose body took orjson's route, with one odd row, fails exactly as the standard path does."""
    rows = [row(31, SEND), {**row(30, SEND), field: value}]
    body = json.dumps(rows, ensure_ascii=False).encode("utf-8")
    errors = []
    for parse in (response.parse_body, standard):
        with pytest.raises(RowContractError) as error:
            rows_to_table(parse(body, "application/json; charset=utf-8"), channel="sms", currency="KZT",
                          timezone="UTC", fetched_at=FETCHED)
        errors.append(str(error.value))
    assert errors == [message, message]


# -- the client's row filter ---------------------------------------------------------------------------------


def slow_new_rows(client, data, prev_id, number):
    """The row filter without its fast path."""
    fast = client_module._plain_int_ids
    client_module._plain_int_ids = lambda data: None
    try:
        return client._new_rows(data, prev_id, number)
    finally:
        client_module._plain_int_ids = fast


@pytest.mark.parametrize(
    "ids, prev_id",
    [
        ([9, 8, 7], None), (["9", 8, "7"], 10), ([9, 8, 7], 9), ([9, 9, 8], None), ([7, 8, 9], None), ([], None),
        ([" 9", 8], None), (["٩", 8], None), ([9.0, 8], None), ([True, 0], None), ([-1, -2], None), (["09", 8], None),
    ],
)
def test_the_fast_row_filter_keeps_and_repeats_what_the_loop_does(tmp_path, ids, prev_id):
    client = client_module.SMSCClient(
        login="demo", password="demo-password", base_url="http://127.0.0.1:9", budget_path=str(tmp_path / "b.sqlite3")
    )
    data = [raw(i, last_timestamp=SEND + 30 + k) for k, i in enumerate(ids)]
    assert outcome(client._new_rows, data, prev_id, 1) == outcome(slow_new_rows, client, data, prev_id, 1)


def test_a_client_walk_gives_the_same_pages_with_and_without_the_fast_paths(make_client, clock, monkeypatch):
    account = SimulatedAccount(seed=112, messages_per_day=700, timezone="Europe/Moscow", extra_rows=ODD_BUT_VALID)
    with SMSCSimulator(account, clock=clock) as sim:
        fast = list(make_client(sim).iter_history(*DAYS))
        monkeypatch.setattr(client_module, "_plain_int_ids", lambda data: None)
        monkeypatch.setattr(client_module, "parse_body", lambda b, ct, s: standard(b, ct))
        slow = list(make_client(sim).iter_history(*DAYS))
    assert len(fast) == len(slow) >= 3
    for a, b in zip(fast, slow):
        assert same_objects(a.rows, b.rows) and same_objects(a.repeated, b.repeated)
        assert (a.cursor, a.prev_id, a.next_prev_id, a.last) == (b.cursor, b.prev_id, b.next_prev_id, b.last)


# -- staging and commit --------------------------------------------------------------------------------------


def at(day: int, hour: int) -> int:
    return int(dt.datetime(2026, 10, day, hour, tzinfo=dt.timezone.utc).timestamp())


def stage(ingest: StagedIngest, cursor, *rows) -> None:
    ingest.add_page(rows_to_table(list(rows), channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED), cursor)


def test_a_committed_file_only_given_its_metadata_is_byte_for_byte_a_rewritten_one(tmp_path):
    table = rows_to_table([row(i, at(3, 1) + i, note="x" if i % 7 == 0 else None) for i in range(3000, 1, -1)],
                          channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)
    meta = {"paging_complete": True, "rows": table.num_rows, "date": "2026-10-03", "run_id": "r"}
    spliced, rewritten = tmp_path / "a.parquet", tmp_path / "b.parquet"
    write_table_atomic(table, spliced, sync=False)
    assert replace_file_metadata(spliced, meta)
    write_table_atomic(table, rewritten, metadata=meta)
    assert spliced.read_bytes() == rewritten.read_bytes()
    assert file_metadata(spliced) == meta and pq.read_table(spliced).equals(table.replace_schema_metadata(
        pq.read_table(rewritten).schema.metadata))


def test_days_merged_during_the_walk_commit_the_same_files_as_days_merged_at_the_end(tmp_path):
    def run(base, *, keep_summaries: bool) -> dict[str, bytes]:
        store = PartitionStore(base, "sms_history")
        ingest = StagedIngest(store, dt.date(2026, 10, 1), dt.date(2026, 10, 3), "UTC", signature={})
        ingest.resume_point()
        stage(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
        stage(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, at(2, 23), note="n"))
        stage(ingest, (dt.date(2026, 10, 3), 4), row(5, at(2, 1)), row(4, at(1, 12)))
        if not keep_summaries:
            ingest._summaries.clear()  # as after a resume: every day is read back and rewritten
        stats = ingest.commit({"paging_complete": True, "read_at": 1.0})
        assert {d.day: s.rows for d, s in stats.items()} == {1: 1, 2: 2, 3: 3}
        return {p.parent.name: p.read_bytes() for p in sorted(store.root.glob("date=*/data.parquet"))}

    assert run(tmp_path / "a", keep_summaries=True) == run(tmp_path / "b", keep_summaries=False)


def test_a_resume_reads_back_every_staged_file_and_starts_over_when_one_is_damaged(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    make = lambda: StagedIngest(store, dt.date(2026, 10, 1), dt.date(2026, 10, 3), "UTC", signature={"k": 1})  # noqa: E731
    ingest = make()
    ingest.resume_point()
    stage(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
    stage(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, at(2, 23)))  # day 3 consolidated

    intact = make()
    assert intact.resume_point() == (dt.date(2026, 10, 3), 6) and intact.restart_reason is None

    # A page file written after the last saved state (the run died before saving it) is removed on resume.
    orphan = ingest.dir / "date=2026-10-02" / "page-000003.arrow"
    orphan.write_bytes((ingest.dir / "date=2026-10-02" / "page-000002.arrow").read_bytes())
    assert make().resume_point() == (dt.date(2026, 10, 3), 6) and not orphan.exists()

    # A listed file cut short (a power failure before it reached the disk): the walk starts over.
    page = ingest.dir / "date=2026-10-02" / "page-000002.arrow"
    page.write_bytes(page.read_bytes()[:-40])
    damaged = make()
    assert damaged.resume_point() is None
    assert damaged.restart_reason == "a staged file of 2026-10-02 is missing or damaged"
    assert not ingest.dir.exists()


def test_a_run_killed_while_merging_a_day_resumes_with_the_merged_file(tmp_path):
    """The state is saved before a day's pages are merged: killed after the merged file is in place but before
    the next save, the resumed run finds the day whole in its merged form."""
    store = PartitionStore(tmp_path, "sms_history")
    make = lambda: StagedIngest(store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "UTC", signature={})  # noqa: E731
    ingest = make()
    ingest.resume_point()
    stage(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
    before_merge = json.dumps(ingest.saved_state())
    stage(ingest, (dt.date(2026, 10, 3), 6), row(7, at(3, 1)), row(6, at(2, 23)))
    # What the disk holds if the process died right after merging day 3 (its pages are gone): the state saved
    # before the merge lists page 1 of day 3, page 2 of days 2 and 3, and the merge under way.
    state = ingest.saved_state()
    assert state["consolidating"] == ["2026-10-03"]
    state["staged"]["2026-10-03"] = json.loads(before_merge)["staged"]["2026-10-03"]
    state["staged"]["2026-10-03"]["pages"]["2"] = 1
    ingest.state_path.write_text(json.dumps(state))  # the journal as one line
    resumed = make()
    assert resumed.resume_point() == (dt.date(2026, 10, 3), 6)
    stage(resumed, (dt.date(2026, 10, 1), None), row(5, at(2, 1)))
    days = resumed.commit({})
    assert store.read(dt.date(2026, 10, 3)).column("int_id").to_pylist() == [9, 8, 7]
    assert store.read(dt.date(2026, 10, 2)).column("int_id").to_pylist() == [6, 5]
    assert days.duplicate_rows == 0


def test_staged_page_files_carry_page_checksums_and_committed_ones_too(tmp_path):
    store = PartitionStore(tmp_path, "sms_history")
    ingest = StagedIngest(store, dt.date(2026, 10, 3), dt.date(2026, 10, 3), "UTC", signature={})
    ingest.resume_point()
    stage(ingest, (dt.date(2026, 10, 3), 8), row(9, at(3, 20)), row(8, at(3, 9)))
    page = ingest.dir / "date=2026-10-03" / "page-000001.arrow"
    data = bytearray(page.read_bytes())
    data[len(data) // 3] ^= 0xFF  # one flipped bit in a data page
    page.write_bytes(bytes(data))
    assert partitions._whole_rows(page) is None  # the checksum catches it
    fresh = StagedIngest(store, dt.date(2026, 10, 3), dt.date(2026, 10, 3), "UTC", signature={})
    assert fresh.resume_point() is None  # same range and signature, but a damaged page: the walk starts over
    assert fresh.restart_reason == "a staged file of 2026-10-03 is missing or damaged"


def test_the_committed_format_keeps_every_column_readable_by_duckdb(tmp_path):
    import duckdb

    store = PartitionStore(tmp_path, "sms_history")
    ingest = StagedIngest(store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "UTC", signature={})
    ingest.resume_point()
    stage(ingest, (dt.date(2026, 10, 3), 6), row(9, at(3, 20), cost="1.25"), row(6, at(2, 23), note="Сәлем"))
    stage(ingest, (dt.date(2026, 10, 1), None), row(5, at(2, 1), cost="0.005"))
    ingest.commit({"paging_complete": True})
    got = duckdb.sql(f"SELECT int_id, cost, extra FROM read_parquet('{store.glob}') ORDER BY int_id").fetchall()
    assert got == [(5, Decimal("0.005000"), None), (6, Decimal("14.500000"), '{"note": "Сәлем"}'),
                   (9, Decimal("1.250000"), None)]
    assert hashlib.sha256(store.path(dt.date(2026, 10, 3)).read_bytes()).hexdigest()  # a real file


def test_an_empty_page_and_an_error_3_page_stage_nothing(tmp_path):
    empty = response.parse_body(b"[]", "application/json; charset=utf-8")
    assert empty == []
    with pytest.raises(SMSCError) as error:
        response.parse_body(b'{"error": "message not found", "error_code": 3}', "application/json; charset=utf-8")
    assert error.value.code == 3
    table = rows_to_table(empty, channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)
    assert table.schema.equals(HISTORY_SCHEMA) and table.num_rows == 0


def test_a_commit_killed_while_moving_days_into_place_is_finished_not_redone_empty(tmp_path, monkeypatch):
    """Killed after some days were moved into place: the resumed run finds those days in the store (not in
    staging) and must neither rewrite them empty nor lose the rest."""
    store = PartitionStore(tmp_path, "sms_history")
    make = lambda: StagedIngest(store, dt.date(2026, 10, 2), dt.date(2026, 10, 3), "UTC", signature={})  # noqa: E731
    ingest = make()
    ingest.resume_point()
    stage(ingest, (dt.date(2026, 10, 3), 6), row(9, at(3, 20)), row(6, at(2, 23)))
    stage(ingest, (dt.date(2026, 10, 1), None), row(5, at(2, 1)))
    moved = []

    def die_after_one(day, staged_file):
        if moved:
            raise KeyboardInterrupt  # the process dies here
        moved.append(day)
        original(day, staged_file)

    original = store.commit
    monkeypatch.setattr(store, "commit", die_after_one)
    with pytest.raises(KeyboardInterrupt):
        ingest.commit({"run": 1})
    monkeypatch.setattr(store, "commit", original)
    assert moved == [dt.date(2026, 10, 2)] and store.days() == [dt.date(2026, 10, 2)]

    resumed = make()
    assert resumed.resume_point() == (dt.date(2026, 10, 1), None)
    days = resumed.commit({"run": 2})
    assert {d.isoformat(): s.rows for d, s in days.items()} == {"2026-10-02": 2, "2026-10-03": 1}
    assert store.read(dt.date(2026, 10, 2)).column("int_id").to_pylist() == [6, 5]
    assert store.read(dt.date(2026, 10, 3)).column("int_id").to_pylist() == [9]
    assert not resumed.dir.exists()


# -- one-pass field reading and digit ids (the conversion's and the row filter's shortcuts) -------------------


def test_rows_read_in_one_pass_give_the_table_the_per_field_reading_gives():
    """Rows with the same keys in the same order are read field by field from one zip over their values; rows
    in another key order, with a field missing or an extra one, take the per-field route: same table."""
    convert = lambda rows: rows_to_table(rows, channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)  # noqa: E731
    class Row(dict):  # not a plain dict: the per-row route, the reference
        pass
    same_order = [row(9, SEND, cost="1.25"), raw("8", id="ord-8", crc=77), row(7, SEND + 1, note="x")]
    same_order[2] = {k: same_order[2][k] for k in same_order[0]} | {"note": "x"}  # same keys first, one more
    uniform = [row(9, SEND, cost="1.25"), raw("8", id="ord-8", crc=77), row(7, SEND + 1)]
    reordered = [uniform[0], dict(reversed(list(uniform[1].items()))), uniform[2]]
    lacking = [{k: v for k, v in r.items() if k != "region"} for r in uniform]
    for rows in (uniform, reordered, lacking, same_order):
        table = convert(rows)
        assert table.equals(convert([Row(r) for r in rows]))
    table = convert(uniform)
    assert contract._fields_by_key(uniform) is not None and contract._fields_by_key(reordered) is None
    assert table["int_id"].to_pylist() == [9, 8, 7]
    assert table["id"].to_pylist()[1] == "ord-8" and table["crc"].to_pylist()[1] == "77"
    assert table["cost"].to_pylist()[0] == Decimal("1.25")
    assert table["extra"].to_pylist() == [None, None, None]
    assert convert(lacking)["region"].to_pylist() == [None, None, None]
    assert convert(same_order)["extra"].to_pylist() == [None, None, '{"note": "x"}']


@pytest.mark.parametrize(
    "values, expected",
    [
        ([9, "8", 7], [9, 8, 7]), (["09", 0], [9, 0]), ([], []), (("1", 2), [1, 2]),
        ([-1, 2], None), (["-1"], None), ([" 9"], None), (["٩"], None), ([True], None), ([9.0], None),
        (["", 1], None), (["1e3"], None), ([None, 1], None), (["+5"], None), (["1_000"], None),
    ],
)
def test_digit_ints_reads_only_plain_digits_and_numbers(values, expected):
    assert response.digit_ints(values) == expected
    if expected is not None:
        assert all(type(v) is int for v in response.digit_ints(values))


def test_int_ids_as_numbers_and_digit_strings_convert_to_the_exact_ids():
    rows = [raw("1977505000"), raw(1977504999), raw("0001977504998")]
    table = rows_to_table(rows, channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)
    assert table["int_id"].to_pylist() == [1977505000, 1977504999, 1977504998]
    with pytest.raises(RowContractError) as error:  # the shortcut declines; the named error is unchanged
        rows_to_table([raw("12"), raw("1x")], channel="sms", currency="KZT", timezone="UTC", fetched_at=FETCHED)
    assert str(error.value) == "row 2 has a non-integer int_id: '1x'"


def test_a_column_of_status_codes_is_classified_as_status_class_classifies_each():
    """The column-at-once classification (a lookup table over the classified range) agrees with
    ``status_class`` for every code around and inside that range, for the int32 extremes and for NULL."""
    codes = [None, -(2**31), 2**31 - 1, *range(-40, 60)]
    column = contract._status_classes(pa.array(codes, pa.int32()))
    assert column.type == pa.string() and column.null_count == 0
    assert column.to_pylist() == [contract.status_class(code) for code in codes]
