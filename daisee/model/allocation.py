"""Pure-Python reference of the allocation keys: who gets which share of an interval's local energy.

Integer Wh, floor division, members in settlement (registration) order, as `EnergyLoop` settles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from daisee.domain import SHARE_DENOMINATOR, AllocationKey


@dataclass(frozen=True)
class MemberEnergy:
    """One meter's energy in an interval, with its static share and weight then."""

    meter_id: bytes
    consumed: int
    produced: int
    share: int = 0
    weight: int = 0


@dataclass(frozen=True)
class MemberResult:
    """One meter's part of a settled interval; `amount` is what it earns (negative: owes)."""

    meter_id: bytes
    consumed: int
    produced: int
    allocated: int
    sold: int
    amount: int

    @property
    def from_grid(self) -> int:
        """Consumption the supplier provides (the complement)."""
        return self.consumed - self.allocated

    @property
    def to_grid(self) -> int:
        """Production exported beyond the loop (the surplus)."""
        return self.produced - self.sold


@dataclass(frozen=True)
class IntervalResult:
    """The allocation of one interval: per member, then totals (`allocated == sold`)."""

    interval: int
    key: AllocationKey
    price_per_wh: int
    members: tuple[MemberResult, ...]
    produced: int
    consumed: int
    allocated: int
    sold: int

    @property
    def unallocated(self) -> int:
        """Local energy `min(P, C)` the key left unallocated (rounding dust, unused shares)."""
        return min(self.produced, self.consumed) - self.allocated


def _cumulative_split(parts: Sequence[int], total: int) -> list[int]:
    """Split `total` in proportion to `parts`, flooring cumulative sums: pieces add up to `total` exactly."""
    whole = sum(parts)
    if whole == 0:
        return [0] * len(parts)
    pieces = []
    running = 0
    for part in parts:
        before = running * total // whole
        running += part
        pieces.append(running * total // whole - before)
    return pieces


def _allocations(key: AllocationKey, members: Sequence[MemberEnergy], produced: int, consumed: int) -> list[int]:
    """Each member's allocated local energy `A_i` under `key`."""
    if key is AllocationKey.PRORATA:
        return _cumulative_split([m.consumed for m in members], min(produced, consumed))
    if key is AllocationKey.STATIC:
        return [min(m.consumed, m.share * produced // SHARE_DENOMINATOR) for m in members]
    weighted = sum(m.weight * m.consumed for m in members)
    if weighted == 0:
        return [0] * len(members)
    return [min(m.consumed, produced * m.weight * m.consumed // weighted) for m in members]


def allocate(
    key: AllocationKey, price_per_wh: int, members: Sequence[MemberEnergy], *, interval: int = -1
) -> IntervalResult:
    """Share the interval's local production among `members` (in settlement order) and price it."""
    produced = sum(m.produced for m in members)
    consumed = sum(m.consumed for m in members)
    allocated = _allocations(key, members, produced, consumed)
    total = sum(allocated)
    sold = _cumulative_split([m.produced for m in members], total)
    results = tuple(
        MemberResult(m.meter_id, m.consumed, m.produced, a, s, (s - a) * price_per_wh)
        for m, a, s in zip(members, allocated, sold, strict=True)
    )
    return IntervalResult(interval, key, price_per_wh, results, produced, consumed, total, sum(sold))
