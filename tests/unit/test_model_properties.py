"""Properties of the reference model over random loops, adversarial ones included.

Each random loop admits meters of every kind with limits from 1 W to 2^32 - 1 W, at prices up to the
widest cap, then runs intervals in which meters report on time, late or not at all, sign more than
their limits allow, flows their kind cannot have, decreasing indices or forged readings, while the PMO
admits, removes, rotates and repairs meters and changes the terms, and members deposit, withdraw and
collect receivables. After every step:

- solvency: sum of balances + recovered == held == deposits - withdrawals (the model settles an
  interval atomically: nothing is in flight), sum of receivables == sum of debts + recovered, nothing
  negative, no account with both a balance and a debt, and every positive balance can be withdrawn;
- nobody's money pays for another: an account's balance only drops by its own costs or withdrawals,
  its debt only grows by its own unpaid costs, and a deposit or withdrawal touches no other account;
- energy: every accepted Wh is minted once, to its meter's payout account; per interval a member is
  allocated at most what it consumed and sells at most what it produced, and sum allocated == sum
  sold <= min(P, C);
- limits: no accepted reading carries more than the meter's limit times the time since its last one;
- finalization: an interval closes before its grace period ends exactly when every active meter due
  reported it (a meter removed meanwhile stops counting at once);
- settlement of a finalized interval never raises, and its values fit the contract's widths.

A separate property compares a meter that withholds its readings with the same meter reporting the
same energy evenly on time: late never sells (or is allocated) more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daisee.domain import MAX_LIMIT_W, MAX_METERS, SHARE_DENOMINATOR, AllocationKey, MeterKind, RejectReason
from daisee.model import Account, IntervalResult, LoopModel, MeterChange, ModelReading, ModelRevert, Tokens
from daisee.model.ledger import UINT96_MAX
from daisee.model.state import MAX_PRICE_PER_WH
from tests.unit.test_model_support import GENESIS, TREASURY, add, close, feed, household_limits, mid, payout, signer

T = TypeVar("T")
NOBODY = "nobody"  # `Run.booked(only=NOBODY)`: the step touches no account
SHARE_BITS = 37  # a meter's share of one interval: at most 2^32 W over one day
MONEY_BITS = 93  # one interval's cost or revenue of one meter: 2^37 Wh at 2^56 units per Wh


# --- checks shared by every property ---------------------------------------------------------


def attempt(step: Callable[[], object]) -> ModelRevert | None:
    """What `step` reverted with, if it did."""
    try:
        step()
    except ModelRevert as revert:
        return revert
    return None


def check_books(loop: LoopModel, deposited: int, withdrawn: int) -> None:
    """The ledger is solvent and every receivable is backed by a debt or by recovered money."""
    ledger = loop.ledger
    accounts = list(ledger.accounts().values())
    for a in accounts:
        assert min(a.balance, a.debt, a.receivable) >= 0
        assert a.balance == 0 or a.debt == 0  # whatever reaches an account repays its debt first
        assert max(a.balance, a.debt) < 2**128
    assert ledger.held == deposited - withdrawn < 2**128
    assert sum(a.balance for a in accounts) + ledger.recovered == ledger.held
    assert sum(a.receivable for a in accounts) == sum(a.debt for a in accounts) + ledger.recovered
    claims = ledger.claims()
    if ledger.with_token:
        assert sum(amount for _, amount in claims) == sum(a.receivable for a in accounts)
        assert all(0 < amount <= UINT96_MAX for _, amount in claims)
    else:
        assert claims == []
        assert ledger.held == ledger.recovered == 0


def check_settled(loop: LoopModel, result: IntervalResult) -> None:
    """One settled interval conserves energy and money and fits the contract's widths."""
    assert result.interval == loop.settled_through
    totals = loop.totals(result.interval)
    assert (result.consumed, result.produced) == (totals.consumed, totals.produced)
    assert max(totals.consumed, totals.produced) < 2**64
    price = result.price_per_wh
    for m in result.members:
        assert 0 <= m.allocated <= m.consumed < 2**SHARE_BITS
        assert 0 <= m.sold <= m.produced < 2**SHARE_BITS
        assert m.amount == (m.sold - m.allocated) * price
        assert max(m.allocated, m.sold) * price < 2**MONEY_BITS
        assert 0 <= m.paid_cost <= m.allocated * price
        assert 0 <= m.paid_revenue <= m.sold * price
    assert result.allocated == sum(m.allocated for m in result.members)
    assert result.sold == sum(m.sold for m in result.members) == result.allocated
    assert result.allocated <= min(result.produced, result.consumed)
    assert sum(m.paid_cost for m in result.members) == sum(m.paid_revenue for m in result.members)


