"""Every attack of issue 10, each named by what the loop refuses, each checking whose money did not move.

The threat model (DESIGN.md): a household owns its gateway and signs what it likes; the PMO runs the
loop but must not take members' money; an outsider calls every permissionless function. "Money" here is
every watched account's ledger position (balance, debt, receivable), its energy tokens and its
settlement-token balance, and what the loop holds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from eth_account import Account
from web3.contract import Contract

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain
from daisee.chain.deploy import LOOP_CONTRACT, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import MAX_LIMIT_W, AllocationKey, MeterKind, RejectReason, price_per_wh
from daisee.errors import DaiseeError
from daisee.loop import AccountBalance, Loop, MeterSpec
from daisee.model import MemberEnergy, allocate
from daisee.readings import Reading
from tests.contract.chainstate import skip_empty_intervals
from tests.contract.conftest import HOUSEHOLDS, PRICE, SignedLoop, assert_solvent, make_signed_loop
from tests.contract.timetravel import now, travel_to

GWH = 10**9
NOTICE = 1_800  # two 15-minute intervals: a meter admitted in interval k reports from k + 3
HONEST = [(0, 900), (700, 0), (400, 250)]  # producer, consumer, prosumer: (imported, exported) Wh
# on a loop with NOTICE, meters admitted in interval 0 first report interval 3: a reading covering four
FIRST_AFTER_NOTICE = [(4 * c, 4 * p) for c, p in HONEST]


@pytest.fixture
def embedded_loop(embedded: Chain) -> SignedLoop:
    """The signed loop, on py-evm only: the attacks that take many intervals run on one chain, the
    contracts being the same on all three (the rest of the suite runs each test on every chain)."""
    return make_signed_loop(embedded)


def money(loop: Loop, accounts: Sequence[str]) -> dict[str, object]:
    """Every watched account's ledger position, energy tokens and settlement tokens, and the loop's."""
    token = loop.settlement_token()
    assert token is not None
    held = {a: (loop.account(a), loop.tokens(a), token.functions.balanceOf(a).call()) for a in accounts}
    return {**held, "loop": token.functions.balanceOf(loop.address).call(), "queue": loop.receivables_queue()}


def honest_allocation(sl: SignedLoop, energy: Sequence[tuple[int, int]]) -> dict[bytes, tuple[int, int]]:
    """(allocated, sold) per meter of the reference model, settling consumers then producers."""
    members = [MemberEnergy(h.meter_id, c, p) for h, (c, p) in zip(sl.households, energy, strict=True)]
    kinds = [h.kind for h in sl.households]
    consumers = [m for m, k in zip(members, kinds, strict=True) if k is not MeterKind.PRODUCER]
    producers = [m for m, k in zip(members, kinds, strict=True) if k is not MeterKind.CONSUMER]
    result = allocate(AllocationKey.PRORATA, PRICE, consumers, producers)
    return {m.meter_id: (m.allocated, m.sold) for m in result.members if m.consumed or m.produced}


def _refused_and_honest_settlement(sl: SignedLoop, liar: int, forged: tuple[int, int], reason: RejectReason) -> None:
    producer, consumer, prosumer = sl.households
    sl.fund(consumer.member, 1_000_000)
    sl.fund(prosumer.member, 1_000_000)
    before = money(sl.loop, sl.accounts())
    household = sl.households[liar]

    result = sl.loop.submit([sl.sign(household, 0, *forged)])

    assert result.rejected == [(household.meter_id, 0, reason)]
    assert money(sl.loop, sl.accounts()) == before
    assert sl.counter(household) == (0, 0, 0)
    # the honest readings, the liar's own included, settle as if the lie had never been signed
    sl.report(0, HONEST)
    sl.loop.finalize(0)
    results = sl.loop.results(sl.loop.settle().receipts)[0]
    assert {mid: (r.allocated, r.sold) for mid, r in results.items()} == honest_allocation(sl, HONEST)
    paid = results[producer.meter_id]
    assert (paid.sold, paid.paid_revenue) == (860, 860 * PRICE)  # its due, paid in full by prepaid consumers
    assert sl.account(producer) == AccountBalance(860 * PRICE, 0, 0)
    assert_solvent(sl.loop, sl.accounts())


def test_refuses_export_signed_by_a_consumer_meter(signed_loop: SignedLoop) -> None:
    _refused_and_honest_settlement(signed_loop, 1, (700, GWH), RejectReason.FLOW_NOT_ALLOWED)


def test_refuses_a_gigawatt_hour_of_import_above_the_consumers_limit(signed_loop: SignedLoop) -> None:
    _refused_and_honest_settlement(signed_loop, 1, (GWH, 0), RejectReason.ABOVE_METER_LIMIT)


def test_refuses_a_gigawatt_hour_of_export_above_the_producers_limit(embedded_loop: SignedLoop) -> None:
    _refused_and_honest_settlement(embedded_loop, 0, (0, GWH), RejectReason.ABOVE_METER_LIMIT)


def test_refuses_import_signed_by_a_producer_meter(embedded_loop: SignedLoop) -> None:
    _refused_and_honest_settlement(embedded_loop, 0, (1, 900), RejectReason.FLOW_NOT_ALLOWED)


def test_an_honest_catch_up_after_an_outage_still_lands_and_moves_no_one_elses_money(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, grace_seconds=60)  # intervals 0 to 3 are over
    producer, consumer, prosumer = sl.households
    sl.fund(prosumer.member, 1_000_000)
    # the consumer's gateway is down for intervals 0 to 2; each closes after its grace period without it
    for t in range(3):
        sl.loop.submit([sl.sign(producer, t, 0, 900 * (t + 1)), sl.sign(prosumer, t, 400 * (t + 1), 0)])
        sl.settle_through(t)
    others = [producer.payout, prosumer.payout, sl.pmo.address, sl.outsider.address]
    before = money(sl.loop, others)

    # back: 11 kWh since its admission, four intervals ago (its 12 kVA allow 12 kWh in an hour)
    over = sl.loop.submit([sl.sign(consumer, 3, 12_001, 0)])
    assert over.rejected == [(consumer.meter_id, 3, RejectReason.ABOVE_METER_LIMIT)]
    result = sl.loop.submit([sl.sign(consumer, 3, 11_000, 0)])

    assert result.accepted == [(consumer.meter_id, 3)]
    [carried] = sl.loop.events("EnergyCarried", result.receipt)
    assert (carried["args"]["fromInterval"], carried["args"]["consumedWh"]) == (0, 11_000 - 2_750)
    assert sl.loop.tokens(consumer.payout) == (0, 8_250, 0)  # the earlier intervals' part: from the grid
    assert money(sl.loop, others) == before
    sl.loop.submit([sl.sign(producer, 3, 0, 3_600), sl.sign(prosumer, 3, 1_600, 0)])
    sl.settle_through(3)
    # interval 3: the producer's 900 Wh shared pro rata between the consumer's 2750 Wh and the prosumer's 400
    assert sl.loop.tokens(consumer.payout) == (0, 11_000, 900 * 2_750 // 3_150)
    assert sl.account(consumer) == AccountBalance(0, 900 * 2_750 // 3_150 * PRICE, 0)


# ------------------------------------------------------------------ settlement is total


MAX_PRICE = 2**56 - 1
DAY = 86_400
PER_DAY = MAX_LIMIT_W * DAY // 3600  # the most a meter at the maximal limit measures in one day
CENTURY = 36_525  # days
MAXIMAL = (
    (MeterKind.PROSUMER, MAX_LIMIT_W, MAX_LIMIT_W),
    (MeterKind.PROSUMER, MAX_LIMIT_W, MAX_LIMIT_W),
    (MeterKind.CONSUMER, MAX_LIMIT_W, None),
    (MeterKind.PRODUCER, None, MAX_LIMIT_W),
)


def _settle_in_steps(loop: Loop) -> None:
    """Settle the next interval one meter-side per transaction; none may revert."""
    settled = loop.settle(max_steps=1)
    assert loop.events("IntervalSettled", settled.receipts[-1])


def test_maximal_readings_at_maximal_limits_and_price_never_freeze_settlement(embedded: Chain) -> None:
    sl = make_signed_loop(
        embedded,
        grace_seconds=60,
        interval_seconds=DAY,
        price_per_wh=MAX_PRICE,
        price_cap_per_wh=MAX_PRICE,
        meters=MAXIMAL,
        indices=[(2**63, 2**63), (0, 0), (0, 0), (0, 0)],
        intervals_over=1,
        share=0,
    )
    a, b, c, p = sl.households
    sl.fund(a.member, 2**110)  # prepaid far beyond a century of costs
    sl.fund(c.member, PER_DAY * MAX_PRICE // 2)  # half a day's costs; b and p deposit nothing
    watched = [*sl.accounts(), sl.households[3].payout]
    starts = {h.meter_id: sl.counter(h)[1:] for h in sl.households}

    # the reading that froze the old loop: 2^48 - 1 Wh in one interval is beyond any meter
    frozen = sl.loop.submit([sl.sign(a, 0, 2**63 + 2**48 - 1, 2**63)])
    assert frozen.rejected == [(a.meter_id, 0, RejectReason.ABOVE_METER_LIMIT)]
    # a day at the maximal limits, on both flows, at the maximal price
    sl.report(0, [(PER_DAY, PER_DAY), (PER_DAY, PER_DAY), (PER_DAY, 0), (0, PER_DAY)])
    sl.loop.finalize(0)
    _settle_in_steps(sl.loop)
    assert_solvent(sl.loop, watched)

    # five silent days, then six days' worth at the limit
    sl.end(6)
    sl.settle_through(5)
    sl.report(6, [(6 * PER_DAY, 6 * PER_DAY), (6 * PER_DAY, 6 * PER_DAY), (6 * PER_DAY, 0), (0, 6 * PER_DAY)])
    sl.loop.finalize(6)
    _settle_in_steps(sl.loop)
    assert_solvent(sl.loop, watched)

    # a century of silence (its empty intervals finalized and settled), then a century's worth
    last = 7 + CENTURY
    travel_to(embedded, sl.start_of(last + 1) + 1)
    skip_empty_intervals(sl.loop, last)
    century = (CENTURY + 1) * PER_DAY
    over = sl.loop.submit([sl.sign(b, last, sl.counter(b)[1] + century + 1, sl.counter(b)[2])])
    assert over.rejected == [(b.meter_id, last, RejectReason.ABOVE_METER_LIMIT)]
    readings = [
        sl.sign(a, last, sl.counter(a)[1] + century, sl.counter(a)[2] + century),
        sl.sign(b, last, sl.counter(b)[1] + century, sl.counter(b)[2] + century),
        sl.sign(c, last, sl.counter(c)[1] + century, 0),
        sl.sign(p, last, 0, sl.counter(p)[2] + century),
    ]
    result = sl.loop.submit(readings)
    assert len(result.accepted) == 4
    carried = {e["args"]["meterId"]: e["args"]["consumedWh"] for e in sl.loop.events("EnergyCarried", result.receipt)}
    assert carried[a.meter_id] == century - century // (CENTURY + 1)
    sl.loop.finalize(last)
    _settle_in_steps(sl.loop)
    assert sl.loop.next_to_settle() == last + 1
    assert_solvent(sl.loop, watched)

    # every accepted Wh is in its member's tokens, once
    for h in sl.households:
        produced, consumed, _ = sl.loop.tokens(h.payout)
        _, imported, exported = sl.counter(h)
        assert (consumed, produced) == (imported - starts[h.meter_id][0], exported - starts[h.meter_id][1])
    # b repays its debt, and the producers' receivables are paid from it
    debt = sl.account(b).debt
    assert debt > 0
    assert sl.account(p).receivable > 0
    sl.fund(b.member, debt)
    assert sl.account(b) == AccountBalance(0, 0, sl.account(b).receivable)
    sl.loop.as_sender(sl.outsider).pay_receivables()
    assert sl.loop.receivables_queue()[0] == 0  # every repaid unit went to a receivable
    assert_solvent(sl.loop, watched)
    for h in (a, b, p):
        if sl.account(h).balance:
            sl.loop.as_sender(h.member).withdraw(sl.account(h).balance)
    assert_solvent(sl.loop, watched)


# ------------------------------------------------------------------ the PMO's powers


def test_refuses_readings_of_a_meter_the_pmo_admitted_before_its_notice_ends(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, notice_seconds=NOTICE)
    consumer, prosumer = sl.households[1:]
    assert [sl.loop.meter(h.meter_id).active_from for h in sl.households] == [3, 3, 3]
    sl.fund(consumer.member, 1_000_000)
    sl.fund(prosumer.member, 1_000_000)
    sl.settle_through(2)  # nobody could report yet
    rogue, rogue_key = b"\x66" * 32, Account.create()
    # the PMO's own producer, paid to the PMO, with the largest plant a meter may declare
    spec = MeterSpec(rogue, rogue_key.address, sl.pmo.address, MeterKind.PRODUCER, export_limit_w=MAX_LIMIT_W)
    [added] = sl.loop.events("MeterAdded", sl.loop.add_meters([spec])[0])
    assert added["args"]["activeFrom"] == 7  # announced: from interval 7, when NOTICE has passed
    pmo_before = money(sl.loop, [sl.pmo.address])

    for t in range(3, 7):
        sl.end(t)
        lie = Reading(rogue, t, 0, 10**6).sign(rogue_key.key, sl.loop.domain)
        assert sl.loop.submit([lie]).rejected == [(rogue, t, RejectReason.NOT_YET_ACTIVE)]
        sl.report(t, FIRST_AFTER_NOTICE if t == 3 else HONEST)
        sl.loop.finalize(t)  # every active meter reported: the rogue does not count yet
        results = sl.loop.results(sl.loop.settle().receipts)[t]
        assert {mid: (r.allocated, r.sold) for mid, r in results.items()} == honest_allocation(sl, HONEST)
        assert money(sl.loop, [sl.pmo.address]) == pmo_before
    # meanwhile a member who saw the announcement takes its money out
    left = sl.account(consumer).balance
    sl.loop.as_sender(consumer.member).withdraw(left)
    assert sl.account(consumer) == AccountBalance(0, 0, 0)
    assert_solvent(sl.loop, sl.accounts())


def test_refuses_readings_signed_with_a_rotated_key_before_the_notice_ends(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, notice_seconds=NOTICE)
    consumer = sl.households[1]
    sl.fund(consumer.member, 1_000_000)
    sl.settle_through(2)
    pmo_gateway = Account.create()

    receipt = sl.loop.rotate_signer(consumer.meter_id, pmo_gateway.address)

    [scheduled] = sl.loop.events("MeterChangeScheduled", receipt)
    effective_at = scheduled["args"]["effectiveAt"]
    assert effective_at == sl.chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"] + NOTICE
    assert sl.loop.events("MeterChanged", receipt) == ()
    assert sl.loop.meter(consumer.meter_id).signer == consumer.key.address
    before = money(sl.loop, sl.accounts())
    forged = Reading(consumer.meter_id, 3, 3_000, 0).sign(pmo_gateway.key, sl.loop.domain)
    assert sl.loop.submit([forged]).rejected == [(consumer.meter_id, 3, RejectReason.BAD_SIGNATURE)]
    assert money(sl.loop, sl.accounts()) == before
    assert sl.counter(consumer) == (0, 0, 0)
    with pytest.raises(DaiseeError, match=re.escape(f"MeterChangeNotDue(meterId=0x{consumer.meter_id.hex()}")):
        sl.loop.as_sender(sl.outsider).apply_meter_change(consumer.meter_id)
    with pytest.raises(DaiseeError, match=re.escape(f"NotMeterPayout(meterId=0x{consumer.meter_id.hex()}")):
        sl.loop.confirm_meter_change(consumer.meter_id)  # the PMO cannot co-sign for the member
    sl.report(3, FIRST_AFTER_NOTICE)  # the member's own gateway still counts
    sl.settle_through(3)

    # once the notice has passed, anyone may put the announced change into effect
    travel_to(sl.chain, effective_at + 1)
    applied = sl.loop.as_sender(sl.outsider).apply_meter_change(consumer.meter_id)
    [changed] = sl.loop.events("MeterChanged", applied)
    assert (changed["args"]["previousSigner"], changed["args"]["newSigner"], changed["args"]["confirmed"]) == (
        consumer.key.address,
        pmo_gateway.address,
        False,
    )
    old_key = sl.sign(consumer, 4, 800, 0)
    assert sl.loop.submit([old_key]).rejected == [(consumer.meter_id, 4, RejectReason.BAD_SIGNATURE)]


def test_a_members_confirmation_makes_a_rotation_immediate(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, notice_seconds=NOTICE)
    consumer = sl.households[1]
    sl.settle_through(2)
    new_gateway = Account.create()
    sl.loop.rotate_signer(consumer.meter_id, new_gateway.address)
    with pytest.raises(DaiseeError, match=re.escape(f"NotMeterPayout(meterId=0x{consumer.meter_id.hex()}")):
        sl.loop.as_sender(sl.outsider).confirm_meter_change(consumer.meter_id)

    receipt = sl.loop.as_sender(consumer.member).confirm_meter_change(consumer.meter_id)

    [changed] = sl.loop.events("MeterChanged", receipt)
    assert (changed["args"]["newSigner"], changed["args"]["confirmed"]) == (new_gateway.address, True)
    assert sl.loop.meter_change(consumer.meter_id) is None
    old = sl.sign(consumer, 3, 100, 0)
    new = Reading(consumer.meter_id, 3, 100, 0).sign(new_gateway.key, sl.loop.domain)
    result = sl.loop.submit([old, new])
    assert result.rejected == [(consumer.meter_id, 3, RejectReason.BAD_SIGNATURE)]
    assert result.accepted == [(consumer.meter_id, 3)]


def test_refuses_prices_above_the_cap_and_without_notice(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, notice_seconds=NOTICE)  # the cap: twice the price, 200 units per Wh
    consumer, prosumer = sl.households[1:]
    sl.fund(consumer.member, 1_000_000)
    sl.fund(prosumer.member, 1_000_000)
    sl.settle_through(2)
    twenty_euros = price_per_wh("20")  # per kWh: the price that emptied the old loop in two intervals
    assert sl.loop.current_interval() == 4

    with pytest.raises(DaiseeError, match=re.escape(f"PriceAboveCap(pricePerWh={twenty_euros}, cap=200)")):
        sl.loop.schedule_terms(AllocationKey.PRORATA, twenty_euros, 20)
    with pytest.raises(DaiseeError, match=re.escape("PriceAboveCap(pricePerWh=201, cap=200)")):
        sl.loop.schedule_terms(AllocationKey.PRORATA, 201, 20)
    with pytest.raises(DaiseeError, match=re.escape("InvalidEffectiveInterval(from=5, earliest=7)")):
        sl.loop.schedule_terms(AllocationKey.PRORATA, 200, 5)

    assert sl.loop.contract.functions.termsAt(2**32 - 1).call() == (0, PRICE, 0, 0)
    sl.report(3, FIRST_AFTER_NOTICE)
    sl.settle_through(3)
    assert sl.account(consumer) == AccountBalance(1_000_000 - 700 * PRICE, 0, 0)  # at the price in force
    # at the cap and with notice, the PMO may raise the price
    receipt = sl.loop.schedule_terms(AllocationKey.PRORATA, 200, 7)
    assert [e["args"]["pricePerWh"] for e in sl.loop.events("TermsScheduled", receipt)] == [200]


def test_refuses_to_renounce_ownership(signed_loop: SignedLoop) -> None:
    f = signed_loop.loop.contract.functions
    for who in (signed_loop.pmo, signed_loop.outsider):
        with pytest.raises(DaiseeError, match=re.escape("OwnershipCannotBeRenounced()")):
            who.transact(f.renounceOwnership(), "renouncing the PMO role")
    assert f.owner().call() == signed_loop.pmo.address


def test_members_withdraw_and_settlement_goes_on_while_readings_are_paused(signed_loop: SignedLoop) -> None:
    producer, consumer, prosumer = signed_loop.households
    signed_loop.fund(consumer.member, 500_000)
    signed_loop.report(0, HONEST)
    signed_loop.loop.pause_readings()

    with pytest.raises(DaiseeError, match=re.escape("EnforcedPause()")):
        signed_loop.loop.submit([signed_loop.sign(producer, 1, 0, 1_800)])
    signed_loop.loop.finalize(0)
    signed_loop.loop.settle()
    wallet = signed_loop.token().functions.balanceOf
    for household in (consumer, producer):
        balance = signed_loop.account(household).balance
        assert balance > 0
        signed_loop.loop.as_sender(household.member).withdraw(balance)
        assert wallet(household.payout).call() == balance
    # the prosumer owes: it repays on deposit, paused too, and the receivables are paid from it
    signed_loop.fund(prosumer.member, signed_loop.account(prosumer).debt)
    signed_loop.loop.as_sender(signed_loop.outsider).pay_receivables()
    assert signed_loop.loop.paused()
    assert_solvent(signed_loop.loop, signed_loop.accounts())


# ------------------------------------------------------------------ the ledger


def test_refuses_to_pay_a_producer_from_another_members_deposit(any_chain: Chain) -> None:
    """The issue's insolvent ledger (A +6 €, B -8 €, P +12 €, the loop holding 10 €), at a tenth."""
    sl = make_signed_loop(any_chain, price_per_wh=1_000)  # 1 € per kWh
    producer, debtor, prepaid = sl.households
    sl.fund(prepaid.member, 1_000_000)  # 1 €
    sl.report(0, [(0, 1_200), (800, 0), (400, 0)])
    sl.loop.finalize(0)
    sl.loop.settle()

    # the prepaid member paid its 0.4 € from its deposit; the other's 0.8 € is its debt, not anyone's loss
    assert sl.account(prepaid) == AccountBalance(600_000, 0, 0)
    assert sl.account(debtor) == AccountBalance(0, 800_000, 0)
    assert sl.account(producer) == AccountBalance(400_000, 0, 800_000)  # paid what was collected, owed the rest
    assert [sl.loop.ledger_balance(h.payout) for h in (prepaid, debtor, producer)] == [600_000, -800_000, 1_200_000]
    assert_solvent(sl.loop, sl.accounts())
    expected = f"InsufficientBalance(account={producer.payout}, balance=400000, needed=400001)"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        sl.loop.as_sender(producer.member).withdraw(400_001)
    sl.loop.as_sender(prepaid.member).withdraw(600_000)  # its own money, always
    sl.loop.as_sender(producer.member).withdraw(400_000)
    with pytest.raises(DaiseeError, match=re.escape(f"InsufficientBalance(account={debtor.payout}, balance=0")):
        sl.loop.as_sender(debtor.member).withdraw(1)
    assert sl.loop.receivables_queue() == (0, 1)
    assert sl.token().functions.balanceOf(sl.loop.address).call() == 0

    # the debtor pays: its debt is repaid first, and the receivable from it
    repaid = sl.loop.events("DebtRepaid", _deposit(sl, debtor.member, 800_000))
    assert [(e["args"]["account"], e["args"]["amount"]) for e in repaid] == [(debtor.payout, 800_000)]
    assert sl.account(debtor) == AccountBalance(0, 0, 0)
    assert sl.loop.receivables_queue() == (800_000, 1)
    paid = sl.loop.events("ReceivablePaid", sl.loop.as_sender(sl.outsider).pay_receivables())
    assert [(e["args"]["account"], e["args"]["amount"]) for e in paid] == [(producer.payout, 800_000)]
    assert sl.account(producer) == AccountBalance(800_000, 0, 0)
    sl.loop.as_sender(producer.member).withdraw(800_000)
    assert sl.loop.receivables_queue() == (0, 0)
    assert_solvent(sl.loop, sl.accounts())


