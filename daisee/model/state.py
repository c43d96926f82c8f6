"""Pure-Python reference of a loop's state machine: registry, terms, readings, finalization, settlement.

`EnergyLoop` on chain must behave exactly like `LoopModel`. Reverts are `ModelRevert`s named after the
contract's custom errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from daisee.domain import MAX_DELTA_WH, SETTLEMENT_LAG, SHARE_DENOMINATOR, AllocationKey, MeterKind, RejectReason
from daisee.model.allocation import IntervalResult, MemberEnergy, allocate

ZERO_ADDRESS = "0x" + "0" * 40
ZERO_METER_ID = bytes(32)


class ModelRevert(Exception):  # noqa: N818 - mirrors a revert, not a Python error
    """What the contract would revert with: the custom error's name and its arguments (`.args`)."""

    def __init__(self, name: str, *args: object) -> None:
        super().__init__(*args)
        self.name = name

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"


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
    share: int
    weight: int
    next_share: int
    next_weight: int
    next_epoch: int
    import_wh: int
    export_wh: int
    next_interval: int

    def coefficients(self, epoch: int) -> tuple[int, int]:
        """`(share, weight)` under terms epoch `epoch`."""
        if self.next_epoch != 0 and self.next_epoch <= epoch:
            return self.next_share, self.next_weight
        return self.share, self.weight


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
    ) -> None:
        self.genesis = genesis
        self.interval_seconds = interval_seconds
        self.grace_seconds = grace_seconds
        self.treasury = treasury
        self.current_terms = Terms(key, price_per_wh, 0, 0)
        self.next_terms: Terms | None = None
        self.shares_current = 0
        self.shares_next = 0
        self.finalized_through = -1
        self.settled_through = -1
        self.active_count = 0
        self.paused = False
        self._meters: dict[bytes, MeterState] = {}
        self._pending: dict[bytes, dict[int, tuple[int, int]]] = {}
        self._totals: dict[int, IntervalTotals] = {}
        self._tokens: dict[str, Tokens] = {}
        self._balances: dict[str, int] = {treasury: 0}

    # --- calendar and terms

    def current_interval(self, now: int) -> int:
        """The interval containing `now`; -1 before genesis."""
        return -1 if now < self.genesis else (now - self.genesis) // self.interval_seconds

    def interval_end(self, interval: int) -> int:
        """The first second after `interval`."""
        return self.genesis + (interval + 1) * self.interval_seconds

    def terms_at(self, interval: int) -> Terms:
        """The terms that settle `interval`."""
        upcoming = self.next_terms
        return upcoming if upcoming is not None and interval >= upcoming.from_interval else self.current_terms

    def coefficients(self, meter_id: bytes, interval: int) -> tuple[int, int]:
        """`(share, weight)` of a meter for `interval`."""
        return self.meter(meter_id).coefficients(self.terms_at(interval).epoch)

    def schedule_terms(self, key: AllocationKey, price_per_wh: int, from_interval: int, now: int) -> None:
        """Set the terms from `from_interval` on; replaces pending ones, or promotes ones in force."""
        current = self.current_interval(now)
        if from_interval <= current:
            raise ModelRevert("InvalidEffectiveInterval", from_interval, current)
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
        if upcoming is None or upcoming.from_interval <= self.current_interval(now):
            raise ModelRevert("NoPendingTerms")
        meters = dict(self._meters)
        total = self.shares_next
        for meter_id, share, weight in zip(meter_ids, shares, weights, strict=True):
            meter = meters.get(meter_id)
            if meter is None:
                raise ModelRevert("UnknownMeter", meter_id)
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
        share: int = 0,
        weight: int = 0,
        import_wh: int = 0,
        export_wh: int = 0,
    ) -> None:
        """Admit a meter with its coefficients and its indices at registration."""
        if meter_id == ZERO_METER_ID:
            raise ModelRevert("InvalidMeterId")
        for account in (signer, payout):
            if account.lower() == ZERO_ADDRESS:
                raise ModelRevert("InvalidMeterAccount", account)
        if meter_id in self._meters:
            raise ModelRevert("MeterAlreadyRegistered", meter_id)
        if share > SHARE_DENOMINATOR:
            raise ModelRevert("InvalidShare", share)
        shares_current = self.shares_current + share
        shares_next = self.shares_next + share if self.next_terms is not None else self.shares_next
        for total in (shares_current, shares_next):
            if total > SHARE_DENOMINATOR:
                raise ModelRevert("SharesExceedTotal", total)
        self.shares_current, self.shares_next = shares_current, shares_next
        self._meters[meter_id] = MeterState(
            meter_id, signer, payout, kind, True, share, weight, 0, 0, 0, import_wh, export_wh, 0
        )
        self._pending[meter_id] = {}
        self.active_count += 1

    def remove_meter(self, meter_id: bytes) -> None:
        """Deactivate a meter for good; its shares stay counted."""
        meter = self._active(meter_id)
        self._meters[meter_id] = replace(meter, active=False)
        self.active_count -= 1

    def rotate_signer(self, meter_id: bytes, new_signer: str) -> None:
        """Give an active meter a new signing key."""
        meter = self._active(meter_id)
        if new_signer.lower() == ZERO_ADDRESS:
            raise ModelRevert("InvalidMeterAccount", new_signer)
        self._meters[meter_id] = replace(meter, signer=new_signer)

    def meter(self, meter_id: bytes) -> MeterState:
        """A registered meter's state."""
        meter = self._meters.get(meter_id)
        if meter is None:
            raise ModelRevert("UnknownMeter", meter_id)
        return meter

    def meter_ids(self) -> tuple[bytes, ...]:
        """Every registered meter id, in registration order."""
        return tuple(self._meters)

    def pending(self, meter_id: bytes) -> dict[int, tuple[int, int]]:
        """A meter's accepted, unsettled deltas: interval -> (consumed, produced)."""
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
        current = self.current_interval(now)
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
        if reading.import_wh - meter.import_wh > MAX_DELTA_WH or reading.export_wh - meter.export_wh > MAX_DELTA_WH:
            return RejectReason.INDEX_OVERFLOW
        return None

    def _accept(self, reading: ModelReading) -> None:
        meter = self._meters[reading.meter_id]
        consumed = reading.import_wh - meter.import_wh
        produced = reading.export_wh - meter.export_wh
        _, weight = meter.coefficients(self.terms_at(reading.interval).epoch)
        self._pending[meter.meter_id][reading.interval] = (consumed, produced)
        totals = self.totals(reading.interval)
        self._totals[reading.interval] = IntervalTotals(
            totals.consumed + consumed,
            totals.produced + produced,
            totals.reported + 1,
            totals.weighted_consumption + weight * consumed,
        )
        self._meters[meter.meter_id] = replace(
            meter, import_wh=reading.import_wh, export_wh=reading.export_wh, next_interval=reading.interval + 1
        )

    def totals(self, interval: int) -> IntervalTotals:
        """What the accepted readings of `interval` add up to."""
        return self._totals.get(interval, IntervalTotals())

    # --- finalization and settlement

    def finalize(self, interval: int, now: int) -> None:
        """Close the next interval once every active meter reported or its grace period ran out."""
        expected = self.finalized_through + 1
        if interval != expected:
            raise ModelRevert("IntervalNotNext", interval, expected)
        if interval >= self.current_interval(now):
            raise ModelRevert("IntervalNotOver", interval)
        everyone_reported = self.totals(interval).reported >= self.active_count
        if not everyone_reported and now < self.interval_end(interval) + self.grace_seconds:
            raise ModelRevert("IntervalStillOpen", interval)
        self.finalized_through = interval

    def settle_next(self) -> IntervalResult:
        """Allocate and book the first unsettled interval, which must be finalized."""
        interval = self.settled_through + 1
        if interval > self.finalized_through:
            raise ModelRevert("IntervalNotFinalized", interval)
        terms = self.terms_at(interval)
        meters = list(self._meters.values())
        members = [
            MemberEnergy(m.meter_id, *self._pending[m.meter_id].pop(interval, (0, 0)), *m.coefficients(terms.epoch))
            for m in meters
        ]
        result = allocate(terms.key, terms.price_per_wh, members, interval=interval)
        for meter, part in zip(meters, result.members, strict=True):
            if part.consumed > 0:
                self._mint(meter.payout, Tokens(0, part.consumed, part.allocated))
                self._book(meter.payout, -part.allocated * terms.price_per_wh)
            if part.produced > 0:
                self._mint(meter.payout, Tokens(part.produced, 0, 0))
                self._book(meter.payout, part.sold * terms.price_per_wh)
        self.settled_through = interval
        return result

    # --- ledger

    def deposit(self, account: str, amount: int) -> None:
        """Credit `account` with `amount` ledger units."""
        if amount == 0:
            raise ModelRevert("ZeroAmount")
        self._book(account, amount)

    def withdraw(self, account: str, amount: int) -> None:
        """Debit `account` by `amount` ledger units, at most its balance."""
        if amount == 0:
            raise ModelRevert("ZeroAmount")
        balance = self.balance(account)
        if balance < amount:
            raise ModelRevert("InsufficientBalance", account, balance, amount)
        self._book(account, -amount)

    def tokens(self, account: str) -> Tokens:
        """Energy tokens `account` holds."""
        return self._tokens.get(account, Tokens())

    def balance(self, account: str) -> int:
        """`account`'s ledger balance (negative: it owes)."""
        return self._balances.get(account, 0)

    def ledger(self) -> dict[str, int]:
        """Every account with a balance entry (the treasury always), in first-booking order."""
        return dict(self._balances)

    def _mint(self, account: str, tokens: Tokens) -> None:
        held = self.tokens(account)
        self._tokens[account] = Tokens(
            held.produced + tokens.produced, held.consumed + tokens.consumed, held.self_consumed + tokens.self_consumed
        )

    def _book(self, account: str, amount: int) -> None:
        self._balances[account] = self.balance(account) + amount
