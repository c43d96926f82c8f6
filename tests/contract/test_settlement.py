"""Finalizing and settling intervals, and the energy tokens they mint, on every chain."""

from __future__ import annotations

import re

import pytest

from daisee.chain.connect import Chain
from daisee.domain import AllocationKey
from daisee.errors import DaiseeError
from daisee.loop import AccountBalance
from daisee.model import MemberEnergy, allocate
from tests.contract.conftest import INTERVAL, SignedLoop, make_signed_loop

IERC1155 = bytes.fromhex("d9b67a26")
IERC1155_METADATA = bytes.fromhex("0e89341c")


def test_settles_an_interval_as_the_reference_allocation(signed_loop: SignedLoop) -> None:
    energy = [(0, 900), (700, 0), (400, 250)]
    signed_loop.report(0, energy)
    signed_loop.loop.finalize(0)

    settled = signed_loop.loop.settle()

    producer, consumer, prosumer = signed_loop.households
    members = {
        h.meter_id: MemberEnergy(h.meter_id, c, p) for h, (c, p) in zip(signed_loop.households, energy, strict=True)
    }
    # two passes: the consuming meters in their list order, then the producing ones
    expected = allocate(
        AllocationKey.PRORATA,
        100,
        [members[consumer.meter_id], members[prosumer.meter_id]],
        [members[producer.meter_id], members[prosumer.meter_id]],
    )
    results = signed_loop.loop.results(settled.receipts)[0]
    assert {m.meter_id: (m.allocated, m.sold) for m in expected.members} == {
        mid: (r.allocated, r.sold) for mid, r in results.items()
    }
    assert sum(r.allocated for r in results.values()) == sum(r.sold for r in results.values()) == 1_100
    assert signed_loop.loop.tokens(consumer.payout) == (0, 700, results[consumer.meter_id].allocated)
    assert signed_loop.loop.tokens(producer.payout) == (900, 0, 0)
    assert signed_loop.loop.tokens(prosumer.payout)[:2] == (250, 400)
    # nobody had deposited: every cost is a debt, every revenue a receivable
    assert all(r.paid_cost == 0 and r.paid_revenue == 0 for r in results.values())
    cost = {mid: r.cost for mid, r in results.items()}
    revenue = {mid: r.revenue for mid, r in results.items()}
    assert signed_loop.account(consumer) == AccountBalance(0, cost[consumer.meter_id], 0)
    assert signed_loop.account(producer) == AccountBalance(0, 0, revenue[producer.meter_id])
    assert signed_loop.account(prosumer) == AccountBalance(0, cost[prosumer.meter_id], revenue[prosumer.meter_id])
    balances = [signed_loop.loop.ledger_balance(h.payout) for h in signed_loop.households]
    assert sum(balances) == 0
    assert balances[1] == -100 * results[consumer.meter_id].allocated
    assert signed_loop.loop.receivables_queue() == (0, 2)


