"""The reference model: allocation keys worked by hand, their invariants, and the loop's state machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.domain import MAX_DELTA_WH, SHARE_DENOMINATOR, AllocationKey, MeterKind, RejectReason
from daisee.model import (
    ZERO_ADDRESS,
    IntervalResult,
    IntervalTotals,
    LoopModel,
    MemberEnergy,
    ModelReading,
    ModelRevert,
    Terms,
    Tokens,
    allocate,
)

GENESIS = 1_700_000_000
INTERVAL = 900
GRACE = 300
PRICE = 2
TREASURY = "0x" + "7e" * 20
T = TypeVar("T")


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


def new_loop(key: AllocationKey = AllocationKey.PRORATA, price: int = PRICE) -> LoopModel:
    return LoopModel(GENESIS, INTERVAL, GRACE, key, price, TREASURY)


def add(loop: LoopModel, n: int, share: int = 0, weight: int = 0, import_wh: int = 0, export_wh: int = 0) -> bytes:
    loop.add_meter(mid(n), signer(n), payout(n), MeterKind.PROSUMER, share, weight, import_wh, export_wh)
    return mid(n)


def feed(loop: LoopModel, t: int, deltas: dict[int, tuple[int, int]]) -> list[RejectReason | None]:
    """Submit, just after interval t, each meter's indices moved on by (consumed, produced)."""
    readings = []
    for n, (consumed, produced) in deltas.items():
        meter = loop.meter(mid(n))
        readings.append(ModelReading(mid(n), t, meter.import_wh + consumed, meter.export_wh + produced))
    return loop.submit(readings, just_after(t))


def close(loop: LoopModel, t: int) -> IntervalResult:
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


# --- allocation worked by hand ---------------------------------------------------------------


def test_prorata_with_enough_production_covers_every_consumer() -> None:
    result = allocate(AllocationKey.PRORATA, 2, [energy(1, produced=10), energy(2, consumed=3), energy(3, consumed=4)])

    assert column(result, "allocated") == [0, 3, 4]
    assert column(result, "sold") == [7, 0, 0]
    assert column(result, "amount") == [14, -6, -8]
    assert column(result, "from_grid") == [0, 0, 0]
    assert column(result, "to_grid") == [3, 0, 0]
    assert (result.produced, result.consumed, result.allocated, result.sold, result.unallocated) == (10, 7, 7, 7, 0)


def test_prorata_with_short_production_floors_cumulative_sums() -> None:
    # E = 5 over C = 3 + 4: floor(3·5/7) = 2, then floor(7·5/7) - 2 = 3.
    result = allocate(AllocationKey.PRORATA, 1, [energy(1, produced=5), energy(2, consumed=3), energy(3, consumed=4)])

    assert column(result, "allocated") == [0, 2, 3]
    assert column(result, "from_grid") == [0, 1, 1]
    assert column(result, "sold") == [5, 0, 0]


def test_prorata_rounding_dust_moves_to_later_consumers() -> None:
    # E = 5 over 3 + 3 + 3: floor(15/9) = 1, floor(30/9) - 1 = 2, floor(45/9) - 3 = 2.
    members = [energy(1, produced=5), energy(2, consumed=3), energy(3, consumed=3), energy(4, consumed=3)]

    result = allocate(AllocationKey.PRORATA, 1, members)

    assert column(result, "allocated") == [0, 1, 2, 2]
    assert result.allocated == 5


def test_producers_share_what_was_sold_with_cumulative_rounding() -> None:
    # P = 3 + 4, C = 2 + 3 → A = 2, 3; S over 3 + 4 of 5: floor(15/7) = 2, floor(35/7) - 2 = 3.
    members = [energy(1, produced=3), energy(2, produced=4), energy(3, consumed=2), energy(4, consumed=3)]

    result = allocate(AllocationKey.PRORATA, 10, members)

    assert column(result, "allocated") == [0, 0, 2, 3]
    assert column(result, "sold") == [2, 3, 0, 0]
    assert column(result, "to_grid") == [1, 1, 0, 0]
    assert column(result, "amount") == [20, 30, -20, -30]


def test_static_shares_are_capped_by_consumption_and_the_unused_share_is_exported() -> None:
    # 30 % of 10 = 3 but the consumer used only 2; 50 % of 10 = 5 of its 8.
    members = [energy(1, produced=10), energy(2, consumed=2, share=3000), energy(3, consumed=8, share=5000)]

    result = allocate(AllocationKey.STATIC, 3, members)

    assert column(result, "allocated") == [0, 2, 5]
    assert column(result, "from_grid") == [0, 0, 3]
    assert column(result, "sold") == [7, 0, 0]
    assert column(result, "to_grid") == [3, 0, 0]
    assert column(result, "amount") == [21, -6, -15]
    assert result.unallocated == 3