def _deposit(sl: SignedLoop, member: Sender, amount: int):  # type: ignore[no-untyped-def]
    sl.pmo.transact(sl.token().functions.mint(member.address, amount), "minting test euros")
    return sl.loop.as_sender(member).deposit(amount)


def test_a_fee_on_transfer_deposit_credits_only_what_arrived(any_chain: Chain) -> None:
    pmo, member = Sender.dev(any_chain, 0), Sender.dev(any_chain, 2)
    fee_address, _ = pmo.deploy("FeeToken")
    token: Contract = any_chain.w3.eth.contract(address=fee_address, abi=load_artifact("FeeToken")["abi"])
    loop = Loop(pmo, deploy_loop(pmo, LoopParameters(token=fee_address)).address)
    pmo.transact(token.functions.mint(member.address, 1_000_000), "minting")

    receipt = loop.as_sender(member).deposit(1_000_000)

    assert [e["args"]["received"] for e in loop.events("Deposited", receipt)] == [990_000]  # 1 % burnt on the way
    assert loop.account(member.address) == AccountBalance(990_000, 0, 0)
    assert token.functions.balanceOf(loop.address).call() == 990_000
    with pytest.raises(DaiseeError, match=re.escape("InsufficientBalance")):
        loop.as_sender(member).withdraw(990_001)
    loop.as_sender(member).withdraw(990_000)
    assert token.functions.balanceOf(loop.address).call() == 0
    assert loop.account(member.address) == AccountBalance(0, 0, 0)