def test_consumers_pay_from_their_balance_and_producers_share_what_was_paid(signed_loop: SignedLoop) -> None:
    producer, consumer, prosumer = signed_loop.households
    signed_loop.fund(consumer.member, 50_000)  # covers 500 of its 700 Wh at 100 per Wh
    signed_loop.fund(prosumer.member, 1_000_000)
    signed_loop.report(0, [(0, 900), (700, 0), (400, 250)])
    signed_loop.loop.finalize(0)

    results = signed_loop.loop.results(signed_loop.loop.settle().receipts)[0]

    c, q, p = (results[h.meter_id] for h in (consumer, prosumer, producer))
    assert (c.allocated, c.cost, c.paid_cost) == (700, 70_000, 50_000)
    assert (q.allocated, q.cost, q.paid_cost) == (400, 40_000, 40_000)
    # 90_000 was collected for 1_100 Wh sold: the producer sold 900 * 1100 / 1150 = 860 Wh, the prosumer 240
    assert (p.sold, p.revenue, p.paid_revenue) == (860, 86_000, 860 * 90_000 // 1_100)
    assert (q.sold, q.revenue, q.paid_revenue) == (240, 24_000, 90_000 - 860 * 90_000 // 1_100)
    assert signed_loop.account(consumer) == AccountBalance(0, 20_000, 0)
    assert signed_loop.account(producer) == AccountBalance(p.paid_revenue, 0, p.revenue - p.paid_revenue)
    assert signed_loop.account(prosumer) == AccountBalance(
        1_000_000 - 40_000 + q.paid_revenue, 0, q.revenue - q.paid_revenue
    )
    held = signed_loop.token().functions.balanceOf(signed_loop.loop.address).call()
    assert held == 1_050_000 == sum(signed_loop.account(h).balance for h in signed_loop.households)


def test_chunked_settlement_settles_each_meter_exactly_once(signed_loop: SignedLoop) -> None:
    signed_loop.report(0, [(0, 900), (700, 0), (400, 250)])
    signed_loop.loop.finalize(0)

    settled = signed_loop.loop.settle(max_steps=1)

    # four meter-sides: the consumer and prosumer's consumption, then the producer and prosumer's production
    assert len(settled.receipts) == 4
    sides = signed_loop.loop.settled_sides(settled.receipts)
    consumption = [s.meter_id for s in sides if not s.production]
    production = [s.meter_id for s in sides if s.production]
    producer, consumer, prosumer = (h.meter_id for h in signed_loop.households)
    assert consumption == [consumer, prosumer]
    assert production == [producer, prosumer]
    assert signed_loop.loop.next_to_settle() == 1
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotFinalized(interval=1)")):
        signed_loop.loop.settle()


def test_refuses_to_settle_an_unfinalized_interval(signed_loop: SignedLoop) -> None:
    signed_loop.report(0, [(0, 900), (700, 0), (400, 250)])
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotFinalized(interval=0)")):
        signed_loop.loop.settle()
    with pytest.raises(DaiseeError, match=re.escape("ZeroSteps()")):
        signed_loop.loop.sender.transact(signed_loop.loop.contract.functions.settle(0), "settling")


def test_finalizes_intervals_in_order_once_over(signed_loop: SignedLoop) -> None:
    with pytest.raises(DaiseeError, match=re.escape("IntervalNotNext(interval=1, expected=0)")):
        signed_loop.loop.finalize(1)
    current = signed_loop.loop.current_interval()
    loop = make_signed_loop(signed_loop.chain, intervals_over=0)
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
    loop = make_signed_loop(any_chain, grace_seconds=60, intervals_over=1)
    producer, consumer, _ = loop.households
    loop.loop.submit([loop.sign(producer, 0, 0, 500), loop.sign(consumer, 0, 300, 0)])
    with pytest.raises(DaiseeError, match=re.escape("IntervalStillOpen(interval=0, reported=2, activeMeters=3")):
        loop.loop.finalize(0)
    loop.grace_over(0)
    loop.loop.finalize(0)
    results = loop.loop.results(loop.loop.settle().receipts)[0]
    assert (results[consumer.meter_id].allocated, results[producer.meter_id].sold) == (300, 300)


def test_an_interval_nobody_reported_settles_at_once(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, grace_seconds=60)
    loop.loop.finalize(0)
    settled = loop.loop.settle(max_steps=1)
    assert len(settled.receipts) == 1
    assert loop.loop.next_to_settle() == 1


def test_energy_tokens_are_visible_but_not_transferable(signed_loop: SignedLoop) -> None:
    signed_loop.report(0, [(0, 900), (700, 0), (400, 250)])
    signed_loop.loop.finalize(0)
    [receipt] = signed_loop.loop.settle().receipts
    f = signed_loop.loop.contract.functions
    producer, consumer, prosumer = signed_loop.households

    batches = {e["args"]["to"]: e["args"] for e in signed_loop.loop.events("TransferBatch", receipt)}
    singles = {e["args"]["to"]: e["args"] for e in signed_loop.loop.events("TransferSingle", receipt)}
    minted = batches[consumer.payout]
    assert (int(minted["from"], 16), minted["ids"], minted["values"]) == (0, [1, 2], [700, 700])
    # a prosumer's production is minted with its consumption, once: 400 Wh consumed, all of it local
    assert (batches[prosumer.payout]["ids"], batches[prosumer.payout]["values"]) == ([1, 2, 0], [400, 400, 250])
    assert prosumer.payout not in singles
    assert (singles[producer.payout]["id"], singles[producer.payout]["value"]) == (0, 900)
    assert f.balanceOf(prosumer.payout, 0).call() == 250
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
    loop = make_signed_loop(any_chain, intervals_over=0, price_cap_per_wh=250)
    with pytest.raises(DaiseeError, match=re.escape("InvalidEffectiveInterval(from=0, earliest=1)")):
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
        loop.end(t)
        loop.report(t, [(0, 1000), (700, 0), (400, 0)])
        loop.loop.finalize(t)
        results = loop.loop.results(loop.loop.settle().receipts)[t]
        allocated_cost[t] = {mid: (r.allocated, r.cost) for mid, r in results.items() if r.consumed}
    consumer, prosumer = loop.households[1].meter_id, loop.households[2].meter_id
    assert allocated_cost[1] == {consumer: (636, 63_600), prosumer: (364, 36_400)}  # pro rata at 100, cumulative
    assert allocated_cost[2] == {consumer: (300, 75_000), prosumer: (300, 75_000)}  # static 30 % at 250