def test_static_shares_floor_each_share_of_production() -> None:
    # 30 % of 7 = 2.1 → 2; 50 % of 7 = 3.5 → 3.
    members = [energy(1, produced=7), energy(2, consumed=5, share=3000), energy(3, consumed=5, share=5000)]

    assert column(allocate(AllocationKey.STATIC, 1, members), "allocated") == [0, 2, 3]


def test_static_share_of_a_member_that_consumed_nothing_stays_unallocated() -> None:
    members = [energy(1, produced=10, share=5000), energy(2, consumed=10, share=5000)]

    result = allocate(AllocationKey.STATIC, 1, members)

    assert column(result, "allocated") == [0, 5]
    assert column(result, "sold") == [5, 0]


def test_weighted_key_splits_by_weight_times_consumption() -> None:
    # W = 1·4 + 3·4 = 16; floor(6·1·4/16) = 1; floor(6·3·4/16) = 4.
    members = [energy(1, produced=6, weight=9), energy(2, consumed=4, weight=1), energy(3, consumed=4, weight=3)]

    result = allocate(AllocationKey.WEIGHTED, 1, members)

    assert column(result, "allocated") == [0, 1, 4]
    assert column(result, "sold") == [5, 0, 0]
    assert result.unallocated == 1


def test_weighted_key_caps_each_consumer_at_its_consumption() -> None:
    # floor(20·4/16) = 5 → 4; floor(20·12/16) = 15 → 4.
    members = [energy(1, produced=20), energy(2, consumed=4, weight=1), energy(3, consumed=4, weight=3)]

    assert column(allocate(AllocationKey.WEIGHTED, 1, members), "allocated") == [0, 4, 4]


def test_weighted_key_with_zero_weights_allocates_nothing() -> None:
    members = [energy(1, produced=20, weight=5), energy(2, consumed=4), energy(3, consumed=4)]

    result = allocate(AllocationKey.WEIGHTED, 1, members)

    assert column(result, "allocated") == [0, 0, 0]
    assert column(result, "sold") == [0, 0, 0]
    assert column(result, "amount") == [0, 0, 0]


def test_prosumer_buys_and_sells_in_the_same_interval() -> None:
    # P = 6, C = 2 + 5, E = 6: floor(2·6/7) = 1, then 6 - 1 = 5; the prosumer sells all 6.
    members = [energy(1, consumed=2, produced=6), energy(2, consumed=5)]

    result = allocate(AllocationKey.PRORATA, 10, members)

    assert column(result, "allocated") == [1, 5]
    assert column(result, "sold") == [6, 0]
    assert column(result, "amount") == [50, -50]
    assert column(result, "from_grid") == [1, 0]


@pytest.mark.parametrize("key", list(AllocationKey))
def test_interval_without_production_allocates_nothing(key: AllocationKey) -> None:
    members = [energy(1, consumed=3, share=5000, weight=1), energy(2, consumed=4, share=5000, weight=1)]

    result = allocate(key, 5, members)

    assert column(result, "allocated") == [0, 0]
    assert column(result, "from_grid") == [3, 4]
    assert column(result, "amount") == [0, 0]
    assert (result.produced, result.consumed, result.allocated, result.sold) == (0, 7, 0, 0)


@pytest.mark.parametrize("key", list(AllocationKey))
def test_interval_without_consumption_exports_all_production(key: AllocationKey) -> None:
    members = [energy(1, produced=5, share=5000, weight=1), energy(2, produced=7, share=5000, weight=1)]

    result = allocate(key, 5, members)

    assert column(result, "sold") == [0, 0]
    assert column(result, "to_grid") == [5, 7]
    assert column(result, "amount") == [0, 0]


def test_allocation_of_no_members_is_empty() -> None:
    result = allocate(AllocationKey.PRORATA, 1, [], interval=4)

    assert result == IntervalResult(4, AllocationKey.PRORATA, 1, (), 0, 0, 0, 0)


# --- allocation invariants -------------------------------------------------------------------