# ------------------------------------------------------------------ late readings


def _producer_sells(chain: Chain, exports: dict[int, int]) -> tuple[int, int]:
    """A sunny interval 0 (the consumer takes 500 Wh), a deficit interval 1 (2000 Wh): what the producer
    sells, and is paid, when it reports the cumulative export `exports[t]` in the intervals it names."""
    sl = make_signed_loop(chain, grace_seconds=60, intervals_over=2)
    producer, consumer, prosumer = sl.households
    sold = revenue = 0
    for t, consumed in ((0, 500), (1, 2_500)):
        readings = [sl.sign(consumer, t, consumed, 0), sl.sign(prosumer, t, 0, 0)]
        if t in exports:
            readings.append(sl.sign(producer, t, 0, exports[t]))
        assert len(sl.loop.submit(readings).accepted) == len(readings)
        sl.loop.finalize(t)
        result = sl.loop.results(sl.loop.settle().receipts).get(t, {}).get(producer.meter_id)
        if result is not None:
            sold, revenue = sold + result.sold, revenue + result.revenue
    return sold, revenue


def test_refuses_to_pay_more_for_a_withheld_sunny_reading(embedded: Chain) -> None:
    # 2000 Wh produced at noon: withheld and reported with the evening's reading, it covers two intervals
    withheld = _producer_sells(embedded, {1: 2_000})
    evenly_on_time = _producer_sells(embedded, {0: 1_000, 1: 2_000})
    truthful = _producer_sells(embedded, {0: 2_000, 1: 2_000})

    # only the evening's half takes part in the evening's allocation: never more than signing that half
    # on time (which a household that owns its gateway can always do), far from the whole 2000 Wh the
    # old loop sold in the deficit interval (4x the truthful 500)
    assert withheld == (1_000, 1_000 * PRICE)
    assert evenly_on_time == (1_500, 1_500 * PRICE)
    assert truthful == (500, 500 * PRICE)
    assert withheld[1] <= evenly_on_time[1]


