"""The pure-Python reference model of a loop (no web3): what `EnergyLoop` must compute, exactly."""

from daisee.model.allocation import IntervalResult, MemberEnergy, MemberResult, allocate
from daisee.model.errors import ModelRevert
from daisee.model.ledger import Account, LedgerModel
from daisee.model.state import (
    ZERO_ADDRESS,
    ZERO_METER_ID,
    IntervalTotals,
    LoopModel,
    MeterChange,
    MeterState,
    ModelReading,
    NewMeter,
    Terms,
    Tokens,
)

__all__ = [
    "ZERO_ADDRESS",
    "ZERO_METER_ID",
    "Account",
    "IntervalResult",
    "IntervalTotals",
    "LedgerModel",
    "LoopModel",
    "MemberEnergy",
    "MemberResult",
    "MeterChange",
    "MeterState",
    "ModelReading",
    "ModelRevert",
    "NewMeter",
    "Terms",
    "Tokens",
    "allocate",
]