@st.composite
def interval_members(draw: st.DrawFn) -> list[MemberEnergy]:
    count = draw(st.integers(1, 50))
    raw_shares = draw(st.lists(st.integers(0, SHARE_DENOMINATOR), min_size=count, max_size=count))
    scale = max(sum(raw_shares), SHARE_DENOMINATOR)
    members = []
    for n, raw_share in enumerate(raw_shares, start=1):
        kind = draw(st.sampled_from(MeterKind))
        consumed = draw(st.integers(0, 10**7)) if kind is not MeterKind.PRODUCER else 0
        produced = draw(st.integers(0, 10**7)) if kind is not MeterKind.CONSUMER else 0
        members.append(energy(n, consumed, produced, raw_share * SHARE_DENOMINATOR // scale, draw(st.integers(0, 10))))
    return members


@settings(max_examples=300)
@given(key=st.sampled_from(AllocationKey), price=st.integers(0, 10**6), members=interval_members())
def test_allocation_invariants(key: AllocationKey, price: int, members: list[MemberEnergy]) -> None:
    assert sum(m.share for m in members) <= SHARE_DENOMINATOR
    result = allocate(key, price, members)
    produced = sum(m.produced for m in members)
    consumed = sum(m.consumed for m in members)

    assert (result.produced, result.consumed) == (produced, consumed)
    for member, part in zip(members, result.members, strict=True):
        assert part.meter_id == member.meter_id
        assert 0 <= part.allocated <= member.consumed
        assert 0 <= part.sold <= member.produced
        assert part.amount == (part.sold - part.allocated) * price
    assert result.allocated == sum(column(result, "allocated")) == sum(column(result, "sold")) == result.sold
    assert result.allocated <= min(produced, consumed)
    assert sum(column(result, "amount")) == 0
    if key is AllocationKey.PRORATA:
        assert result.unallocated == 0


# --- meters ----------------------------------------------------------------------------------


def test_add_meter_records_its_state_and_counts_it_active() -> None:
    loop = new_loop()

    add(loop, 1, share=2500, weight=3, import_wh=1000, export_wh=50)

    meter = loop.meter(mid(1))
    assert (meter.signer, meter.payout, meter.kind, meter.active) == (signer(1), payout(1), MeterKind.PROSUMER, True)
    assert (meter.share, meter.weight, meter.next_share, meter.next_weight, meter.next_epoch) == (2500, 3, 0, 0, 0)
    assert (meter.import_wh, meter.export_wh, meter.next_interval) == (1000, 50, 0)
    assert (loop.active_count, loop.shares_current, loop.shares_next) == (1, 2500, 0)
    assert loop.meter_ids() == (mid(1),)


def test_add_meter_rejects_a_zero_id_before_anything_else() -> None:
    loop = new_loop()

    with reverts("InvalidMeterId"):
        loop.add_meter(bytes(32), ZERO_ADDRESS, ZERO_ADDRESS, MeterKind.CONSUMER)


def test_add_meter_rejects_zero_signer_then_zero_payout() -> None:
    loop = new_loop()

    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.add_meter(mid(1), ZERO_ADDRESS, payout(1), MeterKind.CONSUMER)
    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.add_meter(mid(1), signer(1), ZERO_ADDRESS, MeterKind.CONSUMER)
    assert loop.meter_ids() == ()


def test_add_meter_rejects_an_id_ever_registered() -> None:
    loop = new_loop()
    add(loop, 1)
    loop.remove_meter(mid(1))

    with reverts("MeterAlreadyRegistered", mid(1)):
        add(loop, 1)


def test_add_meter_rejects_a_share_above_the_whole() -> None:
    loop = new_loop()

    with reverts("InvalidShare", 10_001):
        add(loop, 1, share=10_001)


def test_add_meter_past_the_current_shares_changes_nothing() -> None:
    loop = new_loop()
    add(loop, 1, share=8000)

    with reverts("SharesExceedTotal", 11_000):
        add(loop, 2, share=3000)

    assert (loop.meter_ids(), loop.active_count, loop.shares_current) == ((mid(1),), 1, 8000)


def test_add_meter_past_the_next_shares_changes_nothing() -> None:
    loop = new_loop()
    add(loop, 1, share=5000)
    loop.schedule_terms(AllocationKey.STATIC, 3, 2, during(0))
    loop.set_coefficients([mid(1)], [9000], [0], during(0))

    with reverts("SharesExceedTotal", 11_000):
        add(loop, 2, share=2000)

    assert (loop.meter_ids(), loop.shares_current, loop.shares_next) == ((mid(1),), 5000, 9000)


def test_add_meter_counts_its_share_in_pending_terms() -> None:
    loop = new_loop()
    loop.schedule_terms(AllocationKey.STATIC, 3, 2, during(0))

    add(loop, 1, share=4000)

    assert (loop.shares_current, loop.shares_next) == (4000, 4000)
    assert loop.coefficients(mid(1), 2) == (4000, 0)


def test_remove_meter_keeps_its_share_counted() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2)

    loop.remove_meter(mid(1))

    assert loop.meter(mid(1)).active is False
    assert (loop.active_count, loop.shares_current) == (1, 3000)
    with reverts("MeterNotActive", mid(1)):
        loop.remove_meter(mid(1))
    with reverts("UnknownMeter", mid(9)):
        loop.remove_meter(mid(9))


def test_rotate_signer_checks_the_meter_then_the_account() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    loop.remove_meter(mid(2))

    loop.rotate_signer(mid(1), signer(7))

    assert loop.meter(mid(1)).signer == signer(7)
    with reverts("UnknownMeter", mid(9)):
        loop.rotate_signer(mid(9), ZERO_ADDRESS)
    with reverts("MeterNotActive", mid(2)):
        loop.rotate_signer(mid(2), ZERO_ADDRESS)
    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.rotate_signer(mid(1), ZERO_ADDRESS)


def test_meter_accessors_reject_unknown_ids() -> None:
    loop = new_loop()

    with reverts("UnknownMeter", mid(3)):
        loop.meter(mid(3))
    with reverts("UnknownMeter", mid(3)):
        loop.pending(mid(3))


# --- calendar --------------------------------------------------------------------------------


def test_current_interval_counts_from_genesis() -> None:
    loop = new_loop()

    assert [loop.current_interval(now) for now in (GENESIS - 1, GENESIS, GENESIS + 899, GENESIS + 900)] == [-1, 0, 0, 1]
    assert loop.current_interval(GENESIS - 10 * INTERVAL) == -1
    assert loop.interval_end(2) == GENESIS + 2700


# --- readings --------------------------------------------------------------------------------


def test_accepted_reading_records_deltas_totals_and_indices() -> None:
    loop = new_loop()
    add(loop, 1, weight=3, import_wh=1000, export_wh=200)
    add(loop, 2, weight=5, import_wh=10, export_wh=0)

    outcomes = loop.submit(
        [ModelReading(mid(1), 0, 1040, 260), ModelReading(mid(2), 0, 17, 0)],
        just_after(0),
    )

    assert outcomes == [None, None]
    assert loop.pending(mid(1)) == {0: (40, 60)}
    assert loop.totals(0) == IntervalTotals(consumed=47, produced=60, reported=2, weighted_consumption=3 * 40 + 5 * 7)
    meter = loop.meter(mid(1))
    assert (meter.import_wh, meter.export_wh, meter.next_interval) == (1040, 260, 1)


def test_later_readings_of_a_batch_see_earlier_ones() -> None:
    loop = new_loop()
    add(loop, 1, import_wh=100)

    outcomes = loop.submit(
        [ModelReading(mid(1), 0, 110, 0), ModelReading(mid(1), 0, 150, 0), ModelReading(mid(1), 1, 130, 5)],
        during(2),
    )

    assert outcomes == [None, RejectReason.STALE_INTERVAL, None]
    assert loop.pending(mid(1)) == {0: (10, 0), 1: (20, 5)}


def test_submit_rejects_an_empty_batch_even_when_paused() -> None:
    loop = new_loop()
    loop.pause()

    with reverts("EmptyBatch"):
        loop.submit([], during(1))


def test_paused_loop_refuses_readings_until_unpaused() -> None:
    loop = new_loop()
    add(loop, 1)
    reading = ModelReading(mid(1), 0, 5, 0)
    loop.pause()

    with reverts("ReadingsPaused"):
        loop.submit([reading], during(1))

    loop.unpause()
    assert loop.submit([reading], during(1)) == [None]


def test_weighted_consumption_uses_the_weight_in_force_for_the_interval() -> None:
    loop = new_loop()
    add(loop, 1, weight=2)
    loop.schedule_terms(AllocationKey.WEIGHTED, PRICE, 2, during(0))
    loop.set_coefficients([mid(1)], [0], [5], during(0))
    close(loop, 0)

    assert loop.submit([ModelReading(mid(1), 1, 10, 0), ModelReading(mid(1), 2, 13, 0)], during(3)) == [None, None]

    assert loop.totals(1).weighted_consumption == 2 * 10
    assert loop.totals(2).weighted_consumption == 5 * 3


def reject_scenario() -> LoopModel:
    """Meter 1 reported interval 0 (indices 1100/600); meter 2 did too, then was removed.

    Intervals 0-2 are finalized, 0-1 settled: backlog starts at interval 4.
    """
    loop = new_loop()
    add(loop, 1, import_wh=1000, export_wh=500)
    add(loop, 2)
    assert loop.submit([ModelReading(mid(1), 0, 1100, 600), ModelReading(mid(2), 0, 1, 1)], just_after(0)) == [
        None,
        None,
    ]
    loop.remove_meter(mid(2))
    close(loop, 0)
    close(loop, 1)
    loop.finalize(2, after_grace(2))
    return loop


NOW = during(6)
BIG = MAX_DELTA_WH + 1


@pytest.mark.parametrize(
    ("reading", "now", "expected"),
    [
        pytest.param(ModelReading(mid(9), 3, 0, 0, False), NOW, RejectReason.UNKNOWN_METER, id="unknown+forged"),
        pytest.param(ModelReading(mid(2), 3, 5, 5, False), NOW, RejectReason.BAD_SIGNATURE, id="forged+inactive"),
        pytest.param(ModelReading(mid(2), 0, 0, 0), NOW, RejectReason.METER_INACTIVE, id="inactive+stale"),
        # Stale and future together needs a clock behind the meter's last interval: the model allows it.
        pytest.param(ModelReading(mid(1), 0, 900, 600), during(0), RejectReason.STALE_INTERVAL, id="stale+future"),
        pytest.param(ModelReading(mid(1), 6, 900, 600), NOW, RejectReason.FUTURE_INTERVAL, id="future+backlog"),
        pytest.param(ModelReading(mid(1), 2, 900, 600), NOW, RejectReason.INTERVAL_FINALIZED, id="finalized+decr"),
        pytest.param(ModelReading(mid(1), 4, 900, 600), NOW, RejectReason.SETTLEMENT_BACKLOG, id="backlog+decr"),
        pytest.param(ModelReading(mid(1), 3, 900, 600 + BIG), NOW, RejectReason.INDEX_DECREASED, id="decr+overflow"),
        pytest.param(ModelReading(mid(1), 3, 1200, 599), NOW, RejectReason.INDEX_DECREASED, id="export-decreased"),
        pytest.param(ModelReading(mid(1), 3, 1100 + BIG, 600), NOW, RejectReason.INDEX_OVERFLOW, id="import-overflow"),
        pytest.param(ModelReading(mid(1), 3, 1100, 600 + BIG), NOW, RejectReason.INDEX_OVERFLOW, id="export-overflow"),
    ],
)
def test_rejected_reading_reports_its_first_failing_check_and_changes_nothing(
    reading: ModelReading, now: int, expected: RejectReason
) -> None:
    loop = reject_scenario()
    meters_before = [loop.meter(m) for m in loop.meter_ids()]

    assert loop.submit([reading], now) == [expected]

    assert [loop.meter(m) for m in loop.meter_ids()] == meters_before
    assert loop.pending(mid(1)) == {}
    assert loop.totals(3) == IntervalTotals()


def test_largest_delta_is_accepted_just_before_backlog() -> None:
    loop = reject_scenario()

    assert loop.submit([ModelReading(mid(1), 3, 1100 + MAX_DELTA_WH, 600 + MAX_DELTA_WH)], NOW) == [None]

    assert loop.pending(mid(1)) == {3: (MAX_DELTA_WH, MAX_DELTA_WH)}


# --- finalization ----------------------------------------------------------------------------


def test_finalize_goes_in_order_and_only_after_the_interval() -> None:
    loop = new_loop()

    with reverts("IntervalNotNext", 1, 0):
        loop.finalize(1, after_grace(5))
    with reverts("IntervalNotOver", 0):
        loop.finalize(0, during(0))
    with reverts("IntervalNotOver", 0):
        loop.finalize(0, GENESIS - 1)


def test_finalize_waits_for_every_active_meter_or_the_grace_period() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    add(loop, 3)
    loop.remove_meter(mid(3))
    feed(loop, 0, {1: (5, 0)})

    with reverts("IntervalStillOpen", 0):
        loop.finalize(0, after_grace(0) - 1)
    loop.finalize(0, after_grace(0))

    feed(loop, 1, {1: (1, 0), 2: (2, 0)})
    loop.finalize(1, just_after(1))
    assert loop.finalized_through == 1


def test_settle_needs_a_finalized_interval() -> None:
    loop = new_loop()

    with reverts("IntervalNotFinalized", 0):
        loop.settle_next()
    loop.finalize(0, after_grace(0))
    assert loop.settle_next().interval == 0
    with reverts("IntervalNotFinalized", 1):
        loop.settle_next()


# --- settlement ------------------------------------------------------------------------------


def test_settlement_books_tokens_and_balances() -> None:
    loop = new_loop(price=3)
    add(loop, 1)  # producer
    add(loop, 2)  # consumer
    add(loop, 3)  # prosumer
    feed(loop, 0, {1: (0, 10), 2: (4, 0), 3: (2, 1)})

    result = close(loop, 0)

    # P = 11, C = 6, E = 6: A = 4, 2; S over 10 + 1 of 6: floor(60/11) = 5, then 6 - 5 = 1.
    assert result.interval == 0
    assert column(result, "allocated") == [0, 4, 2]
    assert column(result, "sold") == [5, 0, 1]
    assert loop.tokens(payout(1)) == Tokens(produced=10, consumed=0, self_consumed=0)
    assert loop.tokens(payout(2)) == Tokens(produced=0, consumed=4, self_consumed=4)
    assert loop.tokens(payout(3)) == Tokens(produced=1, consumed=2, self_consumed=2)
    assert loop.ledger() == {TREASURY: 0, payout(1): 15, payout(2): -12, payout(3): -3}
    assert loop.pending(mid(1)) == {}
    assert (loop.settled_through, loop.finalized_through) == (0, 0)


def test_settlement_includes_removed_meters_and_shared_payouts() -> None:
    loop = new_loop()
    loop.add_meter(mid(1), signer(1), payout(1), MeterKind.PRODUCER)
    loop.add_meter(mid(2), signer(2), payout(2), MeterKind.CONSUMER)
    loop.add_meter(mid(3), signer(3), payout(2), MeterKind.CONSUMER)
    feed(loop, 0, {1: (0, 9), 2: (3, 0), 3: (6, 0)})
    loop.remove_meter(mid(1))

    result = close(loop, 0)

    assert column(result, "allocated") == [0, 3, 6]
    assert loop.tokens(payout(2)) == Tokens(produced=0, consumed=9, self_consumed=9)
    assert loop.ledger() == {TREASURY: 0, payout(1): 18, payout(2): -18}


def test_unreported_interval_settles_to_nothing() -> None:
    loop = new_loop()
    add(loop, 1)

    result = close(loop, 0)

    assert column(result, "consumed") == [0]
    assert loop.ledger() == {TREASURY: 0}
    assert loop.tokens(payout(1)) == Tokens()


# --- ledger ----------------------------------------------------------------------------------


def test_deposit_and_withdraw_move_a_balance() -> None:
    loop = new_loop()

    loop.deposit(payout(1), 100)
    loop.withdraw(payout(1), 40)

    assert loop.balance(payout(1)) == 60
    assert loop.ledger() == {TREASURY: 0, payout(1): 60}


def test_ledger_refuses_zero_amounts_and_overdrafts() -> None:
    loop = new_loop()
    loop.deposit(payout(1), 10)

    with reverts("ZeroAmount"):
        loop.deposit(payout(1), 0)
    with reverts("ZeroAmount"):
        loop.withdraw(payout(1), 0)
    with reverts("InsufficientBalance", payout(1), 10, 11):
        loop.withdraw(payout(1), 11)
    with reverts("InsufficientBalance", payout(2), 0, 1):
        loop.withdraw(payout(2), 1)
    assert loop.balance(payout(1)) == 10


def test_a_member_that_owes_cannot_withdraw() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    feed(loop, 0, {1: (0, 5), 2: (5, 0)})
    close(loop, 0)
    loop.deposit(payout(2), 4)

    with reverts("InsufficientBalance", payout(2), -6, 1):
        loop.withdraw(payout(2), 1)


# --- terms -----------------------------------------------------------------------------------


def test_terms_cannot_start_in_the_current_or_a_past_interval() -> None:
    loop = new_loop()

    with reverts("InvalidEffectiveInterval", 3, 3):
        loop.schedule_terms(AllocationKey.STATIC, 1, 3, during(3))
    with reverts("InvalidEffectiveInterval", 1, 3):
        loop.schedule_terms(AllocationKey.STATIC, 1, 1, during(3))
    loop.schedule_terms(AllocationKey.STATIC, 1, 0, GENESIS - 1)
    assert loop.next_terms == Terms(AllocationKey.STATIC, 1, 0, 1)


def test_scheduled_terms_take_effect_from_their_interval() -> None:
    loop = new_loop()
    add(loop, 1)  # producer
    add(loop, 2, share=1000)
    add(loop, 3, share=1000)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))
    loop.set_coefficients([mid(2), mid(3)], [2000, 5000], [0, 0], during(0))
    results = []
    for t in range(3):
        feed(loop, t, {1: (0, 10), 2: (3, 0), 3: (4, 0)})
        results.append(close(loop, t))

    assert [(r.key, r.price_per_wh) for r in results] == [
        (AllocationKey.PRORATA, 2),
        (AllocationKey.PRORATA, 2),
        (AllocationKey.STATIC, 5),
    ]
    assert column(results[1], "allocated") == [0, 3, 4]
    assert column(results[1], "amount") == [14, -6, -8]
    # 20 % of 10 = 2 of 3; 50 % of 10 = 5, capped at 4.
    assert column(results[2], "allocated") == [0, 2, 4]
    assert column(results[2], "amount") == [30, -10, -20]


