"""Signed readings: what the loop accepts, and every way a reading is refused, on every chain."""

from __future__ import annotations

import pytest
from eth_account import Account

from daisee.domain import RejectReason
from daisee.errors import DaiseeError
from daisee.loop import SUBMIT_GAS, SUBMIT_GAS_PER_READING
from daisee.readings import LoopDomain, Reading, SignedReading
from tests.contract.conftest import SignedLoop


def _only_rejection(result, reason: RejectReason) -> None:  # type: ignore[no-untyped-def]
    assert result.accepted == []
    assert [r[2] for r in result.rejected] == [reason]


def test_accepts_a_signed_reading_and_records_its_deltas(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    result = signed_loop.loop.submit([signed_loop.sign(consumer, 0, 1_500, 0)])

    assert result.accepted == [(consumer.meter_id, 0)]
    assert result.rejected == []
    assert signed_loop.counter(consumer) == (1, 1_500, 0)
    totals = signed_loop.loop.contract.functions.intervalTotals(0).call()
    assert totals[:4] == (0, 1, 1_500, 0)
    assert signed_loop.loop.tokens(consumer.payout) == (0, 0, 0)  # minted when the interval settles


def test_a_reading_covering_several_intervals_shares_only_its_last_intervals_part(signed_loop: SignedLoop) -> None:
    consumer, prosumer = signed_loop.households[1:]
    # the consumer's first reading comes for interval 1: it covers intervals 0 and 1
    result = signed_loop.loop.submit([signed_loop.sign(consumer, 1, 1_001, 0), signed_loop.sign(prosumer, 1, 0, 201)])

    assert len(result.accepted) == 2
    carried = [dict(e["args"]) for e in signed_loop.loop.events("EnergyCarried", result.receipt)]
    assert carried == [
        {"meterId": consumer.meter_id, "interval": 1, "fromInterval": 0, "consumedWh": 501, "producedWh": 0},
        {"meterId": prosumer.meter_id, "interval": 1, "fromInterval": 0, "consumedWh": 0, "producedWh": 101},
    ]
    assert signed_loop.loop.contract.functions.intervalTotals(1).call()[:4] == (1, 2, 500, 100)
    # the earlier interval's part came from and went to the grid: tokens at once, nothing self-consumed
    assert signed_loop.loop.tokens(consumer.payout) == (0, 501, 0)
    assert signed_loop.loop.tokens(prosumer.payout) == (101, 0, 0)
    assert signed_loop.counter(consumer) == (2, 1_001, 0)


def test_a_bad_reading_does_not_spoil_its_batch(signed_loop: SignedLoop) -> None:
    producer, consumer, prosumer = signed_loop.households
    forged = Reading(consumer.meter_id, 0, 10, 0).sign(Account.create().key, signed_loop.loop.domain)
    batch = [signed_loop.sign(producer, 0, 0, 700), forged, signed_loop.sign(prosumer, 0, 50, 80)]

    result = signed_loop.loop.submit(batch)

    assert result.accepted == [(producer.meter_id, 0), (prosumer.meter_id, 0)]
    assert result.rejected == [(consumer.meter_id, 0, RejectReason.BAD_SIGNATURE)]
    assert signed_loop.counter(consumer) == (0, 0, 0)


@pytest.mark.parametrize(
    "domain_change",
    ["other-chain", "other-loop"],
)
def test_rejects_a_signature_for_another_chain_or_loop(signed_loop: SignedLoop, domain_change: str) -> None:
    consumer = signed_loop.households[1]
    domain = signed_loop.loop.domain
    elsewhere = (
        LoopDomain(domain.chain_id + 1, domain.loop)
        if domain_change == "other-chain"
        else LoopDomain(domain.chain_id, "0x" + "42" * 20)
    )
    reading = Reading(consumer.meter_id, 2, 100, 0).sign(consumer.key.key, elsewhere)

    _only_rejection(signed_loop.loop.submit([reading]), RejectReason.BAD_SIGNATURE)
    assert signed_loop.counter(consumer) == (0, 0, 0)


def test_rejects_a_reading_signed_by_another_key(signed_loop: SignedLoop) -> None:
    producer, consumer, _ = signed_loop.households
    reading = Reading(consumer.meter_id, 1, 100, 0).sign(producer.key.key, signed_loop.loop.domain)
    _only_rejection(signed_loop.loop.submit([reading]), RejectReason.BAD_SIGNATURE)


@pytest.mark.parametrize(
    ("r", "vs"),
    [
        (bytes(32), bytes(31) + b"\x01"),
        (b"\x01" * 32, bytes.fromhex("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a1")),
        (b"\xff" * 32, b"\xff" * 32),
    ],
    ids=["zero-r", "high-s", "garbage"],
)
def test_rejects_a_malformed_signature(signed_loop: SignedLoop, r: bytes, vs: bytes) -> None:
    consumer = signed_loop.households[1]
    malformed = SignedReading(Reading(consumer.meter_id, 1, 100, 0), r, vs)
    _only_rejection(signed_loop.loop.submit([malformed]), RejectReason.BAD_SIGNATURE)


def test_rejects_a_replayed_reading(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    reading = signed_loop.sign(consumer, 1, 300, 0)
    signed_loop.loop.submit([reading])

    _only_rejection(signed_loop.loop.submit([reading]), RejectReason.STALE_INTERVAL)
    assert signed_loop.counter(consumer) == (2, 300, 0)


def test_rejects_the_same_reading_twice_in_one_batch(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    reading = signed_loop.sign(consumer, 1, 300, 0)

    result = signed_loop.loop.submit([reading, reading])

    assert result.accepted == [(consumer.meter_id, 1)]
    assert result.rejected == [(consumer.meter_id, 1, RejectReason.STALE_INTERVAL)]
    assert signed_loop.loop.contract.functions.intervalTotals(1).call()[:4] == (1, 1, 150, 0)  # 300 over 2 intervals


def test_rejects_an_earlier_interval_than_the_last(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    signed_loop.loop.submit([signed_loop.sign(consumer, 1, 300, 0)])
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(consumer, 0, 400, 0)]), RejectReason.STALE_INTERVAL)


def test_rejects_a_decreasing_index(signed_loop: SignedLoop) -> None:
    prosumer = signed_loop.households[2]
    signed_loop.loop.submit([signed_loop.sign(prosumer, 0, 500, 500)])
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(prosumer, 1, 600, 499)]), RejectReason.INDEX_DECREASED)
    assert signed_loop.counter(prosumer) == (1, 500, 500)