# --- random loops ----------------------------------------------------------------------------

LIMITS = st.sampled_from([1, 3, 4, 12_000, 9_000, 36_000, MAX_LIMIT_W]) | st.integers(1, MAX_LIMIT_W)
INDICES = st.sampled_from([0, 1, 2**63]) | st.integers(0, 2**63)
AMOUNTS = st.sampled_from([1, 10**6, 2**96]) | st.integers(1, 2**96)
FATES = ("on_time",) * 5 + ("skip", "skip", "inflate", "flow", "forged", "decrease", "replay")
ACTIONS = ("add", "remove", "rotate", "repair", "terms", "coefficients", "deposit", "deposit", "withdraw", "pay")


@dataclass
class Site:
    """What the test knows of one meter: its physical indices and the energy the loop counted."""

    meter_id: bytes
    account: str
    start: tuple[int, int]  # indices at admission
    true: list[int]  # the indices on site now
    replaced: list[int] = field(default_factory=lambda: [0, 0])  # energy counted on indices a repair replaced

    def counted(self, loop: LoopModel) -> tuple[int, int]:
        """(consumed, produced) Wh of every accepted reading since admission."""
        meter = loop.meter(self.meter_id)
        return (
            meter.import_wh - self.start[0] + self.replaced[0],
            meter.export_wh - self.start[1] + self.replaced[1],
        )