def test_pending_terms_are_replaced_in_the_same_epoch() -> None:
    loop = new_loop()
    loop.schedule_terms(AllocationKey.STATIC, 3, 5, during(0))

    loop.schedule_terms(AllocationKey.WEIGHTED, 4, 3, during(2))

    assert loop.next_terms == Terms(AllocationKey.WEIGHTED, 4, 3, 1)
    assert loop.current_terms == Terms(AllocationKey.PRORATA, PRICE, 0, 0)


def test_terms_in_force_are_promoted_only_once_the_old_ones_are_settled() -> None:
    loop = new_loop()
    add(loop, 1, share=1000)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))
    loop.set_coefficients([mid(1)], [4000], [1], during(0))
    close(loop, 0)

    with reverts("TermsChangePending", 2):
        loop.schedule_terms(AllocationKey.WEIGHTED, 7, 6, during(3))

    close(loop, 1)
    loop.schedule_terms(AllocationKey.WEIGHTED, 7, 6, during(3))
    assert loop.current_terms == Terms(AllocationKey.STATIC, 5, 2, 1)
    assert loop.next_terms == Terms(AllocationKey.WEIGHTED, 7, 6, 2)
    assert (loop.shares_current, loop.shares_next) == (4000, 4000)
    assert [loop.terms_at(t).key for t in (2, 5, 6)] == [
        AllocationKey.STATIC,
        AllocationKey.STATIC,
        AllocationKey.WEIGHTED,
    ]