# ------------------------------------------------------------------ deployment, registry


def test_refuses_a_grace_period_too_short_for_readings_to_land(any_chain: Chain) -> None:
    pmo = Sender.dev(any_chain, 0)
    with pytest.raises(DaiseeError, match=re.escape("a grace period of 59 s is too short")):
        deploy_loop(pmo, LoopParameters(grace_seconds=59))
    # the contract refuses it too, for whoever deploys it without the client
    libraries = deploy_loop(pmo, LoopParameters(token=None)).libraries
    for grace in (0, 59):
        args = LoopParameters(grace_seconds=grace, token=None).constructor_args(pmo.address, now(any_chain), None, 0)
        with pytest.raises(DaiseeError, match=re.escape(f"GraceTooShort(graceSeconds={grace}, minimum=60)")):
            pmo.transact(pmo.constructor(LOOP_CONTRACT, *args, libraries=libraries), "deploying a loop")


def test_refuses_readings_for_intervals_before_a_meters_admission(embedded_loop: SignedLoop) -> None:
    late_joiner, meter_id = Account.create(), b"\x42" * 32
    embedded_loop.loop.add_meter(meter_id, late_joiner.address, embedded_loop.outsider.address, MeterKind.PROSUMER)
    assert embedded_loop.loop.current_interval() == 4
    assert (embedded_loop.loop.meter(meter_id).active_from, embedded_loop.loop.meter(meter_id).next_interval) == (4, 4)
    before = money(embedded_loop.loop, embedded_loop.accounts())

    for t in range(4):
        reading = Reading(meter_id, t, 10, 10).sign(late_joiner.key, embedded_loop.loop.domain)
        assert embedded_loop.loop.submit([reading]).rejected == [(meter_id, t, RejectReason.NOT_YET_ACTIVE)]

    assert money(embedded_loop.loop, embedded_loop.accounts()) == before
    assert embedded_loop.loop.contract.functions.intervalTotals(0).call()[1] == 0


