"""Pure-Python reference of a loop's state machine: registry, terms, readings, finalization, settlement.

`EnergyLoop` on chain must behave exactly like `LoopModel`. Reverts are `ModelRevert`s named after the
contract's custom errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from daisee.domain import (
    MAX_LIMIT_W,
    MAX_METERS,
    SETTLEMENT_LAG,
    SHARE_DENOMINATOR,
    AllocationKey,
    MeterKind,
    RejectReason,
)
from daisee.model.allocation import IntervalResult, MemberEnergy, allocate
from daisee.model.errors import ModelRevert
from daisee.model.ledger import Account, LedgerModel

ZERO_ADDRESS = "0x" + "0" * 40
ZERO_METER_ID = bytes(32)


# --- allocation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """An allocation key and price, in force from `from_interval`; `epoch` numbers the successive terms."""

    key: AllocationKey
    price_per_wh: int
    from_interval: int
    epoch: int


@dataclass(frozen=True)
class MeterState:
    """A registered meter; `next_*` coefficients apply from terms epoch `next_epoch` (0: none set)."""

    meter_id: bytes
    signer: str
    payout: str
    kind: MeterKind
    active: bool
    import_limit_w: int
    export_limit_w: int
    active_from: int  # the first interval it may report
    share: int
    weight: int
    next_share: int
    next_weight: int
    next_epoch: int
    import_wh: int
    export_wh: int
    next_interval: int  # the lowest interval its next reading may name; its energy counts from there

    def coefficients(self, epoch: int) -> tuple[int, int]:
        """`(share, weight)` under terms epoch `epoch`."""
        if self.next_epoch != 0 and self.next_epoch <= epoch:
            return self.next_share, self.next_weight
        return self.share, self.weight


@dataclass(frozen=True)
class NewMeter:
    """A meter to admit: ids and keys, kind, limits (W), coefficients and indices today."""

    meter_id: bytes
    signer: str
    payout: str
    kind: MeterKind
    import_limit_w: int
    export_limit_w: int
    share: int = 0
    weight: int = 0
    import_wh: int = 0
    export_wh: int = 0


@dataclass(frozen=True)
class MeterChange:
    """A key change (with `reset`, new indices) announced for a meter, in effect from `effective_at`."""

    signer: str
    effective_at: int
    reset: bool
    import_wh: int
    export_wh: int


@dataclass(frozen=True)
class ModelReading:
    """A reading as submitted; `signature_ok` says whether it recovers to the meter's current signer."""

    meter_id: bytes
    interval: int
    import_wh: int
    export_wh: int
    signature_ok: bool = True


@dataclass(frozen=True)
class IntervalTotals:
    """What the accepted readings of one interval add up to."""

    consumed: int = 0
    produced: int = 0
    reported: int = 0
    weighted_consumption: int = 0


@dataclass(frozen=True)
class Tokens:
    """Energy tokens an account holds, in Wh."""

    produced: int = 0
    consumed: int = 0
    self_consumed: int = 0


MIN_GRACE_SECONDS = 60
MAX_PRICE_PER_WH = 2**56 - 1


