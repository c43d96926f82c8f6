"""Random loops on the chain give exactly the reference model's results (DESIGN.md invariant 5).

Each example deploys a loop on one py-evm chain and drives it and a `LoopModel` side by side: meters of
every kind with household, small or maximal (2^32 - 1 W) limits; readings at, above and far above those
limits, of flows a meter cannot have, forged, late, or after gaps of several intervals; meters that
join, are removed, repaired or get a new key (with or without notice); terms and prices changed under
the cap (and refused above it); deposits by some payout accounts and not others, withdrawals and
payments of receivables; settlement in random chunks, sometimes an interval behind. After every step
the allocations, costs and revenues with what was paid of them, every account's balance, debt and
receivable, the receivables queue, the energy tokens, the meters and what the loop holds must be equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from web3.contract import Contract
from web3.types import TxReceipt

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import MAX_LIMIT_W, SHARE_DENOMINATOR, AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import AccountBalance, Loop, MeterChange, MeterSpec
from daisee.model import LoopModel, ModelReading, ModelRevert, NewMeter
from daisee.model import MeterChange as ModelChange
from daisee.readings import Reading, SignedReading
from tests.contract.conftest import next_boundary
from tests.contract.timetravel import now, travel_to

INTERVAL = 600
GRACE = 120
MAX_PRICE = 2**56 - 1
MAX_INDEX = 2**64 - 1
PAYOUTS = range(2, 8)  # development accounts the meters are paid to (several meters may share one)
LIMITS = (1_000, 12_000, MAX_LIMIT_W)  # W: a small plant, a household, the largest a meter may declare
# what happens between two intervals: the PMO's powers, the members' money, an outsider paying receivables
ACTIONS = (
    "terms", "terms", "remove", "rotate", "repair", "apply", "confirm", "cancel", "join",
    "deposit", "deposit", "withdraw", "pay",
)  # fmt: skip
# what a gateway sends for an interval (or not), honest or not
HOW = ("report",) * 6 + ("silent", "silent", "late", "forged", "new-key", "decreased", "replayed", "ahead")
EMBEDDED = connect("embedded")  # one py-evm chain for every example; each example deploys its own loop


def _block_time(chain: Chain, receipt: TxReceipt) -> int:
    return int(chain.w3.eth.get_block(receipt["blockNumber"])["timestamp"])


@dataclass
class Twin:
    """A loop on chain and its model, driven together."""

    chain: Chain
    loop: Loop
    model: LoopModel
    draw: Callable[..., Any]
    keys: dict[str, LocalAccount] = field(default_factory=dict)  # every gateway key, by address (lowercase)
    gateway: dict[bytes, LocalAccount] = field(default_factory=dict)  # the key each household installed last
    wallets: dict[str, int] = field(default_factory=dict)  # settlement tokens each payout holds
    members: dict[str, Sender] = field(default_factory=dict)

    @property
    def token(self) -> Contract:
        token = self.loop.settlement_token()
        assert token is not None
        return token

    def new_key(self) -> LocalAccount:
        key = Account.create()
        self.keys[key.address.lower()] = key
        return key

    def both(self, on_chain: Callable[[], TxReceipt], in_model: Callable[[int], object]) -> TxReceipt | None:
        """Run a call on chain and in the model: both revert with the same error, or neither does."""
        try:
            receipt = on_chain()
        except DaiseeError as error:
            reverted = str(error)
        else:
            in_model(_block_time(self.chain, receipt))
            return receipt
        with pytest.raises(ModelRevert) as revert:
            in_model(now(self.chain) + 1)
        assert f"rejected by the contract: {revert.value.name}(" in reverted
        event(f"reverted: {revert.value.name}")
        return None

    # ---------------------------------------------------------------- the PMO and the members

    def admit(self, count: int) -> None:
        specs: list[MeterSpec] = []
        total_share = max(self.model.shares_current, self.model.shares_next)
        for _ in range(count):
            kind = self.draw(st.sampled_from(list(MeterKind)))
            import_limit = 0 if kind is MeterKind.PRODUCER else self.draw(st.sampled_from(LIMITS))
            export_limit = 0 if kind is MeterKind.CONSUMER else self.draw(st.sampled_from(LIMITS))
            share = min(self.draw(st.integers(0, 4_000)), SHARE_DENOMINATOR - total_share)
            total_share += share
            start = self.draw(st.sampled_from([0, 12_345, 2**63]))
            key = self.new_key()
            meter_id = bytes([len(self.model.meter_ids()) + len(specs) + 1]) * 32
            payout = self.members[self.draw(st.sampled_from(list(self.members)))].address
            specs.append(
                MeterSpec(
                    meter_id, key.address, payout, kind, share, self.draw(st.integers(0, 10)), start, start // 2,
                    import_limit, export_limit,
                )
            )  # fmt: skip
            self.gateway[meter_id] = key
        receipt = self.both(
            lambda: self.loop.add_meters(specs)[0],
            lambda t: self.model.add_meters([_new_meter(s) for s in specs], t),
        )
        for added in self.loop.events("MeterAdded", receipt) if receipt else ():
            assert added["args"]["activeFrom"] == self.model.meter(added["args"]["meterId"]).active_from

    def meter(self) -> bytes:
        return self.draw(st.sampled_from(self.model.meter_ids()))

    def act(self) -> None:
        """One thing the PMO, a member or an outsider does between two intervals."""
        action = self.draw(st.sampled_from(ACTIONS))
        event(f"action: {action}")
        m = model = self.model
        loop = self.loop
        if action == "terms":
            key = self.draw(st.sampled_from(list(AllocationKey)))
            cap = m.price_cap_per_wh
            price = self.draw(st.sampled_from([0, cap, cap + 1]) | st.integers(0, min(cap, 500)))
            first = m.current_interval(now(self.chain)) + 1
            start = first + self.draw(st.integers(-1, 2))
            self.both(
                lambda: loop.schedule_terms(key, price, start), lambda t: model.schedule_terms(key, price, start, t)
            )
        elif action == "remove":
            meter_id = self.meter()
            self.both(lambda: loop.remove_meter(meter_id), lambda t: model.remove_meter(meter_id))
        elif action in ("rotate", "repair"):
            meter_id, key = self.meter(), self.new_key()
            if action == "rotate":
                self.both(
                    lambda: loop.rotate_signer(meter_id, key.address),
                    lambda t: model.schedule_change(meter_id, key.address, t),
                )
            else:
                current = m.meter(meter_id)
                imported = self.draw(st.sampled_from([0, current.import_wh, current.import_wh + 7]))
                exported = self.draw(st.sampled_from([0, current.export_wh]))
                self.both(
                    lambda: loop.repair_meter(meter_id, key.address, imported, exported),
                    lambda t: model.schedule_change(
                        meter_id, key.address, t, reset=True, import_wh=imported, export_wh=exported
                    ),
                )
            self.gateway[meter_id] = key  # the household installs its new gateway now
        elif action == "apply":
            meter_id = self.meter()
            self.both(lambda: loop.apply_meter_change(meter_id), lambda t: model.apply_change(meter_id, t))
        elif action == "confirm":
            meter_id = self.meter()
            payout = m.meter(meter_id).payout
            member = loop.as_sender(self.members[payout])
            self.both(
                lambda: member.confirm_meter_change(meter_id), lambda t: model.confirm_change(meter_id, payout, t)
            )
        elif action == "cancel":
            meter_id = self.meter()
            self.both(lambda: loop.cancel_meter_change(meter_id), lambda t: model.cancel_change(meter_id))
        elif action == "join":
            self.admit(1)
        elif action == "deposit":
            payout = self.draw(st.sampled_from(list(self.members)))
            owed = m.account(payout).debt
            amount = self.draw(st.sampled_from([0, owed, owed + 1_000, 2**100]) | st.integers(1, 10**7))
            self.loop.sender.transact(self.token.functions.mint(payout, amount), "minting test euros")
            self.wallets[payout] = self.wallets.get(payout, 0) + amount
            if self.both(
                lambda: loop.as_sender(self.members[payout]).deposit(amount), lambda t: model.deposit(payout, amount)
            ):
                self.wallets[payout] -= amount
        elif action == "withdraw":
            payout = self.draw(st.sampled_from(list(self.members)))
            balance = m.account(payout).balance
            amount = self.draw(st.sampled_from([balance, balance + 1, balance // 2, 1]))
            if self.both(
                lambda: loop.as_sender(self.members[payout]).withdraw(amount), lambda t: model.withdraw(payout, amount)
            ):
                self.wallets[payout] = self.wallets.get(payout, 0) + amount
        else:
            claims = self.draw(st.integers(1, 3))
            receipt = self.both(lambda: loop.pay_receivables(claims), lambda t: None)
            assert receipt is not None
            paid = sum(e["args"]["amount"] for e in loop.events("ReceivablePaid", receipt))
            assert paid == model.pay_receivables(claims)

    # ---------------------------------------------------------------- readings

    def reading(self, meter_id: bytes, t: int) -> tuple[SignedReading, bool] | None:
        """What a household's gateway sends for interval t, or None if it stays silent."""
        how = self.draw(st.sampled_from(HOW))
        if how == "silent":
            return None
        meter = self.model.meter(meter_id)
        covered = max(t + 1 - meter.next_interval, 0)
        imported = meter.import_wh + self._delta(meter.import_limit_w, covered)
        exported = meter.export_wh + self._delta(meter.export_limit_w, covered)
        if how == "decreased":
            imported = self.draw(st.integers(0, meter.import_wh - 1)) if meter.import_wh else imported
        t = {"replayed": max(t - 1, 0), "ahead": t + 1}.get(how, t)
        registered = self.keys[meter.signer.lower()]
        key = {"forged": Account.create(), "new-key": self.gateway[meter_id]}.get(how, registered)
        reading = Reading(meter_id, t, min(imported, MAX_INDEX), min(exported, MAX_INDEX))
        signed = reading.sign(key.key, self.loop.domain)
        return signed, how == "late"

    def _delta(self, limit_w: int, covered: int) -> int:
        """Energy since the meter's last reading: typical, zero, at or above its limit over the time
        covered, the 2^48 - 1 Wh that froze the old loop, or a flow the meter cannot have."""
        if limit_w == 0:
            return self.draw(st.sampled_from([0] * 9 + [1_000]))
        most = limit_w * covered * INTERVAL // 3600
        mode = self.draw(st.sampled_from(["typical"] * 5 + ["zero", "limit", "above", "huge"]))
        if mode == "typical":
            return int(self.draw(st.integers(0, max(most, 1))))
        return {"zero": 0, "limit": most, "above": most + 1, "huge": 2**48 - 1}[mode]

    def submit(self, batch: list[SignedReading]) -> None:
        if not batch:
            return
        expected = self.model.submit([self._model_reading(r) for r in batch], now(self.chain) + 1)
        result = self.loop.submit(batch)
        pairs = [(r.reading, e) for r, e in zip(batch, expected, strict=True)]
        assert result.accepted == [(r.meter_id, r.interval) for r, e in pairs if e is None]
        assert result.rejected == [(r.meter_id, r.interval, e) for r, e in pairs if e is not None]
        for outcome in expected:
            event(f"reading: {'accepted' if outcome is None else outcome.name}")

    def _model_reading(self, signed: SignedReading) -> ModelReading:
        r = signed.reading
        signer = signed.recover(self.loop.domain)
        known = r.meter_id in self.model.meter_ids()
        signature_ok = known and signer is not None and signer.lower() == self.model.meter(r.meter_id).signer.lower()
        return ModelReading(r.meter_id, r.interval, r.import_wh, r.export_wh, signature_ok)

    # ---------------------------------------------------------------- intervals

    def finalize(self, t: int) -> None:
        """Finalize t, after its grace period if a meter is missing (both sides agree on when)."""
        if self.both(lambda: self.loop.finalize(t), lambda at: self.model.finalize(t, at)) is None:
            travel_to(self.chain, self.model.interval_end(t) + GRACE)
            self.both(lambda: self.loop.finalize(t), lambda at: self.model.finalize(t, at))
        assert self.model.finalized_through == t

    def settle(self) -> None:
        t = self.model.settled_through + 1
        settled = self.loop.settle(max_steps=self.draw(st.integers(1, 4)))
        chain_result = self.loop.results(settled.receipts).get(t, {})
        model_result = self.model.settle_next()
        price = model_result.price_per_wh
        assert {
            m.meter_id: (
                m.consumed, m.allocated, m.allocated * price, m.paid_cost,
                m.produced, m.sold, m.sold * price, m.paid_revenue,
            )
            for m in model_result.members
            if m.consumed or m.produced
        } == {
            mid: (r.consumed, r.allocated, r.cost, r.paid_cost, r.produced, r.sold, r.revenue, r.paid_revenue)
            for mid, r in chain_result.items()
        }  # fmt: skip
        if any(m.allocated for m in model_result.members):
            unpaid = any(m.paid_cost < m.allocated * price for m in model_result.members)
            event(f"settled local energy, {'partly unpaid' if unpaid else 'all paid'}")
        consumption_order = [s.meter_id for s in self.loop.settled_sides(settled.receipts) if not s.production]
        assert consumption_order == [m.meter_id for m in model_result.members if m.consumed]

    # ---------------------------------------------------------------- state

    def assert_same_books(self) -> None:
        """Every payout account's balance, debt, receivable and energy tokens, the receivables queue and
        what the loop holds (about 15 calls: after every interval)."""
        loop, model = self.loop, self.model
        for address in self.members:
            account, tokens = model.account(address), model.tokens(address)
            assert loop.account(address) == AccountBalance(account.balance, account.debt, account.receivable)
            assert loop.tokens(address) == (tokens.produced, tokens.consumed, tokens.self_consumed)
        assert loop.receivables_queue() == (model.ledger.recovered, len(model.ledger.claims()))
        assert self.token.functions.balanceOf(loop.address).call() == model.ledger.held

    def assert_same_state(self) -> None:
        """The books, and the members' wallets, the loop's cursors and every meter (at the end)."""
        loop, model = self.loop, self.model
        self.assert_same_books()
        for address in self.members:
            assert self.token.functions.balanceOf(address).call() == self.wallets.get(address, 0)
        assert (loop.next_to_finalize(), loop.next_to_settle()) == (
            model.finalized_through + 1,
            model.settled_through + 1,
        )
        for meter_id in model.meter_ids():
            on_chain, in_model = loop.meter(meter_id), model.meter(meter_id)
            assert (on_chain.signer.lower(), on_chain.active, on_chain.next_interval) == (
                in_model.signer.lower(),
                in_model.active,
                in_model.next_interval,
            )
            assert (on_chain.import_wh, on_chain.export_wh) == (in_model.import_wh, in_model.export_wh)
            assert _change(loop.meter_change(meter_id)) == _change(model.change(meter_id))


