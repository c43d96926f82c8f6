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
    paid_cost: int = 0  # of the cost, what the consumer's balance covered (the rest became its debt)
    paid_revenue: int = 0  # of the revenue, what the consumers had paid (the rest became a receivable)

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


def _allocations(key: AllocationKey, consumers: Sequence[MemberEnergy], produced: int, consumed: int) -> list[int]:
    """Each consumer's allocated local energy `A_i` under `key`, in settlement order.

    The static and weighted keys never hand out more than the production left, whatever the
    coefficients add up to.
    """
    if key is AllocationKey.PRORATA:
        return _cumulative_split([m.consumed for m in consumers], min(produced, consumed))
    weighted = sum(m.weight * m.consumed for m in consumers)
    allocated, left = [], produced
    for m in consumers:
        if key is AllocationKey.STATIC:
            part = min(m.consumed, m.share * produced // SHARE_DENOMINATOR)
        else:
            part = 0 if weighted == 0 else min(m.consumed, produced * m.weight * m.consumed // weighted)
        part = min(part, left)
        left -= part
        allocated.append(part)
    return allocated


def allocate(
    key: AllocationKey,
    price_per_wh: int,
    consumers: Sequence[MemberEnergy],
    producers: Sequence[MemberEnergy] | None = None,
    *,
    interval: int = -1,
) -> IntervalResult:
    """Share the interval's local production among `consumers` and price it; `producers` share what
    was sold. Both in settlement order; `producers` defaults to `consumers` (one list of members)."""
    producers = consumers if producers is None else producers
    produced = sum(m.produced for m in producers)
    consumed = sum(m.consumed for m in consumers)
    allocated = _allocations(key, consumers, produced, consumed)
    total = sum(allocated)
    sold = _cumulative_split([m.produced for m in producers], total)
    parts: dict[bytes, list[int]] = {}
    for m, a in zip(consumers, allocated, strict=True):
        parts.setdefault(m.meter_id, [0, 0, 0, 0])[0:2] = [m.consumed, a]
    for m, s in zip(producers, sold, strict=True):
        parts.setdefault(m.meter_id, [0, 0, 0, 0])[2:4] = [m.produced, s]
    results = tuple(
        MemberResult(meter_id, c, p, a, s, (s - a) * price_per_wh) for meter_id, (c, a, p, s) in parts.items()
    )
    return IntervalResult(interval, key, price_per_wh, results, produced, consumed, total, sum(sold))
