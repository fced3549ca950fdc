"""Faults survived: a 30-day backfill with each fault kind on 10% of requests ends complete and exact, or
failed naming the fault with every stored partition unchanged (scripts/fault_matrix.py prints the matrix)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from smsc_dagster.testing import FAULT_KINDS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from fault_matrix import run_fault_case  # noqa: E402

TRANSIENT = [k for k in FAULT_KINDS if k != "error_4"]


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_thirty_day_backfill_with_a_fault_on_ten_percent_of_requests(kind, tmp_path):
    row = run_fault_case(kind, tmp_path, days=30, per_day=300, probability=0.1)
    assert row["faults"] >= 1, "the seed must inject at least one fault of this kind"
    if kind in TRANSIENT:
        assert row["outcome"] == "complete", row
        # every faulted request is asked once more, and nothing else is spent
        assert row["requests"] == row["minimal"] + row["faults"], row
    else:
        assert row["outcome"] == "failed", row
        assert row["unchanged_on_failure"] is True
        assert "blocked" in row["message"] and "wait at least 30 minutes" in row["message"]
        assert row["faults"] == 1  # stopped at the first block: retrying would extend it
