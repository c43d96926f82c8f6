"""Finalizing and settling intervals, and the energy tokens they mint, on every chain."""

from __future__ import annotations

import re

import pytest

from daisee.chain.connect import Chain
from daisee.domain import AllocationKey
from daisee.errors import DaiseeError
from daisee.model import MemberEnergy, allocate
from tests.contract.conftest import INTERVAL, SignedLoop, make_signed_loop
from tests.contract.timetravel import travel_to

IERC1155 = bytes.fromhex("d9b67a26")
IERC1155_METADATA = bytes.fromhex("0e89341c")


def _report_interval(loop: SignedLoop, t: int, energy: list[tuple[int, int]]) -> None:
    """Every household reports cumulative indices that grew by `energy` since its last reading."""
    readings = []
    for household, (d_import, d_export) in zip(loop.households, energy, strict=True):
        _, imported, exported = loop.counter(household)
        readings.append(loop.sign(household, t, imported + d_import, exported + d_export))
    assert len(loop.loop.submit(readings).accepted) == len(readings)


def test_settles_an_interval_as_the_reference_allocation(signed_loop: SignedLoop) -> None:
    energy = [(0, 900), (700, 0), (400, 250)]
    _report_interval(signed_loop, 0, energy)
    signed_loop.loop.finalize(0)

    settled = signed_loop.loop.settle()

    expected = allocate(
        AllocationKey.PRORATA,
        100,
        [MemberEnergy(h.meter_id, c, p) for h, (c, p) in zip(signed_loop.households, energy, strict=True)],
    )
    results = signed_loop.loop.results(settled.receipts)[0]
    assert {m.meter_id: (m.allocated, m.sold) for m in expected.members} == {
        mid: (r.allocated, r.sold) for mid, r in results.items()
    }
    assert sum(r.allocated for r in results.values()) == sum(r.sold for r in results.values()) == 1_100
    producer, consumer, prosumer = signed_loop.households
    assert signed_loop.loop.tokens(consumer.payout) == (0, 700, results[consumer.meter_id].allocated)
    assert signed_loop.loop.tokens(producer.payout) == (900, 0, 0)
    assert signed_loop.loop.tokens(prosumer.payout)[:2] == (250, 400)
    balances = [signed_loop.loop.ledger_balance(h.payout) for h in signed_loop.households]
    assert sum(balances) == 0
    assert balances[1] == -100 * results[consumer.meter_id].allocated


def test_chunked_settlement_settles_each_meter_exactly_once(signed_loop: SignedLoop) -> None:
    _report_interval(signed_loop, 0, [(0, 900), (700, 0), (400, 250)])
    signed_loop.loop.finalize(0)

    settled = signed_loop.loop.settle(max_steps=1)

    assert len(settled.receipts) == 3
    consumption = [e for r in settled.receipts for e in signed_loop.loop.events("ConsumptionSettled", r)]
    production = [e for r in settled.receipts for e in signed_loop.loop.events("ProductionSettled", r)]
    assert sorted(e["args"]["meterId"] for e in consumption) == sorted(h.meter_id for h in signed_loop.households[1:])
    assert sorted(e["args"]["meterId"] for e in production) == sorted(
        h.meter_id for h in (signed_loop.households[0], signed_loop.households[2])
    )
    assert signed_loop.loop.next_to_settle() == 1
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotFinalized(interval=1)")):
        signed_loop.loop.settle()


def test_refuses_to_settle_an_unfinalized_interval(signed_loop: SignedLoop) -> None:
    _report_interval(signed_loop, 0, [(0, 900), (700, 0), (400, 250)])
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotFinalized(interval=0)")):
        signed_loop.loop.settle()
    with pytest.raises(DaiseeError, match=re.escape("ZeroSteps()")):
        signed_loop.loop.sender.transact(signed_loop.loop.contract.functions.settle(0), "settling")


def test_finalizes_intervals_in_order_once_over(signed_loop: SignedLoop) -> None:
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotNext(interval=1, expected=0)")):
        signed_loop.loop.finalize(1)
    current = signed_loop.loop.current_interval()
    loop = make_signed_loop(signed_loop.chain, grace_seconds=0, past_intervals=0)
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotOver(interval=0)")):
        loop.loop.finalize(0)
    assert current > 0


