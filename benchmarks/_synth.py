"""Synthetic history partitions in the contract schema, generated with numpy/pyarrow (10 million rows in well
under a minute, where the simulator would need hours), cached between runs.

Layout and schema are those of committed partitions: ``{dir}/sms_history/date=YYYY-MM-DD/data.parquet``,
:data:`smsc_dagster.storage.contract.HISTORY_SCHEMA`, zstd, rows in descending ``int_id`` order. Operators, countries,
prices and status mix follow the simulator's account.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from smsc_dagster.storage.contract import COST_TYPE, HISTORY_SCHEMA, status_class
from smsc_dagster.storage.partitions import META_KEY
from smsc_dagster.testing.account import _COUNTRIES, _SENDERS, _SMS_TEXTS, STATUS_NAMES

STATUS_MIX = {1: 0.855, 20: 0.03, 22: 0.02, 23: 0.02, 25: 0.02, 3: 0.02, 24: 0.01, 0: 0.02, -1: 0.005}


def _vocab(values: list) -> pa.Array:
    return pa.array(values, pa.string())


def _operators():
    ops = []
    for country, weight, operators, regions in _COUNTRIES:
        for mccmnc, operator, price, _prefixes, _length in operators:
            ops.append((country, weight / len(operators), mccmnc, operator, Decimal(price), regions))
    return ops


def generate(root: Path, *, days: int, rows_per_day: int, last_day: dt.date, timezone: str, seed: int = 7) -> None:
    ops = _operators()
    weights = np.array([o[1] for o in ops])
    weights /= weights.sum()
    country_v = _vocab([o[0] for o in ops])
    mccmnc_v = _vocab([o[2] for o in ops])
    operator_v = _vocab([o[3] for o in ops])
    price_cents = np.array([int(o[4] * 100) for o in ops], dtype=np.int64)
    region_names: list[str] = []
    region_offset, region_count = [], []
    for o in ops:
        region_offset.append(len(region_names))
        region_count.append(len(o[5]))
        region_names += list(o[5])
    region_v = _vocab(region_names)
    region_offset_a, region_count_a = np.array(region_offset), np.array(region_count)
    codes = np.array(list(STATUS_MIX), dtype=np.int32)
    probs = np.array(list(STATUS_MIX.values()))
    probs /= probs.sum()
    status_name_v = _vocab([STATUS_NAMES[int(c)] for c in codes])
    status_class_v = _vocab([status_class(int(c)) for c in codes])
    sender_v = _vocab(list(_SENDERS))
    texts = [t.format(code="123456", order="100200", short="abc123", amount="12 500", day="01.12", hh="10", hh2="12", mm="30") for t in _SMS_TEXTS]
    message_v = _vocab(texts)
    zone = ZoneInfo(timezone)
    fetched_at = pa.scalar(dt.datetime(2026, 11, 30, 12, tzinfo=dt.timezone.utc), pa.timestamp("us", tz="UTC"))
    for i in range(days):
        day = last_day - dt.timedelta(days=days - 1 - i)
        rng = np.random.default_rng(seed * 1_000_003 + i)
        n = rows_per_day
        op = rng.choice(len(ops), n, p=weights)
        status_idx = rng.choice(len(codes), n, p=probs)
        status = codes[status_idx]
        sms_cnt = rng.choice(np.array([1, 2, 3], dtype=np.int32), n, p=[0.8, 0.15, 0.05])
        free = (status == 24) | ((status != 1) & (rng.random(n) < 0.3))
        cents = np.where(free, 0, price_cents[op] * sms_cnt)
        unique_cents, cost_idx = np.unique(cents, return_inverse=True)
        cost_v = pa.array([Decimal(int(c)) / 100 for c in unique_cents], COST_TYPE)
        start = int(dt.datetime.combine(day, dt.time(), zone).timestamp())
        offsets = np.sort(rng.integers(0, 86_400, n))[::-1]  # newest first, like a committed file
        sent_us = (start + offsets) * 1_000_000
        changed_us = sent_us + rng.integers(30, 3_600, n) * 1_000_000
        int_id = 1_000_000_000 + (day - dt.date(2000, 1, 1)).days * 100_000 + np.arange(n, 0, -1)
        columns = {
            "int_id": pa.array(int_id, pa.int64()),
            "id": pc.cast(pa.array(rng.integers(1, 999_999, n)), pa.string()),
            "channel": pa.repeat(pa.scalar("sms", pa.string()), n),
            "phone": pc.cast(pa.array(77_000_000_000 + rng.integers(0, 999_999_999, n)), pa.string()),
            "sender_id": sender_v.take(pa.array(rng.integers(0, len(sender_v), n))),
            "message": message_v.take(pa.array(rng.integers(0, len(message_v), n))),
            "type": pa.array(np.where(rng.random(n) < 0.9, 0, 1).astype(np.int32)),
            "format": pa.array(np.zeros(n, dtype=np.int32)),
            "status": pa.array(status),
            "status_name": status_name_v.take(pa.array(status_idx)),
            "status_class": status_class_v.take(pa.array(status_idx)),
            "err": pa.array(np.where(status == 1, 0, rng.integers(1, 255, n)).astype(np.int32)),
            "sms_cnt": pa.array(sms_cnt),
            "cost": cost_v.take(pa.array(cost_idx)),
            "currency": pa.repeat(pa.scalar("KZT", pa.string()), n),
            "mccmnc": mccmnc_v.take(pa.array(op)),
            "country": country_v.take(pa.array(op)),
            "operator": operator_v.take(pa.array(op)),
            "region": region_v.take(pa.array(region_offset_a[op] + (rng.random(n) * region_count_a[op]).astype(np.int64))),
            "crc": pc.cast(pa.array(rng.integers(0, 2**31 - 1, n)), pa.string()),
            "sent_at": pa.array(sent_us, pa.timestamp("us", tz="UTC")),
            "status_changed_at": pa.array(changed_us, pa.timestamp("us", tz="UTC")),
            "date": pa.repeat(pa.scalar(day, pa.date32()), n),
            "fetched_at": pa.repeat(fetched_at, n),
            "extra": pa.nulls(n, pa.string()),
        }
        table = pa.Table.from_arrays([columns[f.name] for f in HISTORY_SCHEMA], schema=HISTORY_SCHEMA)
        # What a committed partition records about itself (the paging_complete check reads it).
        meta = {"paging_complete": True, "synthetic": True, "rows": n, "date": day.isoformat(), "currency": "KZT"}
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta)})
        path = root / "sms_history" / f"date={day.isoformat()}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")


def ensure(base: Path, *, days: int, rows_per_day: int, last_day: dt.date, timezone: str) -> Path:
    """The cached full data set (generated on first use) under ``base``; returns its data directory."""
    spec = {"days": days, "rows_per_day": rows_per_day, "last_day": last_day.isoformat(), "timezone": timezone, "v": 2}
    root = base / f"synthetic_{days}x{rows_per_day}"
    marker = root / "spec.json"
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    generate(root, days=days, rows_per_day=rows_per_day, last_day=last_day, timezone=timezone)
    marker.write_text(json.dumps(spec))
    return root


def subset(full: Path, base: Path, days: int) -> Path:
    """A data directory holding the first ``days`` days of ``full`` (symlinks, no copies); its own
    ``warehouse.duckdb`` is started afresh."""
    root = base / f"{full.name}_first{days}"
    shutil.rmtree(root, ignore_errors=True)
    files = sorted((full / "sms_history").glob("date=*/data.parquet"))[:days]
    for f in files:
        target = root / "sms_history" / f.parent.name / "data.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(f, target)
    return root