# --- coefficients ----------------------------------------------------------------------------


def test_coefficients_follow_the_epoch_of_each_interval() -> None:
    loop = new_loop()
    add(loop, 1, share=3000, weight=1)
    add(loop, 2, share=2000, weight=4)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))

    loop.set_coefficients([mid(1)], [5000], [7], during(0))

    meter = loop.meter(mid(1))
    assert (meter.share, meter.weight, meter.next_share, meter.next_weight, meter.next_epoch) == (3000, 1, 5000, 7, 1)
    assert (loop.coefficients(mid(1), 1), loop.coefficients(mid(1), 2)) == ((3000, 1), (5000, 7))
    assert loop.coefficients(mid(2), 2) == (2000, 4)
    assert (loop.shares_current, loop.shares_next) == (5000, 7000)

    loop.set_coefficients([mid(1)], [4000], [2], during(1))  # same epoch: replaces, does not add
    assert loop.shares_next == 6000


def test_coefficients_set_in_an_older_epoch_are_promoted_when_set_again() -> None:
    loop = new_loop()
    add(loop, 1, share=3000, weight=1)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))
    loop.set_coefficients([mid(1)], [4000], [2], during(0))
    close(loop, 0)
    close(loop, 1)
    loop.schedule_terms(AllocationKey.WEIGHTED, 7, 5, during(3))
    assert loop.coefficients(mid(1), 5) == (4000, 2)  # the epoch-1 values carry on

    loop.set_coefficients([mid(1)], [1000], [9], during(3))

    meter = loop.meter(mid(1))
    assert (meter.share, meter.weight, meter.next_share, meter.next_weight, meter.next_epoch) == (4000, 2, 1000, 9, 2)
    assert [loop.coefficients(mid(1), t) for t in (2, 4, 5)] == [(4000, 2), (4000, 2), (1000, 9)]
    assert (loop.shares_current, loop.shares_next) == (4000, 1000)