def test_rejects_energy_beyond_what_the_meter_can_carry(signed_loop: SignedLoop) -> None:
    consumer, prosumer = signed_loop.households[1:]
    # 12 kVA for 900 s: 3000 Wh at most; 9 kWc: 2250 Wh
    for imported, exported, who in ((2**64 - 1, 0, consumer), (3_001, 0, consumer), (0, 2_251, prosumer)):
        _only_rejection(
            signed_loop.loop.submit([signed_loop.sign(who, 0, imported, exported)]), RejectReason.ABOVE_METER_LIMIT
        )
    assert signed_loop.counter(consumer) == (0, 0, 0)
    at_limit = signed_loop.loop.submit(
        [signed_loop.sign(consumer, 0, 3_000, 0), signed_loop.sign(prosumer, 0, 3_000, 2_250)]
    )
    assert at_limit.accepted == [(consumer.meter_id, 0), (prosumer.meter_id, 0)]


def test_the_limit_counts_the_time_since_the_last_accepted_reading(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    # the first reading comes for interval 1: since the admission, intervals 0 and 1 allow 6000 Wh
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(consumer, 1, 6_001, 0)]), RejectReason.ABOVE_METER_LIMIT)
    assert signed_loop.loop.submit([signed_loop.sign(consumer, 1, 6_000, 0)]).accepted == [(consumer.meter_id, 1)]
    assert signed_loop.loop.contract.functions.intervalTotals(1).call()[:4] == (1, 1, 3_000, 0)


def test_rejects_a_flow_the_meter_cannot_have(signed_loop: SignedLoop) -> None:
    producer, consumer, _ = signed_loop.households
    batch = [signed_loop.sign(consumer, 0, 10, 1), signed_loop.sign(producer, 0, 1, 10)]
    result = signed_loop.loop.submit(batch)
    assert result.accepted == []
    assert result.rejected == [
        (consumer.meter_id, 0, RejectReason.FLOW_NOT_ALLOWED),
        (producer.meter_id, 0, RejectReason.FLOW_NOT_ALLOWED),
    ]
    assert [signed_loop.counter(h) for h in (producer, consumer)] == [(0, 0, 0), (0, 0, 0)]


def test_rejects_an_interval_that_has_not_ended(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    current = signed_loop.loop.current_interval()
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(consumer, current, 1, 0)]), RejectReason.FUTURE_INTERVAL)


def test_rejects_a_finalized_interval_and_carries_its_energy_forward(signed_loop: SignedLoop) -> None:
    producer, consumer, prosumer = signed_loop.households
    signed_loop.loop.submit([signed_loop.sign(producer, 0, 0, 10), signed_loop.sign(prosumer, 0, 10, 10)])
    signed_loop.loop.submit([signed_loop.sign(consumer, 0, 100, 0)])
    signed_loop.loop.finalize(0)

    late = signed_loop.sign(producer, 0, 0, 20)
    _only_rejection(signed_loop.loop.submit([late]), RejectReason.STALE_INTERVAL)
    signed_loop.loop.settle()
    result = signed_loop.loop.submit([signed_loop.sign(consumer, 1, 250, 0)])
    assert result.accepted == [(consumer.meter_id, 1)]
    assert signed_loop.loop.contract.functions.intervalTotals(1).call()[2] == 150


