"""Test helpers: a faithful local SMSC server and the deterministic account it serves.

Nothing here imports Dagster, so the client and the pipeline tests can share it.
"""

from __future__ import annotations

from smsc_dagster.testing.account import SimulatedAccount
from smsc_dagster.testing.simulator import FAULT_KINDS, FaultPlan, RequestRecord, SMSCSimulator, serve_forever

__all__ = [
    "FAULT_KINDS",
    "FaultPlan",
    "RequestRecord",
    "SMSCSimulator",
    "SimulatedAccount",
    "serve_forever",
]