def test_removed_meters_stop_counting_for_finalization_and_shares_and_leave_settlement(embedded: Chain) -> None:
    four = (*HOUSEHOLDS, (MeterKind.CONSUMER, None, None))
    sl = make_signed_loop(embedded, key=AllocationKey.STATIC, meters=four, share=2_500)
    producer, consumer, prosumer, neighbour = sl.households
    newcomer = MeterSpec(b"\x77" * 32, Account.create().address, sl.outsider.address, MeterKind.CONSUMER, 2_500)
    with pytest.raises(DaiseeError, match=re.escape("SharesExceedTotal(total=12500)")):
        sl.loop.add_meters([newcomer])
    sl.report(0, [(0, 2_000), (700, 0), (400, 250), (300, 0)])

    sl.loop.remove_meter(consumer.meter_id)

    assert sl.loop.contract.functions.intervalTotals(0).call()[1] == 3  # its reading no longer counts
    sl.loop.finalize(0)  # before the day of grace: the three others are every active meter
    assert sl.loop.contract.functions.activeMeterCount().call() == 3
    settled = sl.loop.settle(max_steps=1)
    # its energy still settles (25 % of the 2250 Wh produced), then the list's last meter takes its place
    order = [s.meter_id for s in sl.loop.settled_sides(settled.receipts) if not s.production]
    assert order == [consumer.meter_id, neighbour.meter_id, prosumer.meter_id]
    assert len(settled.receipts) == 3 + 2
    assert sl.loop.tokens(consumer.payout) == (0, 700, 562)

    readings = [sl.sign(h, 1, *(i + d for i, d in zip(sl.counter(h)[1:], e, strict=True))) for h, e in (
        (producer, (0, 2_000)), (prosumer, (400, 0)), (neighbour, (300, 0)), (consumer, (100, 0)))]  # fmt: skip
    assert sl.loop.submit(readings).rejected == [(consumer.meter_id, 1, RejectReason.METER_INACTIVE)]
    sl.loop.finalize(1)
    settled = sl.loop.settle(max_steps=1)
    order = [s.meter_id for s in sl.loop.settled_sides(settled.receipts) if not s.production]
    assert order == [neighbour.meter_id, prosumer.meter_id]
    assert len(settled.receipts) == 2 + 2  # the removed meter is no longer visited
    sl.loop.add_meters([newcomer])  # its share was freed
    assert sl.loop.meter(newcomer.meter_id).share == 2_500


