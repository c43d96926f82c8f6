"""The pure-Python reference model of a loop (no web3): what `EnergyLoop` must compute, exactly."""

from daisee.model.allocation import IntervalResult, MemberEnergy, MemberResult, allocate
from daisee.model.state import (
    ZERO_ADDRESS,
    ZERO_METER_ID,
    IntervalTotals,
    LoopModel,
    MeterState,
    ModelReading,
    ModelRevert,
    Terms,
    Tokens,
)

__all__ = [
    "ZERO_ADDRESS",
    "ZERO_METER_ID",
    "IntervalResult",
    "IntervalTotals",
    "LoopModel",
    "MemberEnergy",
    "MemberResult",
    "MeterState",
    "ModelReading",
    "ModelRevert",
    "Terms",
    "Tokens",
    "allocate",
]
