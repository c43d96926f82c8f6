"""The ledger's deposits and withdrawals, and the PMO's powers, on every chain."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from web3.contract import Contract

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import AccountBalance, MeterSpec
from tests.contract.conftest import SignedLoop, make_signed_loop
from tests.contract.timetravel import travel_to


def _token(loop: SignedLoop) -> Contract:
    address = loop.loop.contract.functions.settlementToken().call()
    return loop.chain.w3.eth.contract(address=address, abi=load_artifact("EuroToken")["abi"])


def test_members_deposit_and_withdraw_the_settlement_token(signed_loop: SignedLoop) -> None:
    euro, member = _token(signed_loop), signed_loop.outsider
    f = euro.functions
    member.transact(f.mint(member.address, 5_000_000), "minting test euros")
    member.transact(f.approve(signed_loop.loop.address, 3_000_000), "approving the loop")
    loop = signed_loop.loop.as_sender(member)

    member.transact(loop.contract.functions.deposit(3_000_000), "depositing")
    member.transact(loop.contract.functions.withdraw(1_000_000), "withdrawing")

    assert loop.ledger_balance(member.address) == 2_000_000
    assert loop.account(member.address) == AccountBalance(2_000_000, 0, 0)
    assert f.balanceOf(member.address).call() == 3_000_000
    assert f.balanceOf(signed_loop.loop.address).call() == 2_000_000
    expected = f"InsufficientBalance(account={member.address}, balance=2000000, needed=2000001)"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        member.transact(loop.contract.functions.withdraw(2_000_001), "withdrawing")
    with pytest.raises(DaiseeError, match=re.escape("ZeroAmount()")):
        member.transact(loop.contract.functions.deposit(0), "depositing")


def test_a_credits_only_loop_takes_no_deposits(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, grace_seconds=60, token=None)
    with pytest.raises(DaiseeError, match=re.escape("NoSettlementToken()")):
        loop.pmo.transact(loop.loop.contract.functions.deposit(1), "depositing")
    with pytest.raises(DaiseeError, match=re.escape("NoSettlementToken()")):
        loop.pmo.transact(loop.loop.contract.functions.withdraw(1), "withdrawing")
    # its receivables are credits: nothing is ever repaid into them, so none waits in the queue
    producer, consumer, _ = loop.households
    loop.loop.submit([loop.sign(producer, 0, 0, 500), loop.sign(consumer, 0, 300, 0)])
    loop.grace_over(0)
    loop.loop.finalize(0)
    loop.loop.settle()
    assert loop.account(consumer) == AccountBalance(0, 30_000, 0)
    assert loop.account(producer) == AccountBalance(0, 0, 30_000)
    assert loop.loop.receivables_queue() == (0, 0)


def test_reentrant_withdraw_is_refused_and_changes_nothing(any_chain: Chain) -> None:
    from daisee.chain.deploy import LoopParameters, deploy_loop

    pmo = Sender.dev(any_chain, 0)
    attacker_address, _ = pmo.deploy("ReentrantToken")
    attacker = any_chain.w3.eth.contract(address=attacker_address, abi=load_artifact("ReentrantToken")["abi"])
    loop = deploy_loop(pmo, LoopParameters(token=attacker_address))
    a = attacker.functions
    pmo.transact(a.arm(loop.address), "arming")
    pmo.transact(a.mint(attacker_address, 1_000), "minting")
    pmo.transact(a.depositInto(1_000), "depositing")

    with pytest.raises(DaiseeError, match=re.escape("ReentrancyGuardReentrantCall()")):
        pmo.transact(a.attack(500), "withdrawing twice")

    from daisee.loop import Loop

    assert Loop(pmo, loop.address).ledger_balance(attacker_address) == 1_000
    assert a.balanceOf(loop.address).call() == 1_000


@pytest.mark.parametrize(
    "admin_call",
    [
        "addMeters",
        "removeMeter",
        "rotateSigner",
        "repairMeter",
        "cancelMeterChange",
        "scheduleTerms",
        "setCoefficients",
        "pauseReadings",
        "unpauseReadings",
    ],
)
def test_only_the_pmo_has_admin_powers(signed_loop: SignedLoop, admin_call: str) -> None:
    f = signed_loop.loop.contract.functions
    meter = signed_loop.households[0].meter_id
    calls = {
        "addMeters": f.addMeters(
            [(b"\x07" * 32, signed_loop.outsider.address, signed_loop.outsider.address, 0, 12_000, 0, 0, 1, 0, 0)]
        ),
        "removeMeter": f.removeMeter(meter),
        "rotateSigner": f.rotateSigner(meter, signed_loop.outsider.address),
        "repairMeter": f.repairMeter(meter, signed_loop.outsider.address, 0, 0),
        "cancelMeterChange": f.cancelMeterChange(meter),
        "scheduleTerms": f.scheduleTerms(1, 1, 10_000),
        "setCoefficients": f.setCoefficients([meter], [0], [0]),
        "pauseReadings": f.pauseReadings(),
        "unpauseReadings": f.unpauseReadings(),
    }
    expected = f"OwnableUnauthorizedAccount(account={signed_loop.outsider.address})"
    with pytest.raises(DaiseeError, match=re.escape(expected)):
        signed_loop.outsider.transact(calls[admin_call], admin_call)
    assert signed_loop.loop.meter(meter).signer == signed_loop.households[0].key.address


def test_static_shares_never_exceed_the_whole(signed_loop: SignedLoop) -> None:
    extra = b"\x08" * 32
    spec = MeterSpec(extra, signed_loop.outsider.address, signed_loop.outsider.address, MeterKind.CONSUMER, 1_001)
    with pytest.raises(DaiseeError, match=re.escape("SharesExceedTotal(total=10001)")):
        signed_loop.loop.add_meters([spec])
    with pytest.raises(DaiseeError, match=re.escape("InvalidShare(share=10001)")):
        signed_loop.loop.add_meters([replace(spec, share=10_001)])
    signed_loop.loop.add_meters([replace(spec, share=1_000)])  # exactly the whole
    assert signed_loop.loop.meter(extra).share == 1_000


def test_coefficients_change_only_with_scheduled_terms(signed_loop: SignedLoop) -> None:
    meters = [h.meter_id for h in signed_loop.households]
    with pytest.raises(DaiseeError, match=re.escape("NoPendingTerms()")):
        signed_loop.loop.set_coefficients({meters[1]: (5_000, 2)})
    current = signed_loop.loop.current_interval()
    signed_loop.loop.schedule_terms(AllocationKey.WEIGHTED, 120, current + 1)

    receipt = signed_loop.loop.set_coefficients({meters[1]: (5_000, 4), meters[2]: (0, 9)})

    scheduled = [
        (e["args"]["meterId"], e["args"]["epoch"], e["args"]["weight"])
        for e in signed_loop.loop.events("CoefficientsScheduled", receipt)
    ]
    assert scheduled == [(meters[1], 1, 4), (meters[2], 1, 9)]
    assert signed_loop.loop.meter(meters[1]).share == 3_000  # in force until the new terms start
    with pytest.raises(DaiseeError, match=re.escape("SharesExceedTotal(total=12500)")):
        signed_loop.loop.set_coefficients({meters[2]: (4_500, 1)})
    with pytest.raises(DaiseeError, match=re.escape("LengthMismatch()")):
        signed_loop.pmo.transact(signed_loop.loop.contract.functions.setCoefficients(meters, [0], [0]), "setting")
    with pytest.raises(DaiseeError, match=re.escape("InvalidEffectiveInterval")):
        signed_loop.loop.schedule_terms(AllocationKey.STATIC, 1, current)


def test_admin_changes_are_evented(signed_loop: SignedLoop) -> None:
    consumer = signed_loop.households[1].meter_id
    paused = signed_loop.loop.pause_readings()
    resumed = signed_loop.loop.unpause_readings()
    removed = signed_loop.loop.remove_meter(consumer)
    assert [e["args"]["account"] for e in signed_loop.loop.events("Paused", paused)] == [signed_loop.pmo.address]
    assert [e["args"]["account"] for e in signed_loop.loop.events("Unpaused", resumed)] == [signed_loop.pmo.address]
    assert [e["args"]["meterId"] for e in signed_loop.loop.events("MeterRemoved", removed)] == [consumer]


def test_an_announced_change_can_be_cancelled_and_then_never_applies(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, notice_seconds=1_800)
    consumer = loop.households[1]
    receipt = loop.loop.rotate_signer(consumer.meter_id, loop.outsider.address)
    change = loop.loop.meter_change(consumer.meter_id)
    assert change is not None
    assert (change.signer, change.reset) == (loop.outsider.address, False)

    cancelled = loop.loop.cancel_meter_change(consumer.meter_id)

    assert [e["args"]["meterId"] for e in loop.loop.events("MeterChangeCancelled", cancelled)] == [consumer.meter_id]
    assert loop.loop.meter_change(consumer.meter_id) is None
    travel_to(loop.chain, loop.loop.events("MeterChangeScheduled", receipt)[0]["args"]["effectiveAt"] + 1)
    no_change = f"NoMeterChange(meterId=0x{consumer.meter_id.hex()})"
    with pytest.raises(DaiseeError, match=re.escape(no_change)):
        loop.loop.as_sender(loop.outsider).apply_meter_change(consumer.meter_id)
    with pytest.raises(DaiseeError, match=re.escape(no_change)):
        loop.loop.as_sender(consumer.member).confirm_meter_change(consumer.meter_id)
    with pytest.raises(DaiseeError, match=re.escape(no_change)):
        loop.loop.cancel_meter_change(consumer.meter_id)
    assert loop.loop.meter(consumer.meter_id).signer == consumer.key.address


def test_coefficients_change_only_while_the_scheduled_terms_are_a_notice_away(any_chain: Chain) -> None:
    loop = make_signed_loop(any_chain, notice_seconds=1_800)  # the clock in interval 4: terms from 7 on
    meters = [h.meter_id for h in loop.households]
    with pytest.raises(DaiseeError, match=re.escape("InvalidEffectiveInterval(from=6, earliest=7)")):
        loop.loop.schedule_terms(AllocationKey.WEIGHTED, 100, 6)
    loop.loop.schedule_terms(AllocationKey.WEIGHTED, 100, 7)
    loop.loop.set_coefficients({meters[1]: (0, 5)})
    assert loop.loop.contract.functions.meter(meters[1]).call()[9:12] == (0, 5, 1)  # nextShare, nextWeight, nextEpoch

    travel_to(loop.chain, loop.start_of(5) + 1)  # interval 7 now starts less than the notice away
    with pytest.raises(DaiseeError, match=re.escape("NoPendingTerms()")):
        loop.loop.set_coefficients({meters[1]: (0, 9)})
    assert loop.loop.contract.functions.meter(meters[1]).call()[9:12] == (0, 5, 1)