def test_waits_for_missing_meters_until_the_grace_period_ends(signed_loop: SignedLoop) -> None:
    producer, consumer, _ = signed_loop.households
    signed_loop.loop.submit([signed_loop.sign(producer, 0, 0, 500), signed_loop.sign(consumer, 0, 300, 0)])
    grace_end = signed_loop.genesis + INTERVAL + 86_400
    with pytest.raises(
        DaiseeError, match=re.escape(f"IntervalStillOpen(interval=0, reported=2, activeMeters=3, graceEnd={grace_end})")
    ):
        signed_loop.loop.finalize(0)


def test_a_missing_meter_does_not_block_once_grace_passed(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, grace_seconds=0)
    producer, consumer, _ = loop.households
    loop.loop.submit([loop.sign(producer, 0, 0, 500), loop.sign(consumer, 0, 300, 0)])
    loop.loop.finalize(0)
    results = loop.loop.results(loop.loop.settle().receipts)[0]
    assert (results[consumer.meter_id].allocated, results[producer.meter_id].sold) == (300, 300)


def test_an_interval_nobody_reported_settles_at_once(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, grace_seconds=0)
    loop.loop.finalize(0)
    settled = loop.loop.settle(max_steps=1)
    assert len(settled.receipts) == 1
    assert loop.loop.next_to_settle() == 1


def test_energy_tokens_are_visible_but_not_transferable(signed_loop: SignedLoop) -> None:
    _report_interval(signed_loop, 0, [(0, 900), (700, 0), (400, 250)])
    signed_loop.loop.finalize(0)
    [receipt] = signed_loop.loop.settle().receipts
    f = signed_loop.loop.contract.functions
    producer, consumer, _ = signed_loop.households

    [minted] = [
        e["args"] for e in signed_loop.loop.events("TransferBatch", receipt) if e["args"]["to"] == consumer.payout
    ]
    assert (int(minted["from"], 16), minted["ids"], minted["values"]) == (0, [1, 2], [700, 700])
    assert f.supportsInterface(IERC1155).call()
    assert f.supportsInterface(IERC1155_METADATA).call()
    assert not f.supportsInterface(b"\xff\xff\xff\xff").call()
    outsider = signed_loop.loop.as_sender(signed_loop.outsider)
    for call in (
        f.safeTransferFrom(producer.payout, consumer.payout, 0, 1, b""),
        f.setApprovalForAll(consumer.payout, True),
        f.safeBatchTransferFrom(producer.payout, consumer.payout, [0], [1], b""),
    ):
        with pytest.raises(DaiseeError, match=re.escape("EnergyTokensNotTransferable()")):
            outsider.sender.transact(call, "moving energy tokens")
    assert signed_loop.loop.tokens(producer.payout) == (900, 0, 0)


def test_terms_change_only_from_their_interval_on(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, grace_seconds=0, past_intervals=0)
    with pytest.raises(DaiseeError, match=re.escape("InvalidEffectiveInterval(from=0, current=0)")):
        loop.loop.schedule_terms(AllocationKey.STATIC, 250, 0)
    receipt = loop.loop.schedule_terms(AllocationKey.STATIC, 250, 2)
    [event] = loop.loop.events("TermsScheduled", receipt)
    assert (event["args"]["epoch"], event["args"]["key"], event["args"]["pricePerWh"], event["args"]["from"]) == (
        1,
        AllocationKey.STATIC,
        250,
        2,
    )
    allocated_cost = {}
    for t in range(3):
        travel_to(loop.chain, loop.genesis + (t + 1) * INTERVAL + 1)
        _report_interval(loop, t, [(0, 1000), (700, 0), (400, 0)])
        loop.loop.finalize(t)
        results = loop.loop.results(loop.loop.settle().receipts)[t]
        allocated_cost[t] = {mid: (r.allocated, r.cost) for mid, r in results.items() if r.consumed}
    consumer, prosumer = loop.households[1].meter_id, loop.households[2].meter_id
    assert allocated_cost[1] == {consumer: (636, 63_600), prosumer: (364, 36_400)}  # pro rata at 100, cumulative
    assert allocated_cost[2] == {consumer: (300, 75_000), prosumer: (300, 75_000)}  # static 30 % at 250