class Run:
    """A random loop driven step by step, every step checked."""

    def __init__(self, data: st.DataObject) -> None:
        self.draw = data.draw
        self.interval = self.draw(st.sampled_from([60, 900, 86_400]), label="interval")
        self.grace = self.draw(st.sampled_from([60, 300]), label="grace")
        cap = self.draw(st.sampled_from([1, 1000, MAX_PRICE_PER_WH]) | st.integers(1, MAX_PRICE_PER_WH), label="cap")
        self.loop = LoopModel(
            GENESIS,
            self.interval,
            self.grace,
            self.draw(st.sampled_from(AllocationKey), label="key"),
            self.draw(st.integers(0, cap), label="price"),
            TREASURY,
            notice_seconds=self.draw(st.sampled_from([0, 0, self.interval, 2 * self.interval + 7]), label="notice"),
            price_cap_per_wh=cap,
            with_token=self.draw(st.sampled_from([True, True, True, False]), label="with_token"),
        )
        self.accounts = [payout(n) for n in range(1, 5)] + [TREASURY]
        self.sites: dict[bytes, Site] = {}
        self.deposited = self.withdrawn = 0
        self.sold = 0  # Wh sold locally, over every settled interval

    # --- time

    def during(self, t: int) -> int:
        return GENESIS + t * self.interval + self.interval // 2

    def just_after(self, t: int) -> int:
        return GENESIS + (t + 1) * self.interval

    def after_grace(self, t: int) -> int:
        return GENESIS + (t + 1) * self.interval + self.grace

    # --- checked steps

    def booked(self, step: Callable[[], T], *, only: str | None = None, withdrawal: int = 0) -> T:
        """Run `step`; check that nobody's money moved for another (`only`: the one account it may touch)."""
        before = self.loop.ledger.accounts()
        outcome = step()
        after = self.loop.ledger.accounts()
        paid: dict[str, int] = {}
        unpaid: dict[str, int] = {}
        if isinstance(outcome, IntervalResult):
            for m in outcome.members:
                account = self.loop.meter(m.meter_id).payout
                paid[account] = paid.get(account, 0) + m.paid_cost
                unpaid[account] = unpaid.get(account, 0) + m.allocated * outcome.price_per_wh - m.paid_cost
        for account in after.keys() | before.keys():
            old, new = before.get(account, Account()), after.get(account, Account())
            assert old.balance - new.balance <= paid.get(account, 0) + (withdrawal if account == only else 0)
            assert new.debt - old.debt <= unpaid.get(account, 0)
            if only is not None and account != only:
                assert new == old
        check_books(self.loop, self.deposited, self.withdrawn)
        return outcome

    def settle(self) -> None:
        """Settle the next finalized interval: it never raises."""
        result = self.booked(self.loop.settle_next)
        check_settled(self.loop, result)
        self.sold += result.sold

    def check_energy(self) -> None:
        """With nothing pending, every accepted Wh was minted once, to its meter's payout account."""
        if any(self.loop.pending(meter_id) for meter_id in self.sites):
            return
        minted: dict[str, list[int]] = {}
        for site in self.sites.values():
            consumed, produced = site.counted(self.loop)
            totals = minted.setdefault(site.account, [0, 0])
            totals[0] += consumed
            totals[1] += produced
        for account, (consumed, produced) in minted.items():
            tokens = self.loop.tokens(account)
            assert (tokens.consumed, tokens.produced) == (consumed, produced)
            assert tokens.self_consumed <= tokens.consumed
        assert sum(self.loop.tokens(account).self_consumed for account in minted) == self.sold

    # --- the PMO and the members

    def act(self, t: int) -> None:
        """What the PMO and the members do during interval t."""
        now = self.during(t)
        for meter_id in self.active():
            if self.loop.change(meter_id) is not None:
                self.booked(partial(self.follow_up, meter_id, now), only=NOBODY)
        for _ in range(self.draw(st.integers(0, 4), label="actions")):
            action = getattr(self, self.draw(st.sampled_from(ACTIONS), label="action"))
            if action in (self.deposit, self.withdraw, self.pay):
                action(now)  # books its own money
            else:
                self.booked(partial(action, now), only=NOBODY)  # the PMO's powers move nobody's money

    def active(self) -> list[bytes]:
        return [m for m in self.sites if self.loop.meter(m).active]

    def add(self, now: int) -> None:
        draw = self.draw
        if len(self.sites) >= 8:
            return
        kind = draw(st.sampled_from(MeterKind), label="kind")
        limits = (0 if kind is MeterKind.PRODUCER else draw(LIMITS), 0 if kind is MeterKind.CONSUMER else draw(LIMITS))
        room = SHARE_DENOMINATOR - max(self.loop.shares_current, self.loop.shares_next)
        start = (draw(INDICES, label="import"), draw(INDICES, label="export"))
        n = len(self.sites) + 1
        account = draw(st.sampled_from(self.accounts[:4]), label="account")
        self.loop.add_meter(
            mid(n),
            signer(n),
            account,
            kind,
            import_limit_w=limits[0],
            export_limit_w=limits[1],
            now=now,
            share=draw(st.integers(0, room), label="share"),
            weight=draw(st.integers(0, 2**16 - 1), label="weight"),
            import_wh=start[0],
            export_wh=start[1],
        )
        self.sites[mid(n)] = Site(mid(n), account, start, list(start))

    def remove(self, now: int) -> None:
        if active := self.active():
            self.loop.remove_meter(self.draw(st.sampled_from(active), label="meter"))

    def rotate(self, now: int) -> None:
        self.announce(now, reset=False)

    def repair(self, now: int) -> None:
        self.announce(now, reset=True)

    def announce(self, now: int, *, reset: bool) -> None:
        """The PMO announces a new key, and with `reset` new indices (the meter was swapped)."""
        if not (active := self.active()):
            return
        meter_id = self.draw(st.sampled_from(active), label="meter")
        indices = (self.draw(INDICES), self.draw(INDICES)) if reset else (0, 0)
        change = MeterChange(signer(99), now + self.loop.notice_seconds, reset, *indices)
        self.changed(
            meter_id,
            change,
            lambda: self.loop.schedule_change(
                meter_id, change.signer, now, reset=reset, import_wh=indices[0], export_wh=indices[1]
            ),
        )
        assert self.loop.change(meter_id) in (None, change)

    def follow_up(self, meter_id: bytes, now: int) -> None:
        """Someone applies an announced change once due, the member confirms it, or the PMO cancels it."""
        loop = self.loop
        announced = loop.change(meter_id)
        assert announced is not None
        step = self.draw(st.sampled_from(["wait", "apply", "apply", "confirm", "cancel"]), label="follow-up")
        if step == "apply" and now >= announced.effective_at:
            self.changed(meter_id, announced, lambda: loop.apply_change(meter_id, now))
        elif step == "apply":
            revert = attempt(lambda: loop.apply_change(meter_id, now))
            assert revert is not None
            assert (revert.name, revert.args) == ("MeterChangeNotDue", (meter_id, announced.effective_at))
        elif step == "confirm":
            self.changed(meter_id, announced, lambda: loop.confirm_change(meter_id, self.sites[meter_id].account, now))
        elif step == "cancel":
            loop.cancel_change(meter_id)
            assert loop.change(meter_id) is None

    def changed(self, meter_id: bytes, change: MeterChange, step: Callable[[], None]) -> None:
        """Announce or apply a meter change; a repair that takes effect swaps the meter on site."""
        before = self.loop.meter(meter_id)
        step()
        after = self.loop.meter(meter_id)
        if self.loop.change(meter_id) is not None:
            assert after == before  # announced, not in effect yet
            return
        assert after.signer == change.signer
        assert after.next_interval == before.next_interval
        if change.reset:
            assert (after.import_wh, after.export_wh) == (change.import_wh, change.export_wh)
            site = self.sites[meter_id]
            site.replaced[0] += before.import_wh - change.import_wh
            site.replaced[1] += before.export_wh - change.export_wh
            site.true = [change.import_wh, change.export_wh]

    def terms(self, now: int) -> None:
        """The PMO schedules terms, at a price up to (or, refused, just above) the cap."""
        loop, draw = self.loop, self.draw
        cap = loop.price_cap_per_wh
        price = draw(st.integers(0, cap) | st.just(cap) | st.just(cap + 1), label="price")
        start = loop.first_noticed_interval(now) + draw(st.integers(0, 3), label="from")
        key = draw(st.sampled_from(AllocationKey), label="key")
        revert = attempt(lambda: loop.schedule_terms(key, price, start, now))
        if price > cap:
            assert revert is not None
            assert (revert.name, revert.args) == ("PriceAboveCap", (price, cap))
            return
        assert revert is None or revert.name == "TermsChangePending"
        for _ in range(self.draw(st.integers(0, 2), label="coefficients")):
            self.coefficients(now)

    def coefficients(self, now: int) -> None:
        if not (active := self.active()):
            return
        draw = self.draw
        meter_id = draw(st.sampled_from(active), label="meter")
        share = draw(st.integers(0, SHARE_DENOMINATOR), label="share")
        weight = draw(st.integers(0, 2**16 - 1), label="weight")
        revert = attempt(lambda: self.loop.set_coefficients([meter_id], [share], [weight], now))
        assert revert is None or revert.name in ("NoPendingTerms", "SharesExceedTotal")

    def deposit(self, now: int) -> None:
        """Anyone deposits; a member in debt more often."""
        loop = self.loop
        debtors = [a for a in self.accounts if loop.account(a).debt]
        account = self.draw(st.sampled_from(self.accounts + debtors * 3), label="account")
        amount = self.draw(AMOUNTS | st.integers(1, max(loop.account(account).debt, 1)), label="amount")
        if not loop.ledger.with_token:
            revert = attempt(lambda: loop.deposit(account, amount))
            assert revert is not None
            assert revert.name == "NoSettlementToken"
            return
        self.deposited += amount
        self.booked(lambda: loop.deposit(account, amount), only=account)

    def withdraw(self, now: int) -> None:
        """A member takes out part or all of its balance; one cent more is refused."""
        loop = self.loop
        account = self.draw(st.sampled_from(self.accounts), label="account")
        balance = loop.account(account).balance
        if balance > 0:  # a positive balance can always be withdrawn
            amount = self.draw(st.integers(1, balance) | st.just(balance), label="amount")
            self.withdrawn += amount
            self.booked(lambda: loop.withdraw(account, amount), only=account, withdrawal=amount)
            assert loop.account(account).balance == balance - amount
        elif loop.ledger.with_token:
            revert = attempt(lambda: loop.withdraw(account, 1))
            assert revert is not None
            assert (revert.name, revert.args) == ("InsufficientBalance", (account, 0, 1))

    def pay(self, now: int) -> None:
        ledger = self.loop.ledger
        waiting = ledger.due() > 0  # repaid debts for the oldest claim, or its holder's own debt to net
        paid = self.booked(lambda: self.loop.pay_receivables(self.draw(st.integers(1, 5), label="claims")))
        assert (paid > 0) == waiting

    # --- energy and readings

    def consume(self, t: int) -> None:
        """Each meter on site moves its indices by what flowed in interval t, up to its limits."""
        for meter_id in self.active():
            meter = self.loop.meter(meter_id)
            for side, limit in enumerate((meter.import_limit_w, meter.export_limit_w)):
                most = limit * self.interval // 3600
                self.sites[meter_id].true[side] += self.draw(st.sampled_from([0, most]) | st.integers(0, most))

    def report(self, t: int) -> None:
        """Readings of interval t just after it: honest ones, and attacks each refused for its reason."""
        loop = self.loop
        readings: list[ModelReading] = []
        expected: list[RejectReason | None] = []
        for meter_id, site in self.sites.items():
            meter = loop.meter(meter_id)
            honest = ModelReading(meter_id, t, site.true[0], site.true[1])
            if not meter.active or t < meter.active_from:
                if self.draw(st.booleans(), label="try"):
                    readings.append(honest)
                    expected.append(RejectReason.METER_INACTIVE if not meter.active else RejectReason.NOT_YET_ACTIVE)
                continue
            fate = self.draw(st.sampled_from(FATES), label="fate")
            if fate == "skip":
                continue
            attack = self.attack(fate, honest)
            if attack is not None:
                readings.append(attack[0])
                expected.append(attack[1])
            readings.append(honest)
            expected.append(None)
            if fate == "replay":
                readings.append(honest)
                expected.append(RejectReason.STALE_INTERVAL)
        if not readings:
            return
        before = {meter_id: loop.meter(meter_id) for meter_id in self.sites}
        outcomes = self.booked(lambda: loop.submit(readings, self.just_after(t)), only=NOBODY)
        assert outcomes == expected
        for reading, outcome in zip(readings, outcomes, strict=True):
            if outcome is None:  # within the limits since the last accepted reading
                meter = before[reading.meter_id]
                elapsed = (reading.interval + 1 - meter.next_interval) * self.interval
                assert (reading.import_wh - meter.import_wh) * 3600 <= meter.import_limit_w * elapsed
                assert (reading.export_wh - meter.export_wh) * 3600 <= meter.export_limit_w * elapsed

    def attack(self, fate: str, honest: ModelReading) -> tuple[ModelReading, RejectReason] | None:
        """A dishonest reading sent before the honest one, and why the loop refuses it."""
        meter = self.loop.meter(honest.meter_id)
        indices = (meter.import_wh, meter.export_wh)
        if fate == "forged":
            return ModelReading(
                honest.meter_id, honest.interval, *indices, signature_ok=False
            ), RejectReason.BAD_SIGNATURE
        if fate == "decrease" and max(indices) > 0:
            lowered = (indices[0] - 1, indices[1]) if indices[0] > 0 else (indices[0], indices[1] - 1)
            return ModelReading(honest.meter_id, honest.interval, *lowered), RejectReason.INDEX_DECREASED
        if fate == "flow" and meter.kind is not MeterKind.PROSUMER:
            side = 1 if meter.kind is MeterKind.CONSUMER else 0
            bogus = [*indices]
            bogus[side] += 1
            return ModelReading(honest.meter_id, honest.interval, bogus[0], bogus[1]), RejectReason.FLOW_NOT_ALLOWED
        if fate == "inflate":
            side = 0 if meter.import_limit_w else 1
            limit = (meter.import_limit_w, meter.export_limit_w)[side]
            elapsed = (honest.interval + 1 - meter.next_interval) * self.interval
            bogus = [*indices]
            bogus[side] += limit * elapsed // 3600 + 1
            return ModelReading(honest.meter_id, honest.interval, bogus[0], bogus[1]), RejectReason.ABOVE_METER_LIMIT
        return None

    def close(self, t: int, lag: bool) -> None:
        """Finalize t, then settle all but, with `lag`, the last interval.

        t closes at once when every meter due reported it (a meter removed meanwhile no longer counts,
        reported or not), after its grace period otherwise.
        """
        loop = self.loop
        if self.draw(st.booleans(), label="remove first"):
            self.remove(self.just_after(t))
        due = {m for m in self.active() if loop.meter(m).active_from <= t}
        early = attempt(lambda: loop.finalize(t, self.just_after(t)))
        if all(loop.meter(m).next_interval == t + 1 for m in due):
            assert early is None
        else:
            assert early is not None
            assert early.name == "IntervalStillOpen"
            loop.finalize(t, self.after_grace(t))
        while self.loop.settled_through < t - (1 if lag else 0):
            self.settle()
        self.check_energy()

    def withdraw_all(self, account: str, balance: int) -> None:
        self.withdrawn += balance
        self.booked(lambda: self.loop.withdraw(account, balance), only=account, withdrawal=balance)

    def finish(self) -> None:
        """Settle everything, pay what repaid debts allow, and let every member take its balance out."""
        while self.loop.settled_through < self.loop.finalized_through:
            self.settle()
        self.check_energy()
        ledger = self.loop.ledger
        for _ in range(20):  # each call pays something while there is money and a claim
            if not (ledger.recovered and ledger.claims()):
                break
            assert self.booked(lambda: ledger.pay_receivables(len(ledger.claims()) + 1)) > 0
        if ledger.recovered and ledger.claims():
            # Only a holder that owes too keeps both: what it is paid repays its own debt, back into
            # `recovered`, one claim step at a time.
            assert self.loop.account(ledger.claims()[0][0]).debt > 0
        for account, held in ledger.accounts().items():
            if held.balance > 0:
                self.withdraw_all(account, held.balance)
        assert ledger.held == ledger.recovered


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_random_loops_stay_solvent_conserve_energy_and_respect_limits(data: st.DataObject) -> None:
    run = Run(data)
    for _ in range(data.draw(st.integers(1, 4), label="meters")):
        run.add(GENESIS - run.interval)
    for t in range(data.draw(st.integers(1, 7), label="intervals")):
        run.act(t)
        run.consume(t)
        run.report(t)
        run.close(t, lag=data.draw(st.booleans(), label="lag"))
    run.finish()