def test_rejects_an_unreported_finalized_interval(any_chain) -> None:  # type: ignore[no-untyped-def]
    from tests.contract.conftest import make_signed_loop

    loop = make_signed_loop(any_chain, grace_seconds=60)
    consumer = loop.households[1]
    loop.loop.finalize(0)
    _only_rejection(loop.loop.submit([loop.sign(consumer, 0, 100, 0)]), RejectReason.INTERVAL_FINALIZED)


def test_rejects_readings_too_far_ahead_of_settlement(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    result = signed_loop.loop.submit([signed_loop.sign(consumer, 2, 100, 0)])
    _only_rejection(result, RejectReason.SETTLEMENT_BACKLOG)
    assert signed_loop.loop.submit([signed_loop.sign(consumer, 1, 100, 0)]).accepted == [(consumer.meter_id, 1)]


def test_rejects_an_unknown_meter(signed_loop: SignedLoop) -> None:
    stranger = Account.create()
    reading = Reading(b"\x99" * 32, 0, 1, 0).sign(stranger.key, signed_loop.loop.domain)
    _only_rejection(signed_loop.loop.submit([reading]), RejectReason.UNKNOWN_METER)


def test_rejects_a_removed_meter(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    signed_loop.loop.remove_meter(consumer.meter_id)
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(consumer, 0, 100, 0)]), RejectReason.METER_INACTIVE)
    producer, _, prosumer = signed_loop.households
    signed_loop.loop.submit([signed_loop.sign(producer, 0, 0, 10), signed_loop.sign(prosumer, 0, 10, 0)])
    signed_loop.loop.finalize(0)  # the two remaining meters are enough, within the day of grace
    assert signed_loop.loop.contract.functions.activeMeterCount().call() == 2


def test_rotated_out_signer_is_rejected_and_the_new_one_accepted(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    new_key = Account.create()
    receipt = signed_loop.loop.rotate_signer(consumer.meter_id, new_key.address)

    [scheduled] = signed_loop.loop.events("MeterChangeScheduled", receipt)
    assert (scheduled["args"]["newSigner"], scheduled["args"]["reset"]) == (new_key.address, False)
    [event] = signed_loop.loop.events("MeterChanged", receipt)  # no notice on this loop: at once
    assert (event["args"]["previousSigner"], event["args"]["newSigner"], event["args"]["confirmed"]) == (
        consumer.key.address,
        new_key.address,
        False,
    )
    _only_rejection(signed_loop.loop.submit([signed_loop.sign(consumer, 0, 100, 0)]), RejectReason.BAD_SIGNATURE)
    fresh = Reading(consumer.meter_id, 0, 100, 0).sign(new_key.key, signed_loop.loop.domain)
    assert signed_loop.loop.submit([fresh]).accepted == [(consumer.meter_id, 0)]


def test_rejects_an_empty_batch(signed_loop: SignedLoop) -> None:
    with pytest.raises(DaiseeError, match=r"EmptyBatch\(\)"):
        signed_loop.loop.submit([])


def test_paused_loop_takes_no_readings_until_resumed(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    reading = signed_loop.sign(consumer, 0, 100, 0)
    signed_loop.loop.pause_readings()
    with pytest.raises(DaiseeError, match=r"EnforcedPause\(\)"):
        signed_loop.loop.submit([reading])
    signed_loop.loop.unpause_readings()
    assert signed_loop.loop.submit([reading]).accepted == [(consumer.meter_id, 0)]


def test_anyone_may_submit_signed_readings(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1]
    relay = signed_loop.loop.as_sender(signed_loop.outsider)
    assert relay.submit([signed_loop.sign(consumer, 0, 100, 0)]).accepted == [(consumer.meter_id, 0)]


def test_the_costliest_batch_stays_well_within_the_gas_bound_batches_are_sent_with(signed_loop: SignedLoop) -> None:
    """A batch is not estimated but sent with SUBMIT_GAS + SUBMIT_GAS_PER_READING a reading: every meter's
    first reading, for interval 1 (so each carries a part to interval 0), the prosumer with both flows."""
    producer, consumer, prosumer = signed_loop.households
    batch = [
        signed_loop.sign(producer, 1, 0, 4_000),
        signed_loop.sign(consumer, 1, 4_000, 0),
        signed_loop.sign(prosumer, 1, 3_000, 2_000),
    ]
    result = signed_loop.loop.submit(batch)

    assert len(result.accepted) == 3
    assert int(result.receipt["gasUsed"]) <= 0.8 * (SUBMIT_GAS + SUBMIT_GAS_PER_READING * len(batch))
