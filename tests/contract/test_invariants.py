"""Invariants that no sequence of actions may break (DESIGN.md invariants 6 and 7), fuzzed on py-evm.

Random loops, members and outsiders do what the threat model allows them: gateways sign any indices
(far beyond the meters' limits, flows their kind cannot have, 2^64 - 1), late, forged or not at all; the
PMO removes, repairs and rotates meters and sets prices up to the largest cap a loop accepts; members
deposit (some never do), withdraw more than they have, pay receivables; an outsider sends tokens to
the loop unasked, and the loop may be paused. After every interval:

- settling it, once finalized, succeeds, in chunks of any size;
- what members may withdraw plus the repaid debts waiting for producers is at most what the loop holds
  (exactly what was deposited and not withdrawn, plus what was sent unasked), and the receivables are
  the debts plus those repaid debts.
"""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import MAX_LIMIT_W, AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec
from daisee.readings import Reading
from tests.contract.conftest import assert_solvent, next_boundary
from tests.contract.timetravel import now, travel_to

MAX_PRICE = 2**56 - 1
MAX_INDEX = 2**64 - 1
MEMBERS = range(2, 7)  # development accounts paid by the meters; account 7 is an outsider
ACTIONS = ("remove", "repair", "terms", "pause", "deposit", "deposit", "withdraw", "pay", "donate")
EMBEDDED = connect("embedded")  # one py-evm chain for every example; each example deploys its own loop


@settings(
    max_examples=15,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_settlement_never_reverts_and_the_ledger_stays_solvent(data: st.DataObject) -> None:
    draw = data.draw
    chain: Chain = EMBEDDED
    pmo, outsider = Sender.dev(chain, 0), Sender.dev(chain, 7)
    members = [Sender.dev(chain, i) for i in MEMBERS]
    interval = draw(st.sampled_from([60, 900, 86_400]))
    cap = draw(st.sampled_from([1, MAX_PRICE]))
    key = draw(st.sampled_from(list(AllocationKey)))
    genesis = next_boundary(chain, interval)
    params = LoopParameters(interval, key, cap, genesis, 60, notice_seconds=0, price_cap_per_wh=cap)
    loop = Loop(pmo, deploy_loop(pmo, params).address)
    token = loop.settlement_token()
    assert token is not None
    payouts = [m.address for m in members]

    keys: dict[bytes, LocalAccount] = {}
    specs = []
    for i in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(list(MeterKind)))
        limit = draw(st.sampled_from([1, 12_000, MAX_LIMIT_W]))
        meter_id = bytes([i + 1]) * 32
        keys[meter_id] = Account.create()
        specs.append(
            MeterSpec(
                meter_id, keys[meter_id].address, draw(st.sampled_from(payouts)), kind,
                share=draw(st.integers(0, 2_000)), weight=draw(st.integers(0, 2**16 - 1)),
                import_wh=draw(st.sampled_from([0, MAX_INDEX // 2])),
                import_limit_w=0 if kind is MeterKind.PRODUCER else limit,
                export_limit_w=0 if kind is MeterKind.CONSUMER else limit,
            )
        )  # fmt: skip
    loop.add_meters(specs)

    donated = 0  # tokens sent to the loop outside `deposit`
    for t in range(draw(st.integers(2, 6))):
        travel_to(chain, genesis + (t + 1) * interval + 1)
        for _ in range(draw(st.integers(0, 3))):
            donated += _act(draw, loop, pmo, outsider, members, keys)
        if not loop.paused():
            batch = []
            for meter_id, gateway in keys.items():
                meter = loop.meter(meter_id)
                how = draw(st.sampled_from(["within", "within", "at-limit", "random", "huge", "silent", "forged"]))
                if how == "silent":
                    continue
                covered = max(t + 1 - meter.next_interval, 1)
                at_limit = (
                    meter.import_limit_w * covered * interval // 3600,
                    meter.export_limit_w * covered * interval // 3600,
                )
                delta = {
                    "at-limit": at_limit,
                    "within": (draw(st.integers(0, at_limit[0])), draw(st.integers(0, at_limit[1]))),
                    "random": (draw(st.integers(0, 2**40)), draw(st.integers(0, 2**40))),
                    "huge": (2**48 - 1, MAX_INDEX),
                }.get(how, (1, 1))
                signer = Account.create() if how == "forged" else gateway
                indices = (min(meter.import_wh + delta[0], MAX_INDEX), min(meter.export_wh + delta[1], MAX_INDEX))
                batch.append(Reading(meter_id, t, *indices).sign(signer.key, loop.domain))
            if batch:
                result = loop.as_sender(outsider).submit(batch)
                event(f"readings accepted: {'some' if result.accepted else 'none'}")
                for *_, reason in result.rejected:
                    event(f"reading refused: {reason.name}")
        # finalizing waits at most for the grace period; then settling the interval always succeeds
        travel_to(chain, max(now(chain), genesis + (t + 1) * interval + 61))
        loop.as_sender(outsider).finalize(t)
        loop.as_sender(outsider).settle(max_steps=draw(st.integers(1, 5)))
        assert loop.next_to_settle() == t + 1
        if any(loop.account(a).debt for a in payouts):
            event("a member owes")
        assert_solvent(loop, payouts, exact=False)
        recovered, _ = loop.receivables_queue()
        withdrawable = sum(loop.account(a).balance for a in dict.fromkeys(payouts)) + recovered
        assert token.functions.balanceOf(loop.address).call() == withdrawable + donated


def _act(  # type: ignore[no-untyped-def]
    draw, loop: Loop, pmo: Sender, outsider: Sender, members: list[Sender], keys: dict[bytes, LocalAccount]
) -> int:
    """One thing the PMO, a member or an outsider does (refused calls change nothing); returns what
    was sent to the loop unasked."""
    action = draw(st.sampled_from(ACTIONS))
    meter_id = draw(st.sampled_from(list(keys)))
    member = draw(st.sampled_from(members))
    token = loop.settlement_token()
    assert token is not None
    try:
        if action == "remove":
            loop.remove_meter(meter_id)
        elif action == "repair":
            keys[meter_id] = Account.create()
            loop.repair_meter(meter_id, keys[meter_id].address, draw(st.sampled_from([0, MAX_INDEX])), 0)
        elif action == "terms":
            price = draw(st.sampled_from([0, loop.config().price_cap_per_wh]))
            loop.schedule_terms(draw(st.sampled_from(list(AllocationKey))), price, loop.current_interval() + 1)
        elif action == "pause":
            (loop.unpause_readings if loop.paused() else loop.pause_readings)()
        elif action == "deposit":
            amount = draw(st.sampled_from([1, 10**6, 2**100]))
            pmo.transact(token.functions.mint(member.address, amount), "minting test euros")
            loop.as_sender(member).deposit(amount)
        elif action == "withdraw":
            balance = loop.account(member.address).balance
            loop.as_sender(member).withdraw(draw(st.sampled_from([balance, balance + 1])))
        elif action == "pay":
            loop.as_sender(outsider).pay_receivables(draw(st.integers(1, 3)))
        else:
            amount = draw(st.integers(1, 10**6))
            pmo.transact(token.functions.mint(outsider.address, amount), "minting test euros")
            outsider.transact(token.functions.transfer(loop.address, amount), "sending tokens unasked")
            return amount
    except DaiseeError as refused:
        assert "rejected by the contract" in str(refused)  # noqa: PT017 - refusals are part of the game
        event(f"{action} refused")
    else:
        event(f"{action} done")
    return 0