def test_the_widths_hold_a_century_of_the_widest_readings() -> None:
    one_day_share = MAX_LIMIT_W * 86_400 // 3600
    century_wh = MAX_LIMIT_W * 100 * 366 * 86_400 // 3600

    assert one_day_share < 2**SHARE_BITS <= 2**48  # a meter's share of one interval
    assert MAX_METERS * one_day_share < 2**64  # an interval's totals
    assert (2**16 - 1) * MAX_METERS * one_day_share < 2**128  # weighted consumption
    assert one_day_share * MAX_PRICE_PER_WH < 2**MONEY_BITS <= UINT96_MAX  # one claim
    assert century_wh < 2**44  # a meter's energy in a century
    assert MAX_METERS * century_wh * MAX_PRICE_PER_WH < 2**128  # an account's debt with every meter


def test_settling_the_widest_readings_at_the_highest_price_never_fails() -> None:
    day = 86_400
    price = MAX_PRICE_PER_WH
    loop = LoopModel(GENESIS, day, 60, AllocationKey.PRORATA, price, TREASURY, price_cap_per_wh=price)
    most = MAX_LIMIT_W * day // 3600
    for n in range(1, 5):
        loop.add_meter(
            mid(n),
            signer(n),
            payout(n),
            MeterKind.PROSUMER,
            import_limit_w=MAX_LIMIT_W,
            export_limit_w=MAX_LIMIT_W,
            now=GENESIS,
            import_wh=2**63,
            export_wh=2**63,
        )
    loop.deposit(payout(1), 2**100)
    for t in range(4):
        # meter 1 imports its most, 2 exports its most, 3 both; 4 is away until the last interval
        indices = {1: (most, 0), 2: (0, most), 3: (most, most)} | ({4: (4 * most, 4 * most)} if t == 3 else {})
        readings = []
        for n, (consumed, produced) in indices.items():
            meter = loop.meter(mid(n))
            readings.append(ModelReading(mid(n), t, meter.import_wh + consumed, meter.export_wh + produced))
        assert loop.submit(readings, GENESIS + (t + 1) * day) == [None] * len(readings)
        loop.finalize(t, GENESIS + (t + 1) * day + 60)
        result = loop.settle_next()
        check_settled(loop, result)
        check_books(loop, 2**100, 0)

    assert loop.tokens(payout(4)) == Tokens(
        produced=4 * most, consumed=4 * most, self_consumed=result.members[2].allocated
    )