class LoopModel:
    """The loop's state machine as the contract runs it; `now` is the block timestamp.

    Counters and terms are plain attributes: read them, change them only through the methods.
    """

    def __init__(
        self,
        genesis: int,
        interval_seconds: int,
        grace_seconds: int,
        key: AllocationKey,
        price_per_wh: int,
        treasury: str,
        *,
        notice_seconds: int = 0,
        price_cap_per_wh: int | None = None,
        with_token: bool = True,
    ) -> None:
        cap = (
            max(min(2 * price_per_wh, MAX_PRICE_PER_WH), price_per_wh, 1)
            if price_cap_per_wh is None
            else price_cap_per_wh
        )
        if grace_seconds < MIN_GRACE_SECONDS:
            raise ModelRevert("GraceTooShort", grace_seconds, MIN_GRACE_SECONDS)
        if cap > MAX_PRICE_PER_WH:
            raise ModelRevert("PriceAboveCap", cap, MAX_PRICE_PER_WH)
        if price_per_wh > cap:
            raise ModelRevert("PriceAboveCap", price_per_wh, cap)
        self.genesis = genesis
        self.interval_seconds = interval_seconds
        self.grace_seconds = grace_seconds
        self.notice_seconds = notice_seconds
        self.price_cap_per_wh = cap
        self.treasury = treasury
        self.current_terms = Terms(key, price_per_wh, 0, 0)
        self.next_terms: Terms | None = None
        self.shares_current = 0
        self.shares_next = 0
        self.finalized_through = -1
        self.settled_through = -1
        self.active_count = 0
        self.paused = False
        self.ledger = LedgerModel(with_token=with_token)
        self._meters: dict[bytes, MeterState] = {}
        self._consuming: list[bytes] = []  # settlement order of consumption
        self._producing: list[bytes] = []  # settlement order of production
        self._joining: dict[int, int] = {}  # interval -> meters whose admission takes effect then
        self._changes: dict[bytes, MeterChange] = {}
        self._pending: dict[bytes, dict[int, tuple[int, int]]] = {}
        self._totals: dict[int, IntervalTotals] = {}
        self._tokens: dict[str, Tokens] = {}

    # --- calendar and terms

    def current_interval(self, now: int) -> int:
        """The interval containing `now`; -1 before genesis."""
        return -1 if now < self.genesis else (now - self.genesis) // self.interval_seconds

    def interval_end(self, interval: int) -> int:
        """The first second after `interval`."""
        return self.genesis + (interval + 1) * self.interval_seconds

    def first_noticed_interval(self, now: int) -> int:
        """The first interval that starts at least the notice period after `now`, and after the current one."""
        notice_end = now + self.notice_seconds
        first = -(-(notice_end - self.genesis) // self.interval_seconds) if notice_end > self.genesis else 0
        return max(first, self.current_interval(now) + 1) if now >= self.genesis else first

    def terms_at(self, interval: int) -> Terms:
        """The terms that settle `interval`."""
        upcoming = self.next_terms
        return upcoming if upcoming is not None and interval >= upcoming.from_interval else self.current_terms

    def coefficients(self, meter_id: bytes, interval: int) -> tuple[int, int]:
        """`(share, weight)` of a meter for `interval`."""
        return self.meter(meter_id).coefficients(self.terms_at(interval).epoch)

    def schedule_terms(self, key: AllocationKey, price_per_wh: int, from_interval: int, now: int) -> None:
        """Set the terms from `from_interval` on, at least the notice ahead and at most the cap."""
        if price_per_wh > self.price_cap_per_wh:
            raise ModelRevert("PriceAboveCap", price_per_wh, self.price_cap_per_wh)
        earliest = self.first_noticed_interval(now)
        if from_interval < earliest:
            raise ModelRevert("InvalidEffectiveInterval", from_interval, earliest)
        current = self.current_interval(now)
        upcoming = self.next_terms
        if upcoming is not None and upcoming.from_interval > current:
            self.next_terms = Terms(key, price_per_wh, from_interval, upcoming.epoch)
            return
        if upcoming is not None:
            if upcoming.from_interval > self.settled_through + 1:
                raise ModelRevert("TermsChangePending", upcoming.from_interval)
            self.current_terms = upcoming
            self.shares_current = self.shares_next
        self.next_terms = Terms(key, price_per_wh, from_interval, self.current_terms.epoch + 1)
        self.shares_next = self.shares_current

    def set_coefficients(
        self, meter_ids: Sequence[bytes], shares: Sequence[int], weights: Sequence[int], now: int
    ) -> None:
        """Set meters' shares and weights for the pending terms; all or nothing."""
        if not len(meter_ids) == len(shares) == len(weights):
            raise ModelRevert("LengthMismatch")
        upcoming = self.next_terms
        if upcoming is None or upcoming.from_interval < self.first_noticed_interval(now):
            raise ModelRevert("NoPendingTerms")
        meters = dict(self._meters)
        total = self.shares_next
        for meter_id, share, weight in zip(meter_ids, shares, weights, strict=True):
            meter = meters.get(meter_id)
            if meter is None:
                raise ModelRevert("UnknownMeter", meter_id)
            if not meter.active:
                raise ModelRevert("MeterNotActive", meter_id)
            if share > SHARE_DENOMINATOR:
                raise ModelRevert("InvalidShare", share)
            if meter.next_epoch != 0 and meter.next_epoch < upcoming.epoch:
                meter = replace(meter, share=meter.next_share, weight=meter.next_weight)
            total += share - (meter.next_share if meter.next_epoch == upcoming.epoch else meter.share)
            meters[meter_id] = replace(meter, next_share=share, next_weight=weight, next_epoch=upcoming.epoch)
        if total > SHARE_DENOMINATOR:
            raise ModelRevert("SharesExceedTotal", total)
        self._meters = meters
        self.shares_next = total

    # --- meters

    def add_meter(
        self,
        meter_id: bytes,
        signer: str,
        payout: str,
        kind: MeterKind,
        *,
        import_limit_w: int,
        export_limit_w: int,
        now: int,
        share: int = 0,
        weight: int = 0,
        import_wh: int = 0,
        export_wh: int = 0,
    ) -> None:
        """Admit a meter with its limits, coefficients and indices today; it reports after the notice."""
        new = NewMeter(
            meter_id, signer, payout, kind, import_limit_w, export_limit_w, share, weight, import_wh, export_wh
        )
        self.add_meters([new], now)

    def add_meters(self, meters: Sequence[NewMeter], now: int) -> None:
        """Admit meters, all or nothing; they report after the notice."""
        admitted = max(self.current_interval(now), 0)
        active_from = admitted if self.notice_seconds == 0 else self.first_noticed_interval(now)
        known = set(self._meters)
        added = 0
        for m in meters:
            if m.meter_id == ZERO_METER_ID:
                raise ModelRevert("InvalidMeterId")
            for account in (m.signer, m.payout):
                if account.lower() == ZERO_ADDRESS:
                    raise ModelRevert("InvalidMeterAccount", account)
            if m.meter_id in known:
                raise ModelRevert("MeterAlreadyRegistered", m.meter_id)
            if m.share > SHARE_DENOMINATOR:
                raise ModelRevert("InvalidShare", m.share)
            if len(known) >= MAX_METERS:
                raise ModelRevert("TooManyMeters", MAX_METERS)
            imports, exports = m.kind is not MeterKind.PRODUCER, m.kind is not MeterKind.CONSUMER
            fits = max(m.import_limit_w, m.export_limit_w) <= MAX_LIMIT_W
            if not fits or (m.import_limit_w != 0) != imports or (m.export_limit_w != 0) != exports:
                raise ModelRevert("InvalidMeterLimits", m.kind, m.import_limit_w, m.export_limit_w)
            known.add(m.meter_id)
            added += m.share
        shares_current = self.shares_current + added
        shares_next = self.shares_next + added if self.next_terms is not None else self.shares_next
        for total in (shares_current, shares_next):
            if total > SHARE_DENOMINATOR:
                raise ModelRevert("SharesExceedTotal", total)
        self.shares_current, self.shares_next = shares_current, shares_next
        for m in meters:
            self._meters[m.meter_id] = MeterState(
                m.meter_id, m.signer, m.payout, m.kind, True, m.import_limit_w, m.export_limit_w, active_from,
                m.share, m.weight, 0, 0, 0, m.import_wh, m.export_wh, admitted,
            )  # fmt: skip
            if m.import_limit_w:
                self._consuming.append(m.meter_id)
            if m.export_limit_w:
                self._producing.append(m.meter_id)
            self._pending[m.meter_id] = {}
        self._joining[active_from] = self._joining.get(active_from, 0) + len(meters)

    def remove_meter(self, meter_id: bytes) -> None:
        """Remove a meter: it stops counting for finalization and in the shares; its energy still settles."""
        meter = self._active(meter_id)
        if meter.active_from <= self.finalized_through:
            self.active_count -= 1
        else:
            self._joining[meter.active_from] -= 1
        for interval in self._pending[meter_id]:
            totals = self._totals.get(interval)
            if interval > self.finalized_through and totals is not None and totals.reported:
                self._totals[interval] = replace(totals, reported=totals.reported - 1)
        self.shares_current -= meter.coefficients(self.current_terms.epoch)[0]
        if self.next_terms is not None:
            self.shares_next -= meter.coefficients(self.next_terms.epoch)[0]
        self._meters[meter_id] = replace(meter, active=False)
        self._changes.pop(meter_id, None)

    def schedule_change(
        self, meter_id: bytes, signer: str, now: int, *, reset: bool = False, import_wh: int = 0, export_wh: int = 0
    ) -> None:
        """Announce a new key (with `reset`, new indices); without a notice period it applies at once."""
        self._active(meter_id)
        if signer.lower() == ZERO_ADDRESS:
            raise ModelRevert("InvalidMeterAccount", signer)
        self._changes[meter_id] = MeterChange(signer, now + self.notice_seconds, reset, import_wh, export_wh)
        if self.notice_seconds == 0:
            self._apply_change(meter_id, now, confirmed=False)

    def cancel_change(self, meter_id: bytes) -> None:
        """Withdraw an announced change."""
        if self._changes.pop(meter_id, None) is None:
            raise ModelRevert("NoMeterChange", meter_id)

    def confirm_change(self, meter_id: bytes, caller: str, now: int) -> None:
        """The meter's payout account agrees: the change takes effect now."""
        meter = self._meters.get(meter_id)
        if meter is None or meter.payout.lower() != caller.lower():
            raise ModelRevert("NotMeterPayout", meter_id, caller)
        self._apply_change(meter_id, now, confirmed=True)

    def apply_change(self, meter_id: bytes, now: int) -> None:
        """Put a change into effect once its notice has passed (anyone)."""
        self._apply_change(meter_id, now, confirmed=False)

    def change(self, meter_id: bytes) -> MeterChange | None:
        return self._changes.get(meter_id)

    def _apply_change(self, meter_id: bytes, now: int, *, confirmed: bool) -> None:
        change = self._changes.get(meter_id)
        if change is None:
            raise ModelRevert("NoMeterChange", meter_id)
        if not confirmed and now < change.effective_at:
            raise ModelRevert("MeterChangeNotDue", meter_id, change.effective_at)
        meter = replace(self._meters[meter_id], signer=change.signer)
        if change.reset:
            meter = replace(meter, import_wh=change.import_wh, export_wh=change.export_wh)
        self._meters[meter_id] = meter
        del self._changes[meter_id]

    def meter(self, meter_id: bytes) -> MeterState:
        """A registered meter's state."""
        meter = self._meters.get(meter_id)
        if meter is None:
            raise ModelRevert("UnknownMeter", meter_id)
        return meter

    def meter_ids(self) -> tuple[bytes, ...]:
        """Every registered meter id, in registration order."""
        return tuple(self._meters)

    def settlement_order(self) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """The consuming and the producing meters, in the order the next settlement visits them."""
        return tuple(self._consuming), tuple(self._producing)

    def pending(self, meter_id: bytes) -> dict[int, tuple[int, int]]:
        """A meter's accepted, unsettled shares of energy: interval -> (consumed, produced)."""
        self.meter(meter_id)
        return dict(self._pending[meter_id])

    def _active(self, meter_id: bytes) -> MeterState:
        meter = self.meter(meter_id)
        if not meter.active:
            raise ModelRevert("MeterNotActive", meter_id)
        return meter

    # --- readings

    def pause(self) -> None:
        """Refuse readings until `unpause`."""
        self.paused = True

    def unpause(self) -> None:
        """Accept readings again."""
        self.paused = False

    def submit(self, readings: Sequence[ModelReading], now: int) -> list[RejectReason | None]:
        """Record a batch in order: per reading, None if accepted, else why it was skipped."""
        if not readings:
            raise ModelRevert("EmptyBatch")
        if self.paused:
            raise ModelRevert("ReadingsPaused")
        current = max(self.current_interval(now), 0)
        outcomes: list[RejectReason | None] = []
        for reading in readings:
            reason = self._rejection(reading, current)
            if reason is None:
                self._accept(reading)
            outcomes.append(reason)
        return outcomes

    def _rejection(self, reading: ModelReading, current: int) -> RejectReason | None:
        """The first check `reading` fails, in `RejectReason` order."""
        meter = self._meters.get(reading.meter_id)
        if meter is None:
            return RejectReason.UNKNOWN_METER
        if not reading.signature_ok:
            return RejectReason.BAD_SIGNATURE
        if not meter.active:
            return RejectReason.METER_INACTIVE
        if reading.interval < meter.active_from:
            return RejectReason.NOT_YET_ACTIVE
        if reading.interval < meter.next_interval:
            return RejectReason.STALE_INTERVAL
        if reading.interval >= current:
            return RejectReason.FUTURE_INTERVAL
        if reading.interval <= self.finalized_through:
            return RejectReason.INTERVAL_FINALIZED
        if reading.interval > self.settled_through + SETTLEMENT_LAG:
            return RejectReason.SETTLEMENT_BACKLOG
        if reading.import_wh < meter.import_wh or reading.export_wh < meter.export_wh:
            return RejectReason.INDEX_DECREASED
        consumed, produced = reading.import_wh - meter.import_wh, reading.export_wh - meter.export_wh
        if (consumed and not meter.import_limit_w) or (produced and not meter.export_limit_w):
            return RejectReason.FLOW_NOT_ALLOWED
        elapsed = (reading.interval + 1 - meter.next_interval) * self.interval_seconds
        if consumed * 3600 > meter.import_limit_w * elapsed or produced * 3600 > meter.export_limit_w * elapsed:
            return RejectReason.ABOVE_METER_LIMIT
        return None

    def _accept(self, reading: ModelReading) -> None:
        meter = self._meters[reading.meter_id]
        consumed = reading.import_wh - meter.import_wh
        produced = reading.export_wh - meter.export_wh
        covered = reading.interval + 1 - meter.next_interval
        consumed_share, produced_share = consumed // covered, produced // covered
        self._mint(meter.payout, Tokens(produced - produced_share, consumed - consumed_share, 0))
        terms = self.terms_at(reading.interval)
        # kept under the weighted key only, as on chain (`intervalTotals`)
        weight = meter.coefficients(terms.epoch)[1] if terms.key is AllocationKey.WEIGHTED else 0
        self._pending[meter.meter_id][reading.interval] = (consumed_share, produced_share)
        totals = self.totals(reading.interval)
        self._totals[reading.interval] = IntervalTotals(
            totals.consumed + consumed_share,
            totals.produced + produced_share,
            totals.reported + 1,
            totals.weighted_consumption + weight * consumed_share,
        )
        self._meters[meter.meter_id] = replace(
            meter, import_wh=reading.import_wh, export_wh=reading.export_wh, next_interval=reading.interval + 1
        )

    def totals(self, interval: int) -> IntervalTotals:
        """What the accepted readings of `interval` add up to (each meter's share of it)."""
        return self._totals.get(interval, IntervalTotals())

    # --- finalization and settlement

    def finalize(self, interval: int, now: int) -> None:
        """Close the next interval once every active meter reported or its grace period ran out."""
        expected = self.finalized_through + 1
        if interval != expected:
            raise ModelRevert("IntervalNotNext", interval, expected)
        if interval >= self.current_interval(now):
            raise ModelRevert("IntervalNotOver", interval)
        active = self.active_count + self._joining.get(interval, 0)
        reported = self.totals(interval).reported
        grace_end = self.interval_end(interval) + self.grace_seconds
        if reported < active and now < grace_end:
            raise ModelRevert("IntervalStillOpen", interval, reported, active, grace_end)
        self.active_count = active
        self._joining.pop(interval, None)
        self.finalized_through = interval

    def settle_next(self) -> IntervalResult:
        """Allocate and book the first unsettled interval, which must be finalized: consumers pay from
        their balances, producers share what was paid."""
        interval = self.settled_through + 1
        if interval > self.finalized_through:
            raise ModelRevert("IntervalNotFinalized", interval)
        terms = self.terms_at(interval)
        totals = self.totals(interval)
        # a removed meter's reading no longer counts as reported, but its energy still settles
        anyone = totals.reported != 0 or totals.consumed != 0 or totals.produced != 0
        consuming = self._visit(self._consuming, interval, anyone)
        producing = self._visit(self._producing, interval, anyone)
        consumers = [
            MemberEnergy(m, self._share(m, interval)[0], 0, *self.coefficients(m, interval)) for m in consuming
        ]
        producers = [MemberEnergy(m, 0, self._share(m, interval)[1]) for m in producing]
        result = allocate(terms.key, terms.price_per_wh, consumers, producers, interval=interval)
        by_meter = {part.meter_id: part for part in result.members}
        collected = 0
        for m in consumers:
            part = by_meter[m.meter_id]
            if part.consumed > 0:
                payout = self._meters[m.meter_id].payout
                self._mint(payout, Tokens(0, part.consumed, part.allocated))
                paid = self.ledger.charge(payout, part.allocated * terms.price_per_wh)
                by_meter[m.meter_id] = replace(part, paid_cost=paid)
                collected += paid
        sold_before = 0
        for m in producers:
            part = by_meter[m.meter_id]
            if part.produced > 0:
                payout = self._meters[m.meter_id].payout
                self._mint(payout, Tokens(part.produced, 0, 0))
                paid = _cumulative_part(sold_before, part.sold, collected, result.allocated)
                sold_before += part.sold
                self.ledger.earn(payout, part.sold * terms.price_per_wh, paid)
                by_meter[m.meter_id] = replace(by_meter[m.meter_id], paid_revenue=paid)
        for pending in self._pending.values():
            pending.pop(interval, None)
        self.settled_through = interval
        return replace(result, members=tuple(by_meter.values()))

    def _share(self, meter_id: bytes, interval: int) -> tuple[int, int]:
        return self._pending[meter_id].get(interval, (0, 0))

    def _visit(self, order: list[bytes], interval: int, anyone: bool) -> list[bytes]:
        """The meters a settlement pass visits in `order`, which loses the removed meters that have
        nothing left to settle after `interval` (the last one takes each one's place), as on chain."""
        visited: list[bytes] = []
        position = 0
        while anyone and position < len(order):
            meter = self._meters[order[position]]
            visited.append(meter.meter_id)
            if not meter.active and meter.next_interval <= interval + 1:
                order[position] = order[-1]
                order.pop()
            else:
                position += 1
        return visited

    # --- ledger

    def deposit(self, account: str, amount: int) -> None:
        """`account` brings `amount` tokens: its debt first, then its balance."""
        self.ledger.deposit(account, amount)

    def withdraw(self, account: str, amount: int) -> None:
        """`account` takes `amount` of its balance out."""
        self.ledger.withdraw(account, amount)

    def pay_receivables(self, max_claims: int) -> int:
        """Pay receivables from repaid debts, oldest first."""
        return self.ledger.pay_receivables(max_claims)

    def account(self, account: str) -> Account:
        """`account`'s balance, debt and receivable."""
        return self.ledger.account(account)

    def tokens(self, account: str) -> Tokens:
        """Energy tokens `account` holds."""
        return self._tokens.get(account, Tokens())

    def balance(self, account: str) -> int:
        """`account`'s net position: balance + receivable - debt (negative: it owes)."""
        return self.ledger.account(account).net

    def ledger_positions(self) -> dict[str, int]:
        """Every account's net position, in first-booking order."""
        return {address: account.net for address, account in self.ledger.accounts().items()}

    def _mint(self, account: str, tokens: Tokens) -> None:
        if tokens == Tokens():
            return
        held = self.tokens(account)
        self._tokens[account] = Tokens(
            held.produced + tokens.produced, held.consumed + tokens.consumed, held.self_consumed + tokens.self_consumed
        )


def _cumulative_part(before: int, part: int, pool: int, total: int) -> int:
    """`Allocation.cumulativeShare`: the part of `pool` for `part` out of `total`, after `before`."""
    if total == 0:
        return 0
    return (before + part) * pool // total - before * pool // total