def _change(change: MeterChange | ModelChange | None) -> tuple[object, ...] | None:
    if change is None:
        return None
    return change.signer.lower(), change.effective_at, change.reset, change.import_wh, change.export_wh


def _new_meter(spec: MeterSpec) -> NewMeter:
    import_limit, export_limit = spec.limits()
    return NewMeter(
        spec.meter_id, spec.signer, spec.payout, spec.kind, import_limit, export_limit,
        spec.share, spec.weight, spec.import_wh, spec.export_wh,
    )  # fmt: skip


# Each example is a few dozen transactions on py-evm: no shrinking (it would take minutes); a failure
# prints every value drawn and the seed.
@settings(
    max_examples=12,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_chain_settles_exactly_as_the_reference_model(data: st.DataObject) -> None:
    draw = data.draw
    chain = EMBEDDED
    pmo = Sender.dev(chain)
    key = draw(st.sampled_from(list(AllocationKey)))
    cap = draw(st.sampled_from([1, 300, MAX_PRICE]))
    price = draw(st.sampled_from([0, cap]) | st.integers(0, min(cap, 300)))
    notice = draw(st.sampled_from([0, 0, INTERVAL // 2]))
    genesis = next_boundary(chain, INTERVAL)
    params = LoopParameters(INTERVAL, key, price, genesis, GRACE, notice_seconds=notice, price_cap_per_wh=cap)
    loop = Loop(pmo, deploy_loop(pmo, params).address)
    model = LoopModel(genesis, INTERVAL, GRACE, key, price, pmo.address, notice_seconds=notice, price_cap_per_wh=cap)
    twin = Twin(chain, loop, model, draw, members={Sender.dev(chain, i).address: Sender.dev(chain, i) for i in PAYOUTS})
    twin.admit(draw(st.integers(1, 6)))

    behind = False  # settlement may lag one interval behind the readings
    for t in range(draw(st.integers(2, 6))):
        travel_to(chain, model.interval_end(t) + 1)
        for _ in range(draw(st.integers(0, 3))):
            twin.act()
        on_time: list[SignedReading] = []
        late: list[SignedReading] = []
        for meter_id in model.meter_ids():
            sent = twin.reading(meter_id, t)
            if sent is not None:
                (late if sent[1] else on_time).append(sent[0])
        twin.submit(on_time)
        twin.finalize(t)
        twin.submit(late)
        lag = not behind and draw(st.booleans())
        while model.settled_through < t - (1 if lag else 0):
            twin.settle()
        behind = lag
        twin.assert_same_books()
    while model.settled_through < model.finalized_through:
        twin.settle()
    twin.assert_same_state()
    # the ledger's books, equal on both sides: what members may withdraw is what the loop holds
    accounts = [model.account(a) for a in twin.members]
    assert sum(a.balance for a in accounts) + model.ledger.recovered == model.ledger.held
    assert sum(a.receivable for a in accounts) == sum(a.debt for a in accounts) + model.ledger.recovered