def test_a_removed_meters_last_reading_still_settles_when_it_was_the_only_one(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, grace_seconds=60)
    prosumer = sl.households[2]
    sl.loop.submit([sl.sign(prosumer, 0, 400, 250)])
    sl.loop.remove_meter(prosumer.meter_id)
    sl.loop.finalize(0)

    results = sl.loop.results(sl.loop.settle().receipts)[0]

    assert (results[prosumer.meter_id].consumed, results[prosumer.meter_id].produced) == (400, 250)
    assert sl.loop.tokens(prosumer.payout) == (250, 400, 250)
    # it bought its own 250 Wh from itself: without a deposit, owed to and by itself
    assert sl.account(prosumer) == AccountBalance(0, 250 * PRICE, 250 * PRICE)


def test_a_repaired_meter_reports_again_after_a_stolen_key_pushed_its_index_up(embedded_loop: SignedLoop) -> None:
    # a thief with the consumer's key signs its limit, 3000 Wh, for interval 0
    producer, consumer, prosumer = embedded_loop.households
    embedded_loop.loop.submit([embedded_loop.sign(consumer, 0, 3_000, 0)])
    embedded_loop.loop.submit([embedded_loop.sign(producer, 0, 0, 900), embedded_loop.sign(prosumer, 0, 400, 250)])
    embedded_loop.settle_through(0)
    # the honest gateway's true index is below the stolen one: refused, interval after interval
    for t, index in ((1, 800), (2, 1_500)):
        refused = embedded_loop.loop.submit([embedded_loop.sign(consumer, t, index, 0)])
        assert refused.rejected == [(consumer.meter_id, t, RejectReason.INDEX_DECREASED)]
    new_gateway = Account.create()

    receipt = embedded_loop.loop.repair_meter(consumer.meter_id, new_gateway.address, 1_500, 0)

    [scheduled] = embedded_loop.loop.events("MeterChangeScheduled", receipt)
    assert (scheduled["args"]["reset"], scheduled["args"]["importWh"], scheduled["args"]["exportWh"]) == (
        True,
        1_500,
        0,
    )
    assert [e["args"]["newSigner"] for e in embedded_loop.loop.events("MeterChanged", receipt)] == [new_gateway.address]
    assert embedded_loop.counter(consumer) == (1, 1_500, 0)
    stolen = embedded_loop.sign(consumer, 1, 4_000, 0)
    repaired = Reading(consumer.meter_id, 1, 1_800, 0).sign(new_gateway.key, embedded_loop.loop.domain)
    result = embedded_loop.loop.submit([stolen, repaired])
    assert result.rejected == [(consumer.meter_id, 1, RejectReason.BAD_SIGNATURE)]
    assert result.accepted == [(consumer.meter_id, 1)]
    assert embedded_loop.loop.contract.functions.intervalTotals(1).call()[2] == 300


def test_a_members_confirmation_cannot_carry_a_change_announced_in_its_place(embedded: Chain) -> None:
    sl = make_signed_loop(embedded, notice_seconds=NOTICE)
    consumer = sl.households[1]
    chosen, pmo_gateway = Account.create(), Account.create()
    sl.loop.rotate_signer(consumer.meter_id, chosen.address)
    agreed = sl.loop.meter_change(consumer.meter_id)  # what the member read and agrees to
    assert agreed is not None
    sl.loop.rotate_signer(consumer.meter_id, pmo_gateway.address)  # the PMO front-runs the confirmation
    before = money(sl.loop, [h.payout for h in sl.households])

    expected = f"MeterChangeMismatch(meterId=0x{consumer.meter_id.hex()}, signer={pmo_gateway.address})"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        sl.loop.as_sender(consumer.member).confirm_meter_change(consumer.meter_id, agreed)

    assert sl.loop.meter(consumer.meter_id).signer == consumer.key.address  # the notice still runs
    assert money(sl.loop, [h.payout for h in sl.households]) == before
