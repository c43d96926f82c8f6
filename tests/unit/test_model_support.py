"""What the reference-model tests (test_model*.py) share: a loop's calendar, household meters, readings.

No tests here; the name keeps the helpers beside the files that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from daisee.domain import AllocationKey, MeterKind, RejectReason
from daisee.model import IntervalResult, LoopModel, MemberEnergy, ModelReading, ModelRevert

GENESIS = 1_700_000_000
INTERVAL = 900
GRACE = 300
PRICE = 2
TREASURY = "0x" + "7e" * 20
IMPORT_W = 12_000  # a household's subscription: 12 kVA
EXPORT_W = 9_000  # a household's PV peak: 9 kWc
IMPORT_WH = IMPORT_W * INTERVAL // 3600  # 3000 Wh: the most a household imports in one interval
EXPORT_WH = EXPORT_W * INTERVAL // 3600  # 2250 Wh: the most it exports


def mid(n: int) -> bytes:
    return n.to_bytes(32, "big")


def payout(n: int) -> str:
    return "0x" + f"{n:040x}"


def signer(n: int) -> str:
    return "0x" + f"{0x5000 + n:040x}"


def during(t: int) -> int:
    """A time inside interval t."""
    return GENESIS + t * INTERVAL + INTERVAL // 2


def just_after(t: int) -> int:
    """The first second of interval t + 1, before t's grace period ends."""
    return GENESIS + (t + 1) * INTERVAL


def after_grace(t: int) -> int:
    """The first second at which t may be finalized whoever reported."""
    return GENESIS + (t + 1) * INTERVAL + GRACE


def new_loop(
    key: AllocationKey = AllocationKey.PRORATA,
    price: int = PRICE,
    *,
    notice_seconds: int = 0,
    price_cap_per_wh: int | None = None,
    with_token: bool = True,
) -> LoopModel:
    return LoopModel(
        GENESIS,
        INTERVAL,
        GRACE,
        key,
        price,
        TREASURY,
        notice_seconds=notice_seconds,
        price_cap_per_wh=price_cap_per_wh,
        with_token=with_token,
    )


def household_limits(kind: MeterKind) -> tuple[int, int]:
    """(import, export) W of a household meter of `kind`: none of the flow its kind cannot have."""
    return (0 if kind is MeterKind.PRODUCER else IMPORT_W, 0 if kind is MeterKind.CONSUMER else EXPORT_W)


def add(
    loop: LoopModel,
    n: int,
    kind: MeterKind = MeterKind.PROSUMER,
    *,
    now: int = GENESIS,
    account: int | None = None,
    share: int = 0,
    weight: int = 0,
    import_wh: int = 0,
    export_wh: int = 0,
) -> bytes:
    """Admit meter n (payout `account`, n by default) at `now`, with a household's limits."""
    import_limit, export_limit = household_limits(kind)
    loop.add_meter(
        mid(n),
        signer(n),
        payout(n if account is None else account),
        kind,
        import_limit_w=import_limit,
        export_limit_w=export_limit,
        now=now,
        share=share,
        weight=weight,
        import_wh=import_wh,
        export_wh=export_wh,
    )
    return mid(n)


def feed(
    loop: LoopModel, t: int, deltas: dict[int, tuple[int, int]], now: int | None = None
) -> list[RejectReason | None]:
    """Submit (just after interval t by default) each meter's indices moved on by (consumed, produced)."""
    readings = []
    for n, (consumed, produced) in deltas.items():
        meter = loop.meter(mid(n))
        readings.append(ModelReading(mid(n), t, meter.import_wh + consumed, meter.export_wh + produced))
    return loop.submit(readings, just_after(t) if now is None else now)


def close(loop: LoopModel, t: int) -> IntervalResult:
    """Finalize t once its grace period is over, and settle it."""
    loop.finalize(t, after_grace(t))
    return loop.settle_next()


@contextmanager
def reverts(name: str, *args: object) -> Iterator[None]:
    """Expect the block to revert with the custom error `name(*args)`."""
    with pytest.raises(ModelRevert) as excinfo:
        yield
    assert (excinfo.value.name, excinfo.value.args) == (name, args)


def energy(n: int, consumed: int = 0, produced: int = 0, share: int = 0, weight: int = 0) -> MemberEnergy:
    return MemberEnergy(mid(n), consumed, produced, share, weight)


def column(result: IntervalResult, field: str) -> list[int]:
    return [getattr(member, field) for member in result.members]


def part(result: IntervalResult, n: int) -> tuple[int, int, int, int, int, int, int]:
    """Meter n's (consumed, allocated, produced, sold, amount, paid cost, paid revenue) in `result`."""
    for m in result.members:
        if m.meter_id == mid(n):
            return (m.consumed, m.allocated, m.produced, m.sold, m.amount, m.paid_cost, m.paid_revenue)
    raise AssertionError(f"meter {n} is not in the result")