# --- late never pays more --------------------------------------------------------------------


@dataclass(frozen=True)
class LateCase:
    """A loop in which meter 9 (the subject) may withhold its readings of intervals prefix..last."""

    key: AllocationKey
    price: int
    role: MeterKind  # the subject's kind: producer or consumer
    others: tuple[tuple[MeterKind, int, int], ...]  # kind, share, weight
    subject: tuple[int, int, int]  # position among the others, share, weight
    prefix: tuple[int, ...]  # the subject's energy in the intervals it reports on time
    withheld: int  # its energy over the intervals it covers late
    covered: int  # how many intervals the late reading covers
    energies: tuple[tuple[tuple[int, int], ...], ...]  # per interval, per other meter
    deposits: tuple[int, ...]


@st.composite
def late_cases(draw: st.DrawFn) -> LateCase:
    role = draw(st.sampled_from([MeterKind.PRODUCER, MeterKind.CONSUMER]))
    kinds = draw(st.lists(st.sampled_from(MeterKind), min_size=1, max_size=4))
    shares = draw(st.lists(st.integers(0, SHARE_DENOMINATOR // 5), min_size=len(kinds) + 1, max_size=len(kinds) + 1))
    weights = draw(st.lists(st.integers(0, 5), min_size=len(kinds) + 1, max_size=len(kinds) + 1))
    covered = draw(st.integers(2, 4))
    prefix_length = draw(st.integers(0, 2))
    limit = household_limits(role)[0 if role is MeterKind.CONSUMER else 1]
    most = limit * 900 // 3600

    def flows(kind: MeterKind) -> st.SearchStrategy[tuple[int, int]]:
        imports, exports = (w * 900 // 3600 for w in household_limits(kind))
        return st.tuples(st.integers(0, imports) | st.just(imports), st.integers(0, exports) | st.just(exports))

    energies = tuple(tuple(draw(flows(kind)) for kind in kinds) for _ in range(prefix_length + covered))
    return LateCase(
        key=draw(st.sampled_from(AllocationKey)),
        price=draw(st.integers(0, 1000)),
        role=role,
        others=tuple(zip(kinds, shares[1:], weights[1:], strict=True)),
        subject=(draw(st.integers(0, len(kinds))), shares[0], weights[0]),
        prefix=tuple(draw(st.lists(st.integers(0, most), min_size=prefix_length, max_size=prefix_length))),
        withheld=draw(st.integers(0, covered * most) | st.just(covered * most)),
        covered=covered,
        energies=energies,
        deposits=tuple(draw(st.lists(st.integers(0, 10**6), min_size=len(kinds) + 1, max_size=len(kinds) + 1))),
    )


SUBJECT = 9


def play(case: LateCase, *, late: bool) -> tuple[LoopModel, list[IntervalResult]]:
    """Run the case with the subject reporting late, or its withheld energy evenly on time instead."""
    loop = LoopModel(GENESIS, 900, 300, case.key, case.price, TREASURY, price_cap_per_wh=max(case.price, 1))
    position, share, weight = case.subject
    members = [(n, kind, s, w) for n, (kind, s, w) in enumerate(case.others, start=1)]
    members.insert(position, (SUBJECT, case.role, share, weight))
    for n, kind, s, w in members:
        add(loop, n, kind, share=s, weight=w, import_wh=1000 * n, export_wh=100 * n)
    for (n, *_), amount in zip(members, case.deposits, strict=True):
        if amount:
            loop.deposit(payout(n), amount)
    flow = 0 if case.role is MeterKind.CONSUMER else 1
    # evenly, the remainder in the earlier intervals: the last one has withheld // covered, as the late reading
    even = [case.withheld // case.covered + (1 if i < case.withheld % case.covered else 0) for i in range(case.covered)]
    mine = [*case.prefix, *(([0] * (case.covered - 1) + [case.withheld]) if late else even)]
    results = []
    last = len(case.energies) - 1
    for t, step in enumerate(case.energies):
        deltas = dict(enumerate(step, start=1))
        if t < len(case.prefix) or not late or t == last:
            deltas[SUBJECT] = (mine[t], 0) if flow == 0 else (0, mine[t])
        assert feed(loop, t, deltas) == [None] * len(deltas)
        results.append(close(loop, t))
    return loop, results


def energy_of(result: IntervalResult) -> list[tuple[bytes, int, int, int, int, int]]:
    return [(m.meter_id, m.consumed, m.produced, m.allocated, m.sold, m.amount) for m in result.members]


def subject_in(result: IntervalResult) -> tuple[int, int]:
    """The subject's (allocated, sold) Wh in `result`."""
    for m in result.members:
        if m.meter_id == mid(SUBJECT):
            return m.allocated, m.sold
    return 0, 0


@settings(max_examples=150, deadline=None)
@given(case=late_cases())
def test_late_never_pays_more_than_the_same_energy_reported_evenly_on_time(case: LateCase) -> None:
    late_loop, late = play(case, late=True)
    even_loop, even = play(case, late=False)
    flow = 0 if case.role is MeterKind.CONSUMER else 1  # allocated for a consumer, sold for a producer
    covered = range(len(case.prefix), len(case.energies))

    # In the interval it reports, the late reading gives exactly what the even one gives there, to everyone.
    assert energy_of(late[-1]) == energy_of(even[-1])
    # Over all the intervals it covers, it never gets more.
    assert sum(subject_in(late[t])[flow] for t in covered) <= sum(subject_in(even[t])[flow] for t in covered)
    assert all(subject_in(late[t]) == (0, 0) for t in covered[:-1])
    # Every Wh is booked either way; late, less of it as local energy.
    late_tokens, even_tokens = late_loop.tokens(payout(SUBJECT)), even_loop.tokens(payout(SUBJECT))
    assert (late_tokens.consumed, late_tokens.produced) == (even_tokens.consumed, even_tokens.produced)
    assert late_tokens.self_consumed <= even_tokens.self_consumed
    if case.role is MeterKind.PRODUCER:  # and never earns more
        assert late_loop.account(payout(SUBJECT)).net <= even_loop.account(payout(SUBJECT)).net