def test_set_coefficients_needs_equal_lengths_and_pending_terms() -> None:
    loop = new_loop()
    add(loop, 1)

    with reverts("LengthMismatch"):
        loop.set_coefficients([mid(1)], [1, 2], [1], during(0))
    with reverts("NoPendingTerms"):
        loop.set_coefficients([mid(1)], [1], [1], during(0))
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))
    with reverts("NoPendingTerms"):
        loop.set_coefficients([mid(1)], [1], [1], during(2))


def test_set_coefficients_is_all_or_nothing() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2, share=3000)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))
    before = [loop.meter(mid(1)), loop.meter(mid(2))]

    with reverts("SharesExceedTotal", 11_000):
        loop.set_coefficients([mid(1), mid(2)], [6000, 5000], [1, 1], during(0))
    with reverts("UnknownMeter", mid(9)):
        loop.set_coefficients([mid(1), mid(9)], [0, 0], [1, 1], during(0))
    with reverts("InvalidShare", 10_001):
        loop.set_coefficients([mid(1), mid(2)], [0, 10_001], [1, 1], during(0))

    assert [loop.meter(mid(1)), loop.meter(mid(2))] == before
    assert loop.shares_next == 6000


def test_set_coefficients_checks_only_the_final_total() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2, share=3000)
    loop.schedule_terms(AllocationKey.STATIC, 5, 2, during(0))

    loop.set_coefficients([mid(1), mid(2)], [8000, 0], [1, 1], during(0))  # 11 000 midway, 8 000 at the end

    assert loop.shares_next == 8000
    assert loop.shares_current == 6000


