"""The reference model: allocation keys worked by hand, and the loop's state machine rule by rule.

The ledger has its own file (test_model_ledger.py), the properties over random loops theirs
(test_model_properties.py).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.domain import MAX_LIMIT_W, MAX_METERS, SHARE_DENOMINATOR, AllocationKey, MeterKind, RejectReason
from daisee.model import (
    ZERO_ADDRESS,
    IntervalResult,
    IntervalTotals,
    LoopModel,
    MemberEnergy,
    MeterChange,
    ModelReading,
    NewMeter,
    Terms,
    Tokens,
    allocate,
)
from daisee.model.state import MAX_PRICE_PER_WH, MIN_GRACE_SECONDS
from tests.unit.test_model_support import (
    EXPORT_W,
    EXPORT_WH,
    GENESIS,
    IMPORT_W,
    IMPORT_WH,
    INTERVAL,
    PRICE,
    TREASURY,
    add,
    after_grace,
    close,
    column,
    during,
    energy,
    feed,
    just_after,
    mid,
    new_loop,
    part,
    payout,
    reverts,
    signer,
)

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


def test_static_shares_adding_up_past_the_whole_are_clamped_to_the_production_left() -> None:
    # A loop keeps the shares of each interval within the whole; the key never relies on it.
    # 60 % + 60 % of 10 = 6 + 6, but only 10 was produced: the second consumer gets the 4 left.
    members = [energy(1, produced=10), energy(2, consumed=8, share=6000), energy(3, consumed=8, share=6000)]

    result = allocate(AllocationKey.STATIC, 1, members)

    assert column(result, "allocated") == [0, 6, 4]
    assert column(result, "sold") == [10, 0, 0]
    assert result.unallocated == 0


def test_consumers_and_producers_are_settled_in_two_lists_each_in_its_own_order() -> None:
    # P = 3 + 3, C = 4 + 2, E = 6: A = 4, 2; S = 3, 3. The prosumer (1) is second among the consumers
    # and second among the producers; the result lists the consumers first.
    consumers = [energy(2, consumed=4), energy(1, consumed=2)]
    producers = [energy(3, produced=3), energy(1, produced=3)]

    result = allocate(AllocationKey.PRORATA, 5, consumers, producers, interval=7)

    assert [m.meter_id for m in result.members] == [mid(2), mid(1), mid(3)]
    assert column(result, "allocated") == [4, 2, 0]
    assert column(result, "sold") == [0, 3, 3]
    assert column(result, "amount") == [-20, 5, 15]
    assert (result.interval, result.produced, result.consumed, result.allocated) == (7, 6, 6, 6)


# --- allocation invariants -------------------------------------------------------------------


@st.composite
def interval_members(draw: st.DrawFn) -> list[MemberEnergy]:
    """Up to 50 members; static shares within the whole, or (as removed meters leave them) past it."""
    count = draw(st.integers(1, 50))
    raw_shares = draw(st.lists(st.integers(0, SHARE_DENOMINATOR), min_size=count, max_size=count))
    scale = max(sum(raw_shares), SHARE_DENOMINATOR) if draw(st.booleans()) else SHARE_DENOMINATOR
    members = []
    for n, raw_share in enumerate(raw_shares, start=1):
        kind = draw(st.sampled_from(MeterKind))
        consumed = draw(st.integers(0, 10**7)) if kind is not MeterKind.PRODUCER else 0
        produced = draw(st.integers(0, 10**7)) if kind is not MeterKind.CONSUMER else 0
        members.append(energy(n, consumed, produced, raw_share * SHARE_DENOMINATOR // scale, draw(st.integers(0, 10))))
    return members


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(AllocationKey), price=st.integers(0, 10**6), members=interval_members())
def test_allocation_invariants(key: AllocationKey, price: int, members: list[MemberEnergy]) -> None:
    result = allocate(key, price, members)
    produced = sum(m.produced for m in members)
    consumed = sum(m.consumed for m in members)

    assert (result.produced, result.consumed) == (produced, consumed)
    for member, got in zip(members, result.members, strict=True):
        assert got.meter_id == member.meter_id
        assert 0 <= got.allocated <= member.consumed
        assert 0 <= got.sold <= member.produced
        assert got.amount == (got.sold - got.allocated) * price
    assert result.allocated == sum(column(result, "allocated")) == sum(column(result, "sold")) == result.sold
    assert result.allocated <= min(produced, consumed)
    assert sum(column(result, "amount")) == 0
    if key is AllocationKey.PRORATA:
        assert result.unallocated == 0


# --- deployment ------------------------------------------------------------------------------


def test_a_grace_period_under_a_minute_is_refused() -> None:
    with reverts("GraceTooShort", 59, MIN_GRACE_SECONDS):
        LoopModel(GENESIS, INTERVAL, 59, AllocationKey.PRORATA, PRICE, TREASURY)
    with reverts("GraceTooShort", 0, 60):
        LoopModel(GENESIS, INTERVAL, 0, AllocationKey.PRORATA, PRICE, TREASURY)

    assert LoopModel(GENESIS, INTERVAL, 60, AllocationKey.PRORATA, PRICE, TREASURY).grace_seconds == 60


def test_the_price_cap_defaults_to_twice_the_price() -> None:
    assert new_loop(price=5).price_cap_per_wh == 10
    assert new_loop(price=0).price_cap_per_wh == 1
    assert new_loop(price=5, price_cap_per_wh=5).price_cap_per_wh == 5


def test_a_price_above_the_cap_or_a_cap_above_the_widest_price_is_refused() -> None:
    with reverts("PriceAboveCap", 5, 4):
        new_loop(price=5, price_cap_per_wh=4)
    with reverts("PriceAboveCap", 2**56, MAX_PRICE_PER_WH):
        new_loop(price=1, price_cap_per_wh=2**56)

    assert new_loop(price=MAX_PRICE_PER_WH, price_cap_per_wh=MAX_PRICE_PER_WH).current_terms.price_per_wh == 2**56 - 1


# --- meters ----------------------------------------------------------------------------------


def test_add_meter_records_its_state_from_the_interval_of_its_admission() -> None:
    loop = new_loop()

    add(loop, 1, now=during(3), share=2500, weight=3, import_wh=1000, export_wh=50)

    meter = loop.meter(mid(1))
    assert (meter.signer, meter.payout, meter.kind, meter.active) == (signer(1), payout(1), MeterKind.PROSUMER, True)
    assert (meter.import_limit_w, meter.export_limit_w) == (IMPORT_W, EXPORT_W)
    assert (meter.share, meter.weight, meter.next_share, meter.next_weight, meter.next_epoch) == (2500, 3, 0, 0, 0)
    assert (meter.import_wh, meter.export_wh, meter.next_interval, meter.active_from) == (1000, 50, 3, 3)
    assert (loop.shares_current, loop.shares_next) == (2500, 0)
    assert loop.meter_ids() == (mid(1),)


def test_a_meter_counts_for_finalization_from_its_admission_interval() -> None:
    loop = new_loop()
    add(loop, 1, now=during(2))
    for t in (0, 1):
        loop.finalize(t, just_after(t))  # nobody is expected yet
    assert loop.active_count == 0

    with reverts("IntervalStillOpen", 2, 0, 1, after_grace(2)):
        loop.finalize(2, just_after(2))

    loop.finalize(2, after_grace(2))
    assert loop.active_count == 1


def test_a_meter_admitted_before_genesis_counts_from_interval_zero() -> None:
    loop = new_loop()

    add(loop, 1, now=GENESIS - 5 * INTERVAL)

    assert (loop.meter(mid(1)).next_interval, loop.meter(mid(1)).active_from) == (0, 0)


@pytest.mark.parametrize(
    ("notice", "active_from"),
    [
        pytest.param(0, 3, id="no-notice: the admission interval"),
        pytest.param(1, 4, id="one-second: the next interval"),
        pytest.param(INTERVAL // 2, 4, id="ends-on-a-boundary"),
        pytest.param(INTERVAL // 2 + 1, 5, id="just-past-a-boundary"),
        pytest.param(7 * 86_400, 676, id="seven-days"),  # (3.5 · 900 + 604 800) / 900 = 675.5
    ],
)
def test_with_a_notice_a_meter_reports_from_the_first_interval_starting_after_it(notice: int, active_from: int) -> None:
    loop = new_loop(notice_seconds=notice)

    add(loop, 1, now=during(3))

    assert (loop.meter(mid(1)).next_interval, loop.meter(mid(1)).active_from) == (3, active_from)
    assert loop.first_noticed_interval(during(3)) == max(active_from, 4)


@pytest.mark.parametrize(
    ("kind", "import_limit", "export_limit"),
    [
        (MeterKind.CONSUMER, IMPORT_W, 1),
        (MeterKind.CONSUMER, 0, 0),
        (MeterKind.PRODUCER, 1, EXPORT_W),
        (MeterKind.PRODUCER, 0, 0),
        (MeterKind.PROSUMER, 0, EXPORT_W),
        (MeterKind.PROSUMER, IMPORT_W, 0),
    ],
)
def test_limits_must_allow_exactly_the_flows_of_the_meters_kind(
    kind: MeterKind, import_limit: int, export_limit: int
) -> None:
    loop = new_loop()

    with reverts("InvalidMeterLimits", kind, import_limit, export_limit):
        loop.add_meter(
            mid(1), signer(1), payout(1), kind, import_limit_w=import_limit, export_limit_w=export_limit, now=GENESIS
        )

    assert loop.meter_ids() == ()


def test_the_kind_decides_which_settlement_lists_a_meter_joins() -> None:
    loop = new_loop()
    for n, (kind, import_limit, export_limit) in enumerate(
        [(MeterKind.CONSUMER, 1, 0), (MeterKind.PRODUCER, 0, 1), (MeterKind.PROSUMER, MAX_LIMIT_W, MAX_LIMIT_W)],
        start=1,
    ):
        loop.add_meter(
            mid(n), signer(n), payout(n), kind, import_limit_w=import_limit, export_limit_w=export_limit, now=GENESIS
        )

    assert loop.settlement_order() == ((mid(1), mid(3)), (mid(2), mid(3)))


def test_add_meter_rejects_a_limit_of_16_7_mw_or_more() -> None:
    loop = new_loop()

    with reverts("InvalidMeterLimits", MeterKind.PRODUCER, 0, MAX_LIMIT_W + 1):
        loop.add_meter(
            mid(1),
            signer(1),
            payout(1),
            MeterKind.PRODUCER,
            import_limit_w=0,
            export_limit_w=MAX_LIMIT_W + 1,
            now=GENESIS,
        )
    assert loop.meter_ids() == ()


def test_add_meter_rejects_a_zero_id_before_anything_else() -> None:
    loop = new_loop()

    with reverts("InvalidMeterId"):
        loop.add_meter(
            bytes(32), ZERO_ADDRESS, ZERO_ADDRESS, MeterKind.CONSUMER, import_limit_w=0, export_limit_w=1, now=GENESIS
        )


def test_add_meter_rejects_zero_signer_then_zero_payout() -> None:
    loop = new_loop()

    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.add_meter(
            mid(1), ZERO_ADDRESS, payout(1), MeterKind.CONSUMER, import_limit_w=1, export_limit_w=0, now=GENESIS
        )
    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.add_meter(
            mid(1), signer(1), ZERO_ADDRESS, MeterKind.CONSUMER, import_limit_w=1, export_limit_w=0, now=GENESIS
        )
    assert loop.meter_ids() == ()


def test_add_meter_rejects_an_id_ever_registered() -> None:
    loop = new_loop()
    add(loop, 1)
    loop.remove_meter(mid(1))

    with reverts("MeterAlreadyRegistered", mid(1)):
        add(loop, 1)


def test_add_meters_is_all_or_nothing() -> None:
    loop = new_loop()
    good = NewMeter(mid(1), signer(1), payout(1), MeterKind.CONSUMER, IMPORT_W, 0)
    bad = NewMeter(mid(2), signer(2), payout(2), MeterKind.CONSUMER, IMPORT_W, EXPORT_W)

    with reverts("InvalidMeterLimits", MeterKind.CONSUMER, IMPORT_W, EXPORT_W):
        loop.add_meters([good, bad], GENESIS)
    with reverts("MeterAlreadyRegistered", mid(1)):
        loop.add_meters([good, good], GENESIS)

    assert (loop.meter_ids(), loop.settlement_order()) == ((), ((), ()))


def test_a_loop_registers_at_most_max_meters() -> None:
    loop = new_loop()
    loop.add_meters(
        [NewMeter(mid(n), signer(n), payout(n), MeterKind.CONSUMER, 1, 0) for n in range(1, MAX_METERS + 1)], GENESIS
    )
    loop.remove_meter(mid(1))  # a removed meter still holds its place

    with reverts("TooManyMeters", 65_535):
        add(loop, MAX_METERS + 1)


def test_add_meter_rejects_a_share_above_the_whole() -> None:
    loop = new_loop()

    with reverts("InvalidShare", 10_001):
        add(loop, 1, share=10_001)


def test_add_meter_past_the_current_shares_changes_nothing() -> None:
    loop = new_loop()
    add(loop, 1, share=8000)

    with reverts("SharesExceedTotal", 11_000):
        add(loop, 2, share=3000)

    assert (loop.meter_ids(), loop.shares_current) == ((mid(1),), 8000)


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


def test_meter_accessors_reject_unknown_ids() -> None:
    loop = new_loop()

    with reverts("UnknownMeter", mid(3)):
        loop.meter(mid(3))
    with reverts("UnknownMeter", mid(3)):
        loop.pending(mid(3))


# --- removal ---------------------------------------------------------------------------------


def test_a_removed_meter_frees_its_share_at_once_in_both_terms() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2, share=1000)
    loop.schedule_terms(AllocationKey.STATIC, 3, 2, during(0))
    loop.set_coefficients([mid(1)], [5000], [0], during(0))
    assert (loop.shares_current, loop.shares_next) == (4000, 6000)

    loop.remove_meter(mid(1))

    assert loop.meter(mid(1)).active is False
    assert (loop.shares_current, loop.shares_next) == (1000, 1000)
    add(loop, 3, share=9000)  # the freed share may go to a newcomer


def test_a_removed_meter_stops_counting_for_finalization_at_once() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    add(loop, 3)
    close(loop, 0)  # all three join
    assert loop.active_count == 3
    feed(loop, 1, {1: (5, 0)})

    loop.remove_meter(mid(3))
    with reverts("IntervalStillOpen", 1, 1, 2, after_grace(1)):
        loop.finalize(1, just_after(1))
    loop.remove_meter(mid(2))

    loop.finalize(1, just_after(1))
    assert loop.active_count == 1


def test_a_removed_meter_no_longer_counts_as_having_reported_an_open_interval() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    feed(loop, 0, {2: (5, 0)})
    loop.finalize(0, after_grace(0))
    feed(loop, 1, {2: (5, 0)})
    assert loop.totals(1).reported == 1

    loop.remove_meter(mid(2))

    assert (loop.totals(0).reported, loop.totals(1).reported) == (1, 0)  # a finalized interval keeps its count
    assert loop.totals(1).consumed == 5  # its energy still settles
    with reverts("IntervalStillOpen", 1, 0, 1, after_grace(1)):
        loop.finalize(1, just_after(1))


def test_a_meter_removed_before_its_admission_takes_effect_never_counts() -> None:
    loop = new_loop(notice_seconds=INTERVAL)
    add(loop, 1, now=GENESIS - INTERVAL)  # reports from 0
    add(loop, 2, now=during(0))  # reports from 2
    loop.remove_meter(mid(2))
    for t in range(3):
        feed(loop, t, {1: (1, 0)})
        loop.finalize(t, just_after(t))
        loop.settle_next()

    assert loop.active_count == 1


def test_remove_meter_checks_the_meter() -> None:
    loop = new_loop()
    add(loop, 1)
    loop.remove_meter(mid(1))

    with reverts("MeterNotActive", mid(1)):
        loop.remove_meter(mid(1))
    with reverts("UnknownMeter", mid(9)):
        loop.remove_meter(mid(9))


def test_a_removed_meter_leaves_the_settlement_order_by_swap_and_pop() -> None:
    loop = new_loop()
    for n in range(1, 5):
        add(loop, n, MeterKind.CONSUMER)
    add(loop, 5, MeterKind.PRODUCER)
    feed(loop, 0, {1: (3, 0), 2: (3, 0), 3: (3, 0), 4: (3, 0), 5: (0, 5)})
    loop.remove_meter(mid(2))

    first = close(loop, 0)

    # The removed meter settles its interval, then the last consumer takes its place: 1, 2, 4, 3.
    # E = 5 over 3 + 3 + 3 + 3: floor(15/12) = 1, floor(30/12) - 1 = 1, floor(45/12) - 2 = 1, 5 - 3 = 2.
    assert [m.meter_id for m in first.members] == [mid(1), mid(2), mid(4), mid(3), mid(5)]
    assert column(first, "allocated") == [1, 1, 1, 2, 0]
    assert loop.settlement_order() == ((mid(1), mid(4), mid(3)), (mid(5),))

    feed(loop, 1, {1: (3, 0), 3: (3, 0), 4: (3, 0), 5: (0, 5)})
    second = close(loop, 1)

    # E = 5 over 3 + 3 + 3 in the new order 1, 4, 3: floor(15/9) = 1, floor(30/9) - 1 = 2, 5 - 3 = 2.
    assert [m.meter_id for m in second.members] == [mid(1), mid(4), mid(3), mid(5)]
    assert column(second, "allocated") == [1, 2, 2, 0]


def test_a_removed_meter_stays_in_the_order_until_its_last_reported_interval_is_settled() -> None:
    loop = new_loop()
    for n in (1, 2, 3):
        add(loop, n)
    feed(loop, 0, {1: (1, 1), 2: (2, 2), 3: (3, 3)})
    loop.finalize(0, just_after(0))
    feed(loop, 1, {1: (1, 1), 2: (2, 2), 3: (3, 3)})  # ahead of settlement
    loop.remove_meter(mid(1))

    assert part(loop.settle_next(), 1)[:4] == (1, 1, 1, 1)
    assert loop.settlement_order() == ((mid(1), mid(2), mid(3)), (mid(1), mid(2), mid(3)))

    loop.finalize(1, just_after(1))
    result = loop.settle_next()

    assert part(result, 1)[:4] == (1, 1, 1, 1)
    assert loop.settlement_order() == ((mid(3), mid(2)), (mid(3), mid(2)))
    assert loop.pending(mid(1)) == {}


def test_an_interval_nobody_reported_leaves_the_settlement_order_alone() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    loop.remove_meter(mid(1))

    assert close(loop, 0).members == ()
    assert loop.settlement_order() == ((mid(1), mid(2)), (mid(1), mid(2)))

    feed(loop, 1, {2: (1, 0)})
    close(loop, 1)
    assert loop.settlement_order() == ((mid(2),), (mid(2),))


def test_the_energy_of_a_removed_meter_still_settles_and_shared_payouts_add_up() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.CONSUMER)
    add(loop, 3, MeterKind.CONSUMER, account=2)
    feed(loop, 0, {1: (0, 9), 2: (3, 0), 3: (6, 0)})
    loop.remove_meter(mid(1))

    result = close(loop, 0)

    assert column(result, "allocated") == [3, 6, 0]
    assert column(result, "sold") == [0, 0, 9]
    assert loop.tokens(payout(1)) == Tokens(produced=9)
    assert loop.tokens(payout(2)) == Tokens(produced=0, consumed=9, self_consumed=9)
    assert loop.ledger_positions() == {payout(2): -18, payout(1): 18}


# --- meter changes: rotations and repairs ----------------------------------------------------


def test_without_a_notice_a_rotation_applies_at_once() -> None:
    loop = new_loop()
    add(loop, 1)

    loop.schedule_change(mid(1), signer(7), during(0))

    assert loop.meter(mid(1)).signer == signer(7)
    assert loop.change(mid(1)) is None


def test_with_a_notice_a_change_is_announced_and_applied_by_anyone_once_due() -> None:
    loop = new_loop(notice_seconds=3600)
    add(loop, 1)
    due = during(0) + 3600

    loop.schedule_change(mid(1), signer(7), during(0))

    assert loop.change(mid(1)) == MeterChange(signer(7), due, False, 0, 0)
    assert loop.meter(mid(1)).signer == signer(1)
    with reverts("MeterChangeNotDue", mid(1), due):
        loop.apply_change(mid(1), due - 1)
    loop.apply_change(mid(1), due)
    assert loop.meter(mid(1)).signer == signer(7)
    assert loop.change(mid(1)) is None


def test_the_members_payout_account_confirms_a_change_to_apply_it_at_once() -> None:
    loop = new_loop(notice_seconds=7 * 86_400)
    add(loop, 1)
    add(loop, 2)
    loop.schedule_change(mid(1), signer(7), during(0))

    with reverts("NotMeterPayout", mid(1), payout(2)):
        loop.confirm_change(mid(1), payout(2), during(0))
    with reverts("NotMeterPayout", mid(9), payout(1)):
        loop.confirm_change(mid(9), payout(1), during(0))
    with reverts("NoMeterChange", mid(2)):
        loop.confirm_change(mid(2), payout(2), during(0))
    assert loop.meter(mid(1)).signer == signer(1)

    loop.confirm_change(mid(1), payout(1), during(0) + 1)

    assert loop.meter(mid(1)).signer == signer(7)
    assert loop.change(mid(1)) is None


def test_the_pmo_cancels_an_announced_change() -> None:
    loop = new_loop(notice_seconds=3600)
    add(loop, 1)
    loop.schedule_change(mid(1), signer(7), during(0), reset=True, import_wh=0, export_wh=0)

    loop.cancel_change(mid(1))

    assert loop.change(mid(1)) is None
    with reverts("NoMeterChange", mid(1)):
        loop.cancel_change(mid(1))
    with reverts("NoMeterChange", mid(1)):
        loop.apply_change(mid(1), during(10))
    assert loop.meter(mid(1)).signer == signer(1)


def test_a_new_announcement_replaces_the_one_pending() -> None:
    loop = new_loop(notice_seconds=3600)
    add(loop, 1)
    loop.schedule_change(mid(1), signer(7), during(0))

    loop.schedule_change(mid(1), signer(8), during(1), reset=True, import_wh=5, export_wh=6)

    assert loop.change(mid(1)) == MeterChange(signer(8), during(1) + 3600, True, 5, 6)


def test_schedule_change_checks_the_meter_then_the_account() -> None:
    loop = new_loop()
    add(loop, 1)
    add(loop, 2)
    loop.remove_meter(mid(2))

    with reverts("UnknownMeter", mid(9)):
        loop.schedule_change(mid(9), ZERO_ADDRESS, during(0))
    with reverts("MeterNotActive", mid(2)):
        loop.schedule_change(mid(2), ZERO_ADDRESS, during(0))
    with reverts("InvalidMeterAccount", ZERO_ADDRESS):
        loop.schedule_change(mid(1), ZERO_ADDRESS, during(0))


def test_removing_a_meter_withdraws_its_announced_change() -> None:
    loop = new_loop(notice_seconds=3600)
    add(loop, 1)
    loop.schedule_change(mid(1), signer(7), during(0))

    loop.remove_meter(mid(1))

    assert loop.change(mid(1)) is None
    with reverts("NoMeterChange", mid(1)):
        loop.confirm_change(mid(1), payout(1), during(0))


def test_a_repair_restarts_the_indices_of_a_swapped_meter() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.CONSUMER, import_wh=5000)
    feed(loop, 0, {1: (100, 0)})
    close(loop, 0)
    swapped = ModelReading(mid(1), 1, 50, 0)  # the new meter started at 20
    assert loop.submit([swapped], just_after(1)) == [RejectReason.INDEX_DECREASED]

    loop.schedule_change(mid(1), signer(1), just_after(1), reset=True, import_wh=20, export_wh=0)

    meter = loop.meter(mid(1))
    assert (meter.import_wh, meter.export_wh, meter.next_interval) == (20, 0, 1)
    assert loop.submit([swapped], just_after(1)) == [None]
    assert loop.pending(mid(1)) == {1: (30, 0)}


def test_until_a_repair_applies_readings_compare_with_the_old_indices() -> None:
    loop = new_loop(notice_seconds=INTERVAL)
    add(loop, 1, MeterKind.CONSUMER, now=GENESIS - INTERVAL, import_wh=5000)
    loop.schedule_change(mid(1), signer(1), during(0), reset=True, import_wh=20, export_wh=0)

    assert loop.submit([ModelReading(mid(1), 0, 5010, 0)], just_after(0)) == [None]
    close(loop, 0)
    loop.apply_change(mid(1), during(1))
    assert loop.submit([ModelReading(mid(1), 1, 5020, 0), ModelReading(mid(1), 1, 25, 0)], just_after(1)) == [
        RejectReason.ABOVE_METER_LIMIT,  # 5000 Wh above the new index in one interval
        None,
    ]
    assert loop.pending(mid(1)) == {1: (5, 0)}


# --- calendar --------------------------------------------------------------------------------


def test_current_interval_counts_from_genesis() -> None:
    loop = new_loop()

    assert [loop.current_interval(now) for now in (GENESIS - 1, GENESIS, GENESIS + 899, GENESIS + 900)] == [-1, 0, 0, 1]
    assert loop.current_interval(GENESIS - 10 * INTERVAL) == -1
    assert loop.interval_end(2) == GENESIS + 2700


def test_first_noticed_interval_starts_after_the_notice_and_after_the_current_interval() -> None:
    assert new_loop().first_noticed_interval(GENESIS - 1) == 0
    assert new_loop().first_noticed_interval(GENESIS) == 1
    assert new_loop().first_noticed_interval(during(4)) == 5
    noticed = new_loop(notice_seconds=1000)
    assert noticed.first_noticed_interval(GENESIS - 100) == 1  # notice ends at genesis + 900
    assert noticed.first_noticed_interval(GENESIS - 101) == 1
    assert noticed.first_noticed_interval(GENESIS - 99) == 2


# --- readings --------------------------------------------------------------------------------


def test_accepted_reading_records_deltas_totals_and_indices() -> None:
    loop = new_loop(AllocationKey.WEIGHTED)
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
    assert loop.tokens(payout(1)) == Tokens()  # nothing is minted before settlement


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
    loop = new_loop(AllocationKey.WEIGHTED)
    add(loop, 1, weight=2)
    loop.schedule_terms(AllocationKey.WEIGHTED, PRICE, 2, during(0))
    loop.set_coefficients([mid(1)], [0], [5], during(0))
    feed(loop, 0, {1: (0, 0)})
    close(loop, 0)

    assert loop.submit([ModelReading(mid(1), 1, 10, 0), ModelReading(mid(1), 2, 13, 0)], during(3)) == [None, None]

    assert loop.totals(1).weighted_consumption == 2 * 10
    assert loop.totals(2).weighted_consumption == 5 * 3


def test_weighted_consumption_is_kept_only_under_the_weighted_key() -> None:
    loop = new_loop()
    add(loop, 1, weight=2)
    loop.schedule_terms(AllocationKey.WEIGHTED, PRICE, 1, during(0))

    assert loop.submit([ModelReading(mid(1), 0, 10, 0), ModelReading(mid(1), 1, 13, 0)], during(2)) == [None, None]

    assert (loop.totals(0).weighted_consumption, loop.totals(1).weighted_consumption) == (0, 2 * 3)


def reject_scenario() -> LoopModel:
    """Meter 1 (prosumer) reported interval 0 (indices 1100/600); meter 2 did too, then was removed;
    meter 3 is a consumer and meter 4 a producer that never reported; meter 5 was admitted in interval 3.

    Intervals 0-2 are finalized, 0-1 settled: backlog starts at interval 4.
    """
    loop = new_loop()
    add(loop, 1, import_wh=1000, export_wh=500)
    add(loop, 2)
    add(loop, 3, MeterKind.CONSUMER, import_wh=1000)
    add(loop, 4, MeterKind.PRODUCER, export_wh=1000)
    outcomes = loop.submit([ModelReading(mid(1), 0, 1100, 600), ModelReading(mid(2), 0, 1, 1)], just_after(0))
    assert outcomes == [None, None]
    loop.remove_meter(mid(2))
    close(loop, 0)
    close(loop, 1)
    loop.finalize(2, after_grace(2))
    add(loop, 5, now=during(3))
    return loop


NOW = during(6)
# Meter 1's last accepted reading is of interval 0: a reading of interval 3 covers 3 intervals (2700 s),
# 9000 Wh at 12 kVA, 6750 Wh at 9 kWc.
IMPORT_CAP, EXPORT_CAP = 3 * IMPORT_WH, 3 * EXPORT_WH


@pytest.mark.parametrize(
    ("reading", "now", "expected"),
    [
        pytest.param(ModelReading(mid(9), 3, 0, 0, False), NOW, RejectReason.UNKNOWN_METER, id="unknown+forged"),
        pytest.param(ModelReading(mid(2), 3, 5, 5, False), NOW, RejectReason.BAD_SIGNATURE, id="forged+inactive"),
        pytest.param(ModelReading(mid(2), 0, 0, 0), NOW, RejectReason.METER_INACTIVE, id="inactive+stale"),
        pytest.param(ModelReading(mid(5), 2, 0, 0), NOW, RejectReason.NOT_YET_ACTIVE, id="before-admission"),
        # Stale and future together needs a clock behind the meter's last interval: the model allows it.
        pytest.param(ModelReading(mid(1), 0, 900, 600), during(0), RejectReason.STALE_INTERVAL, id="stale+future"),
        pytest.param(ModelReading(mid(1), 6, 900, 600), NOW, RejectReason.FUTURE_INTERVAL, id="future+backlog"),
        pytest.param(ModelReading(mid(1), 2, 900, 600), NOW, RejectReason.INTERVAL_FINALIZED, id="finalized+decr"),
        pytest.param(ModelReading(mid(1), 4, 900, 600), NOW, RejectReason.SETTLEMENT_BACKLOG, id="backlog+decr"),
        pytest.param(ModelReading(mid(3), 3, 999, 1), NOW, RejectReason.INDEX_DECREASED, id="decr+flow"),
        pytest.param(ModelReading(mid(1), 3, 1200, 599), NOW, RejectReason.INDEX_DECREASED, id="export-decreased"),
        pytest.param(
            ModelReading(mid(3), 3, 1000 + IMPORT_CAP + 1, 1), NOW, RejectReason.FLOW_NOT_ALLOWED, id="flow+limit"
        ),
        pytest.param(ModelReading(mid(4), 3, 1, 1000), NOW, RejectReason.FLOW_NOT_ALLOWED, id="import-into-producer"),
        pytest.param(
            ModelReading(mid(1), 3, 1100 + IMPORT_CAP + 1, 600), NOW, RejectReason.ABOVE_METER_LIMIT, id="import-limit"
        ),
        pytest.param(
            ModelReading(mid(1), 3, 1100, 600 + EXPORT_CAP + 1), NOW, RejectReason.ABOVE_METER_LIMIT, id="export-limit"
        ),
        pytest.param(
            ModelReading(mid(1), 3, 2**64 - 1, 2**64 - 1), NOW, RejectReason.ABOVE_METER_LIMIT, id="widest-indices"
        ),
    ],
)
def test_rejected_reading_reports_its_first_failing_check_and_changes_nothing(
    reading: ModelReading, now: int, expected: RejectReason
) -> None:
    loop = reject_scenario()
    meters_before = [loop.meter(m) for m in loop.meter_ids()]
    tokens_before = [loop.tokens(payout(n)) for n in range(1, 6)]

    assert loop.submit([reading], now) == [expected]

    assert [loop.meter(m) for m in loop.meter_ids()] == meters_before
    assert [loop.tokens(payout(n)) for n in range(1, 6)] == tokens_before
    assert loop.pending(mid(1)) == {}
    assert loop.totals(3) == IntervalTotals()


def test_the_most_energy_the_limits_allow_since_the_last_reading_is_accepted_and_spread() -> None:
    loop = reject_scenario()
    tokens = loop.tokens(payout(1))

    assert loop.submit([ModelReading(mid(1), 3, 1100 + IMPORT_CAP, 600 + EXPORT_CAP)], NOW) == [None]

    assert loop.pending(mid(1)) == {3: (IMPORT_WH, EXPORT_WH)}
    carried = Tokens(tokens.produced + 2 * EXPORT_WH, tokens.consumed + 2 * IMPORT_WH, tokens.self_consumed)
    assert loop.tokens(payout(1)) == carried


def test_a_consumer_without_export_may_repeat_its_export_index() -> None:
    loop = reject_scenario()

    assert loop.submit([ModelReading(mid(3), 3, 1000 + 4 * IMPORT_WH, 0)], NOW) == [None]
    assert loop.pending(mid(3)) == {3: (IMPORT_WH, 0)}  # four intervals since its admission: 12 000 // 4


def test_honest_catch_up_after_an_outage_is_accepted() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.CONSUMER)
    add(loop, 2, MeterKind.PRODUCER)
    for t in range(3):  # the consumer's gateway is down for three intervals
        feed(loop, t, {2: (0, 100)})
        close(loop, t)
    assert feed(loop, 3, {1: (4 * IMPORT_WH + 1, 0)}) == [RejectReason.ABOVE_METER_LIMIT]

    assert feed(loop, 3, {1: (10_000, 0), 2: (0, 2000)}) == [None, None]

    # 10 000 Wh over four intervals: 2500 take part in interval 3, 7500 are grid energy at once.
    assert loop.pending(mid(1)) == {3: (2500, 0)}
    assert loop.tokens(payout(1)) == Tokens(consumed=7500)
    result = close(loop, 3)
    assert part(result, 1)[:2] == (2500, 2000)
    assert loop.tokens(payout(1)) == Tokens(consumed=10_000, self_consumed=2000)


def test_the_limit_is_exact_for_a_meter_below_one_wh_per_interval() -> None:
    loop = new_loop()
    loop.add_meter(mid(1), signer(1), payout(1), MeterKind.CONSUMER, import_limit_w=1, export_limit_w=0, now=GENESIS)

    for t in range(3):  # 1 W x 900 s is 0.25 Wh: 1 Wh needs four intervals
        assert feed(loop, t, {1: (1, 0)}) == [RejectReason.ABOVE_METER_LIMIT]
        close(loop, t)

    assert feed(loop, 3, {1: (1, 0)}) == [None]
    assert loop.pending(mid(1)) == {3: (0, 0)}
    assert loop.tokens(payout(1)) == Tokens(consumed=1)


def test_a_late_consumer_takes_part_with_its_share_and_the_rest_is_grid_energy() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.CONSUMER)
    add(loop, 2, MeterKind.PRODUCER)
    add(loop, 3, MeterKind.CONSUMER)
    feed(loop, 0, {1: (10, 0), 2: (0, 10), 3: (10, 0)})
    close(loop, 0)
    feed(loop, 1, {2: (0, 10), 3: (10, 0)})
    close(loop, 1)
    before = loop.tokens(payout(1))

    assert feed(loop, 2, {1: (1001, 0), 2: (0, 900), 3: (400, 0)}) == [None, None, None]

    # 1001 Wh over intervals 1 and 2: 500 take part in interval 2, 501 are booked at once from the grid.
    assert loop.tokens(payout(1)) == Tokens(consumed=before.consumed + 501, self_consumed=before.self_consumed)
    assert loop.totals(2) == IntervalTotals(consumed=900, produced=900, reported=3)
    result = close(loop, 2)
    assert part(result, 1)[:2] == (500, 500)
    assert part(result, 3)[:2] == (400, 400)
    assert loop.tokens(payout(1)) == Tokens(consumed=before.consumed + 1001, self_consumed=before.self_consumed + 500)


def test_a_late_producer_sells_only_its_share_and_the_rest_goes_to_the_grid_unpaid() -> None:
    loop = new_loop(price=3)
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.CONSUMER)
    for t in (0, 1):
        feed(loop, t, {2: (500, 0)})
        close(loop, t)

    assert feed(loop, 2, {1: (0, 1000), 2: (500, 0)}) == [None, None]

    assert loop.tokens(payout(1)) == Tokens(produced=667)  # 1000 - 1000 // 3
    assert loop.account(payout(1)).net == 0
    result = close(loop, 2)
    assert part(result, 1)[2:5] == (333, 333, 999)
    assert loop.tokens(payout(1)) == Tokens(produced=1000)


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

    with reverts("IntervalStillOpen", 0, 1, 2, after_grace(0)):
        loop.finalize(0, after_grace(0) - 1)
    loop.finalize(0, after_grace(0))

    feed(loop, 1, {1: (1, 0), 2: (2, 0)})
    loop.finalize(1, just_after(1))
    assert loop.finalized_through == 1


def test_a_finalized_interval_refuses_readings_and_they_flow_into_the_next_one() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.CONSUMER)
    loop.finalize(0, after_grace(0))

    assert feed(loop, 0, {1: (5, 0)}, now=after_grace(0)) == [RejectReason.INTERVAL_FINALIZED]
    assert feed(loop, 1, {1: (5, 0)}) == [None]
    assert loop.pending(mid(1)) == {1: (2, 0)}  # 5 Wh over intervals 0 and 1


def test_settle_needs_a_finalized_interval() -> None:
    loop = new_loop()

    with reverts("IntervalNotFinalized", 0):
        loop.settle_next()
    loop.finalize(0, after_grace(0))
    assert loop.settle_next().interval == 0
    with reverts("IntervalNotFinalized", 1):
        loop.settle_next()


# --- settlement ------------------------------------------------------------------------------


def test_settlement_books_tokens_and_what_each_side_owes() -> None:
    loop = new_loop(price=3)
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.CONSUMER)
    add(loop, 3)  # prosumer
    feed(loop, 0, {1: (0, 10), 2: (4, 0), 3: (2, 1)})

    result = close(loop, 0)

    # Consumers 2, 3 then producers 1, 3. P = 11, C = 6, E = 6: A = 4, 2;
    # S over 10 + 1 of 6: floor(60/11) = 5, then 6 - 5 = 1. Nobody deposited: nothing is paid.
    assert [m.meter_id for m in result.members] == [mid(2), mid(3), mid(1)]
    assert part(result, 1) == (0, 0, 10, 5, 15, 0, 0)
    assert part(result, 2) == (4, 4, 0, 0, -12, 0, 0)
    assert part(result, 3) == (2, 2, 1, 1, -3, 0, 0)
    assert loop.tokens(payout(1)) == Tokens(produced=10, consumed=0, self_consumed=0)
    assert loop.tokens(payout(2)) == Tokens(produced=0, consumed=4, self_consumed=4)
    assert loop.tokens(payout(3)) == Tokens(produced=1, consumed=2, self_consumed=2)
    assert loop.ledger_positions() == {payout(2): -12, payout(3): -3, payout(1): 15}
    assert loop.pending(mid(1)) == {}
    assert (loop.settled_through, loop.finalized_through) == (0, 0)


def test_unreported_interval_settles_to_nothing() -> None:
    loop = new_loop()
    add(loop, 1)

    result = close(loop, 0)

    assert result == IntervalResult(0, AllocationKey.PRORATA, PRICE, (), 0, 0, 0, 0)
    assert loop.ledger_positions() == {}
    assert loop.tokens(payout(1)) == Tokens()


# --- terms -----------------------------------------------------------------------------------


def test_terms_start_after_the_current_interval() -> None:
    loop = new_loop()

    with reverts("InvalidEffectiveInterval", 3, 4):
        loop.schedule_terms(AllocationKey.STATIC, 1, 3, during(3))
    with reverts("InvalidEffectiveInterval", 1, 4):
        loop.schedule_terms(AllocationKey.STATIC, 1, 1, during(3))
    loop.schedule_terms(AllocationKey.STATIC, 1, 0, GENESIS - 1)
    assert loop.next_terms == Terms(AllocationKey.STATIC, 1, 0, 1)


def test_terms_start_at_least_the_notice_ahead() -> None:
    loop = new_loop(notice_seconds=2 * INTERVAL)

    # (3.5 + 2) intervals: the first to start after the notice is 6.
    with reverts("InvalidEffectiveInterval", 5, 6):
        loop.schedule_terms(AllocationKey.STATIC, 1, 5, during(3))
    loop.schedule_terms(AllocationKey.STATIC, 1, 6, during(3))

    assert loop.next_terms == Terms(AllocationKey.STATIC, 1, 6, 1)


def test_the_price_never_goes_above_the_cap() -> None:
    loop = new_loop(price=2)  # cap 4

    with reverts("PriceAboveCap", 5, 4):
        loop.schedule_terms(AllocationKey.PRORATA, 5, 1, during(0))
    loop.schedule_terms(AllocationKey.PRORATA, 4, 1, during(0))

    assert loop.terms_at(1).price_per_wh == 4


def test_the_pmo_cannot_raise_the_price_for_the_next_interval_of_a_noticed_loop() -> None:
    loop = new_loop(price=100, notice_seconds=7 * 86_400)

    with reverts("PriceAboveCap", 20_000, 200):
        loop.schedule_terms(AllocationKey.PRORATA, 20_000, 1, during(0))
    with reverts("InvalidEffectiveInterval", 1, 673):  # 7 days = 672 intervals after 0.5
        loop.schedule_terms(AllocationKey.PRORATA, 200, 1, during(0))

    assert loop.terms_at(10**6) == Terms(AllocationKey.PRORATA, 100, 0, 0)


def test_scheduled_terms_take_effect_from_their_interval() -> None:
    loop = new_loop()
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.CONSUMER, share=1000)
    add(loop, 3, MeterKind.CONSUMER, share=1000)
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))
    loop.set_coefficients([mid(2), mid(3)], [2000, 5000], [0, 0], during(0))
    results = []
    for t in range(3):
        feed(loop, t, {1: (0, 10), 2: (3, 0), 3: (4, 0)})
        results.append(close(loop, t))

    assert [(r.key, r.price_per_wh) for r in results] == [
        (AllocationKey.PRORATA, 2),
        (AllocationKey.PRORATA, 2),
        (AllocationKey.STATIC, 4),
    ]
    assert column(results[1], "allocated") == [3, 4, 0]
    assert column(results[1], "amount") == [-6, -8, 14]
    # 20 % of 10 = 2 of 3; 50 % of 10 = 5, capped at 4.
    assert column(results[2], "allocated") == [2, 4, 0]
    assert column(results[2], "amount") == [-8, -16, 24]


def test_pending_terms_are_replaced_in_the_same_epoch() -> None:
    loop = new_loop()
    loop.schedule_terms(AllocationKey.STATIC, 3, 5, during(0))

    loop.schedule_terms(AllocationKey.WEIGHTED, 4, 3, during(2))

    assert loop.next_terms == Terms(AllocationKey.WEIGHTED, 4, 3, 1)
    assert loop.current_terms == Terms(AllocationKey.PRORATA, PRICE, 0, 0)


def test_terms_in_force_are_promoted_only_once_the_old_ones_are_settled() -> None:
    loop = new_loop()
    add(loop, 1, share=1000)
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))
    loop.set_coefficients([mid(1)], [4000], [1], during(0))
    close(loop, 0)

    with reverts("TermsChangePending", 2):
        loop.schedule_terms(AllocationKey.WEIGHTED, 3, 6, during(3))

    close(loop, 1)
    loop.schedule_terms(AllocationKey.WEIGHTED, 3, 6, during(3))
    assert loop.current_terms == Terms(AllocationKey.STATIC, 4, 2, 1)
    assert loop.next_terms == Terms(AllocationKey.WEIGHTED, 3, 6, 2)
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
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))

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
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))
    loop.set_coefficients([mid(1)], [4000], [2], during(0))
    close(loop, 0)
    close(loop, 1)
    loop.schedule_terms(AllocationKey.WEIGHTED, 3, 5, during(3))
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
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))
    with reverts("NoPendingTerms"):
        loop.set_coefficients([mid(1)], [1], [1], during(2))


def test_set_coefficients_only_while_the_terms_are_at_least_the_notice_away() -> None:
    loop = new_loop(notice_seconds=2 * INTERVAL)
    add(loop, 1, now=GENESIS - INTERVAL)
    loop.schedule_terms(AllocationKey.STATIC, 1, 3, during(0))  # the earliest: (0.5 + 2) intervals → 3

    loop.set_coefficients([mid(1)], [100], [1], during(0))
    with reverts("NoPendingTerms"):
        loop.set_coefficients([mid(1)], [200], [1], just_after(0) + 1)  # 3 starts less than the notice from now

    assert loop.coefficients(mid(1), 3) == (100, 1)


def test_set_coefficients_is_all_or_nothing() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2, share=3000)
    add(loop, 3)
    loop.remove_meter(mid(3))
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))
    before = [loop.meter(mid(1)), loop.meter(mid(2))]

    with reverts("SharesExceedTotal", 11_000):
        loop.set_coefficients([mid(1), mid(2)], [6000, 5000], [1, 1], during(0))
    with reverts("UnknownMeter", mid(9)):
        loop.set_coefficients([mid(1), mid(9)], [0, 0], [1, 1], during(0))
    with reverts("MeterNotActive", mid(3)):
        loop.set_coefficients([mid(1), mid(3)], [0, 0], [1, 1], during(0))
    with reverts("InvalidShare", 10_001):
        loop.set_coefficients([mid(1), mid(2)], [0, 10_001], [1, 1], during(0))

    assert [loop.meter(mid(1)), loop.meter(mid(2))] == before
    assert loop.shares_next == 6000


def test_set_coefficients_checks_only_the_final_total() -> None:
    loop = new_loop()
    add(loop, 1, share=3000)
    add(loop, 2, share=3000)
    loop.schedule_terms(AllocationKey.STATIC, 4, 2, during(0))

    loop.set_coefficients([mid(1), mid(2)], [8000, 0], [1, 1], during(0))  # 11 000 midway, 8 000 at the end

    assert loop.shares_next == 8000
    assert loop.shares_current == 6000


def test_settlement_uses_the_weights_of_its_interval() -> None:
    loop = new_loop(AllocationKey.WEIGHTED)
    add(loop, 1, MeterKind.PRODUCER)
    add(loop, 2, MeterKind.CONSUMER, weight=1)
    add(loop, 3, MeterKind.CONSUMER, weight=3)
    loop.schedule_terms(AllocationKey.WEIGHTED, PRICE, 1, during(0))
    loop.set_coefficients([mid(2), mid(3)], [0, 0], [3, 1], during(0))
    results = []
    for t in range(2):
        feed(loop, t, {1: (0, 6), 2: (4, 0), 3: (4, 0)})
        results.append(close(loop, t))

    # W = 1·4 + 3·4 = 16: floor(6·4/16) = 1, floor(6·12/16) = 4; then the weights swap.
    assert column(results[0], "allocated") == [1, 4, 0]
    assert column(results[1], "allocated") == [4, 1, 0]