def test_settlement_uses_the_weights_of_its_interval() -> None:
    loop = new_loop(AllocationKey.WEIGHTED)
    add(loop, 1)  # producer
    add(loop, 2, weight=1)
    add(loop, 3, weight=3)
    loop.schedule_terms(AllocationKey.WEIGHTED, PRICE, 1, during(0))
    loop.set_coefficients([mid(2), mid(3)], [0, 0], [3, 1], during(0))
    results = []
    for t in range(2):
        feed(loop, t, {1: (0, 6), 2: (4, 0), 3: (4, 0)})
        results.append(close(loop, t))

    assert column(results[0], "allocated") == [0, 1, 4]
    assert column(results[1], "allocated") == [0, 4, 1]


# --- conservation over random histories ------------------------------------------------------

FATES = ("on_time", "missing", "late", "forged", "replayed")


@dataclass(frozen=True)
class History:
    """Meters (payout number, share, weight, indices at registration) and, per interval, each one's step."""

    key: AllocationKey
    price: int
    payouts: list[int]
    shares: list[int]
    weights: list[int]
    starts: list[tuple[int, int]]
    steps: list[list[tuple[int, int, str]]]  # (consumed, produced, fate) per meter
    deposits: list[int]


@st.composite
def histories(draw: st.DrawFn) -> History:
    meters = draw(st.integers(1, 5))
    intervals = draw(st.integers(1, 6))

    def per_meter(elements: st.SearchStrategy[T]) -> st.SearchStrategy[list[T]]:
        return st.lists(elements, min_size=meters, max_size=meters)

    step = per_meter(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.sampled_from(FATES)))
    return History(
        key=draw(st.sampled_from(AllocationKey)),
        price=draw(st.integers(0, 1000)),
        payouts=draw(per_meter(st.integers(1, meters))),
        shares=draw(per_meter(st.integers(0, SHARE_DENOMINATOR // meters))),
        weights=draw(per_meter(st.integers(0, 10))),
        starts=draw(per_meter(st.tuples(st.integers(0, 10**9), st.integers(0, 10**9)))),
        steps=draw(st.lists(step, min_size=intervals, max_size=intervals)),
        deposits=draw(per_meter(st.integers(1, 10**6))),
    )


@settings(max_examples=150, deadline=None)
@given(history=histories())
def test_energy_and_money_are_conserved_over_random_histories(history: History) -> None:
    payouts, starts, deposits = history.payouts, history.starts, history.deposits
    loop = new_loop(history.key, history.price)
    ids = [mid(n) for n in range(1, len(payouts) + 1)]
    for n, meter_id in enumerate(ids):
        loop.add_meter(
            meter_id,
            signer(n),
            payout(payouts[n]),
            MeterKind.PROSUMER,
            history.shares[n],
            history.weights[n],
            *starts[n],
        )
    for n, amount in enumerate(deposits):
        loop.deposit(payout(payouts[n]), amount)
    indices = [list(start) for start in starts]
    last_accepted = [tuple(start) for start in starts]
    settled = {meter_id: [0, 0] for meter_id in ids}
    minted: dict[str, Tokens] = {}

    for t, step in enumerate(history.steps):
        on_time, expected, late, expected_late = [], [], [], []
        for n, (consumed, produced, fate) in enumerate(step):
            indices[n][0] += consumed
            indices[n][1] += produced
            reading = ModelReading(ids[n], t, indices[n][0], indices[n][1], fate != "forged")
            if fate in ("on_time", "forged", "replayed"):
                on_time.append(reading)
                expected.append(RejectReason.BAD_SIGNATURE if fate == "forged" else None)
            if fate in ("on_time", "replayed"):
                last_accepted[n] = (reading.import_wh, reading.export_wh)
            if fate in ("late", "replayed"):
                late.append(reading)
                expected_late.append(RejectReason.INTERVAL_FINALIZED if fate == "late" else RejectReason.STALE_INTERVAL)
        if on_time:
            assert loop.submit(on_time, just_after(t)) == expected
        totals = loop.totals(t)
        loop.finalize(t, after_grace(t))
        if late:
            assert loop.submit(late, after_grace(t)) == expected_late
        result = loop.settle_next()

        assert (result.interval, result.consumed, result.produced) == (t, totals.consumed, totals.produced)
        weighted = sum(loop.coefficients(m, t)[1] * part.consumed for m, part in zip(ids, result.members, strict=True))
        assert totals.weighted_consumption == weighted
        for meter_id, part in zip(ids, result.members, strict=True):
            settled[meter_id][0] += part.consumed
            settled[meter_id][1] += part.produced
            account = loop.meter(meter_id).payout
            held = minted.get(account, Tokens())
            minted[account] = Tokens(
                held.produced + part.produced, held.consumed + part.consumed, held.self_consumed + part.allocated
            )
        assert sum(loop.ledger().values()) == sum(deposits)

    for n, meter_id in enumerate(ids):
        meter = loop.meter(meter_id)
        assert (meter.import_wh, meter.export_wh) == last_accepted[n]
        assert settled[meter_id] == [meter.import_wh - starts[n][0], meter.export_wh - starts[n][1]]
        assert loop.pending(meter_id) == {}
    for account, tokens in minted.items():
        assert loop.tokens(account) == tokens
    withdrawn = 0
    for account, balance in loop.ledger().items():
        if balance > 0:
            loop.withdraw(account, balance)
            withdrawn += balance
    assert sum(loop.ledger().values()) == sum(deposits) - withdrawn
