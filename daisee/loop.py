"""Client for a deployed EnergyLoop: registry, terms, readings, finalization, settlement and balances."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode, encode
from eth_typing import ChecksumAddress, HexAddress, HexStr
from eth_utils import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract
from web3.logs import DISCARD
from web3.types import EventData, TxReceipt

from daisee.chain.artifacts import load_artifact
from daisee.chain.deploy import LOOP_CONTRACT
from daisee.chain.logs import event_topic
from daisee.chain.transact import EncodedCall, Sender
from daisee.domain import AllocationKey, MeterKind, RejectReason
from daisee.errors import DaiseeError
from daisee.model.state import Terms
from daisee.readings import LoopDomain, SignedReading

REGISTRATION_BATCH = 50  # meters admitted per transaction
READING_BATCH = 100  # signed readings per transaction
# A bound on submitReadings' gas (the contract tests hold it to it), so that a batch is not estimated but run
# once: a meter's costliest reading (its first, carrying energy back to an earlier interval) takes ~75k gas
# with its calldata, the batch ~55k more.
SUBMIT_GAS = 100_000
SUBMIT_GAS_PER_READING = 100_000
SETTLEMENT_STEPS = 200  # meter-sides settled per transaction
RECEIVABLE_CLAIMS = 50  # receivables paid per transaction
MAX_INTERVAL = 2**32 - 1  # intervals are uint32 on-chain


DEFAULT_IMPORT_LIMIT_W = 12_000  # a household's subscription when none is given: 12 kVA
DEFAULT_EXPORT_LIMIT_W = 9_000  # a household's PV peak when none is given: 9 kWc


def default_limits(kind: MeterKind) -> tuple[int, int]:
    """(import, export) limits in W for a household of `kind` when the PMO gives none."""
    return (
        0 if kind is MeterKind.PRODUCER else DEFAULT_IMPORT_LIMIT_W,
        0 if kind is MeterKind.CONSUMER else DEFAULT_EXPORT_LIMIT_W,
    )


@dataclass(frozen=True)
class MeterSpec:
    """A meter to admit, with its physical limits (W; None: a household's defaults for its kind)."""

    meter_id: bytes
    signer: str
    payout: str
    kind: MeterKind
    share: int = 0  # static key, basis points
    weight: int = 1  # weighted key
    import_wh: int = 0  # indices on the day it joins
    export_wh: int = 0
    import_limit_w: int | None = None  # subscribed power (kVA * 1000), 0 for a producer
    export_limit_w: int | None = None  # installed peak (kWc * 1000), 0 for a consumer

    def limits(self) -> tuple[int, int]:
        """(import, export) limits in W."""
        default_import, default_export = default_limits(self.kind)
        return (
            default_import if self.import_limit_w is None else self.import_limit_w,
            default_export if self.export_limit_w is None else self.export_limit_w,
        )

    def as_call_arg(self) -> tuple[object, ...]:
        import_limit, export_limit = self.limits()
        return (
            self.meter_id,
            self.signer,
            self.payout,
            int(self.kind),
            import_limit,
            export_limit,
            self.share,
            self.weight,
            self.import_wh,
            self.export_wh,
        )


@dataclass(frozen=True)
class MeterInfo:
    """A meter as the loop contract records it."""

    meter_id: bytes
    signer: ChecksumAddress
    payout: ChecksumAddress
    kind: MeterKind
    active: bool
    import_limit_w: int
    export_limit_w: int
    active_from: int
    share: int
    weight: int
    next_interval: int
    import_wh: int
    export_wh: int

    def as_json(self) -> dict[str, object]:
        return {
            "meter_id": "0x" + self.meter_id.hex(),
            "signer": self.signer,
            "payout": self.payout,
            "kind": self.kind.name.lower(),
            "active": self.active,
            "import_limit_w": self.import_limit_w,
            "export_limit_w": self.export_limit_w,
            "active_from": self.active_from,
        }


@dataclass(frozen=True)
class MeterChange:
    """A key change (and with `reset`, new indices) the PMO announced for a meter."""

    signer: ChecksumAddress
    effective_at: int
    reset: bool
    import_wh: int
    export_wh: int

    def as_json(self) -> dict[str, object]:
        return {
            "signer": self.signer,
            "effective_at": self.effective_at,
            "reset": self.reset,
            "import_wh": self.import_wh,
            "export_wh": self.export_wh,
        }


@dataclass(frozen=True)
class AccountBalance:
    """A member's money in the loop: what it may withdraw, what it owes, what it is owed."""

    balance: int
    debt: int
    receivable: int

    @property
    def net(self) -> int:
        return self.balance + self.receivable - self.debt

    def as_json(self) -> dict[str, int]:
        return {"balance": self.balance, "debt": self.debt, "receivable": self.receivable, "net": self.net}


@dataclass(frozen=True)
class LoopConfig:
    """The loop's calendar, ledger and current terms."""

    pmo: ChecksumAddress
    treasury: ChecksumAddress
    settlement_token: ChecksumAddress
    genesis: int
    interval_seconds: int
    grace_seconds: int
    notice_seconds: int
    price_cap_per_wh: int
    key: AllocationKey
    price_per_wh: int

    def first_noticed_interval(self, now: int) -> int:
        """The first interval a change announced at `now` may take effect from (the contract's rule)."""
        notice_end, first = now + self.notice_seconds, 0
        if notice_end > self.genesis:
            first = -(-(notice_end - self.genesis) // self.interval_seconds)
        if now >= self.genesis:
            first = max(first, (now - self.genesis) // self.interval_seconds + 1)
        return first

    def unprotected(self) -> list[str]:
        """The protections this loop's configuration leaves at zero, in words (empty on a safe loop)."""
        return unprotected(self.notice_seconds)


def unprotected(notice_seconds: int) -> list[str]:
    """The protections a loop of this notice period leaves at zero, in words (the contract bounds the others:
    a grace period of a minute at least, a price cap)."""
    if notice_seconds == 0:
        return ["notice period is 0: the PMO's new meters, key changes and terms take effect at once"]
    return []


@dataclass(frozen=True)
class SubmitResult:
    """What the loop did with one batch of readings."""

    receipt: TxReceipt
    accepted: list[tuple[bytes, int]]
    rejected: list[tuple[bytes, int, RejectReason]]


@dataclass
class MemberResult:
    """One meter's settled interval, read back from the settlement events."""

    consumed: int = 0
    allocated: int = 0
    cost: int = 0
    paid_cost: int = 0  # of `cost`, what the member's balance covered (the rest became its debt)
    produced: int = 0
    sold: int = 0
    revenue: int = 0
    paid_revenue: int = 0  # of `revenue`, what the consumers had paid (the rest became a receivable)


@dataclass(frozen=True)
class SettledSide:
    """One meter-side of an interval's settlement, as a `MetersSettled` record says it."""

    interval: int
    meter_id: bytes
    production: bool
    energy_wh: int  # consumed, or produced
    local_wh: int  # allocated from the loop, or sold in it
    value: int  # its cost, or its revenue
    paid: int  # from the member's balance (the rest became a debt), or to it (the rest became a receivable)


_WH_BITS = (1 << 48) - 1


@dataclass(frozen=True)
class SettledRecord:
    """One word of a `MetersSettled` event: a meter-side by the meter's index in the registry."""

    meter_index: int
    production: bool
    energy_wh: int
    local_wh: int
    paid: int


def settled_records(records: Iterable[int]) -> list[SettledRecord]:
    """The words of one `MetersSettled` event, in settlement order.

    Each is one word, from the lowest bits: meter index (16), side (8: 0 consumption, 1 production),
    energy Wh (48), local Wh (48), paid (136).
    """
    return [
        SettledRecord(
            meter_index=word & 0xFFFF,
            production=(word >> 16) & 0xFF == 1,
            energy_wh=(word >> 24) & _WH_BITS,
            local_wh=(word >> 72) & _WH_BITS,
            paid=word >> 120,
        )
        for word in records
    ]


def settled_sides(event: Mapping[str, Any], meter_id_at: Callable[[int], bytes]) -> list[SettledSide]:
    """The sides of one `MetersSettled` event, in settlement order; a side's cost, or revenue, is its local
    Wh times the event's price."""
    price = event["pricePerWh"]
    return [
        SettledSide(
            interval=event["interval"],
            meter_id=meter_id_at(r.meter_index),
            production=r.production,
            energy_wh=r.energy_wh,
            local_wh=r.local_wh,
            value=r.local_wh * price,
            paid=r.paid,
        )
        for r in settled_records(event["records"])
    ]


def tally(sides: Iterable[SettledSide]) -> dict[int, dict[bytes, MemberResult]]:
    """Per interval and meter, the result of its settled sides."""
    found: dict[int, dict[bytes, MemberResult]] = {}
    for side in sides:
        member = found.setdefault(side.interval, {}).setdefault(side.meter_id, MemberResult())
        if side.production:
            member.produced, member.sold, member.revenue, member.paid_revenue = (
                side.energy_wh, side.local_wh, side.value, side.paid
            )  # fmt: skip
        else:
            member.consumed, member.allocated, member.cost, member.paid_cost = (
                side.energy_wh, side.local_wh, side.value, side.paid
            )  # fmt: skip
    return found


@dataclass
class SettleResult:
    """The transactions that settled one interval."""

    interval: int
    receipts: list[TxReceipt] = field(default_factory=list)

    @property
    def gas_used(self) -> int:
        return sum(int(r["gasUsed"]) for r in self.receipts)


class Loop:
    """A deployed loop, driven by `sender` (the PMO for admin calls; anyone for the rest)."""

    def __init__(self, sender: Sender, address: str) -> None:
        self.sender = sender
        w3 = sender.chain.w3
        self.contract: Contract = w3.eth.contract(
            address=w3.to_checksum_address(address), abi=load_artifact(LOOP_CONTRACT)["abi"]
        )
        self.domain = LoopDomain(sender.chain.chain_id, self.contract.address)
        self._functions: dict[str, tuple[bytes, list[str], list[str]]] = {}
        self._meter_ids: list[bytes] = []  # the registry by index: it only ever grows

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    def as_sender(self, sender: Sender) -> Loop:
        """The same loop, driven by another account."""
        return Loop(sender, self.address)

    # ---------------------------------------------------------------- PMO

    def config(self) -> LoopConfig:
        f = self.contract.functions
        terms = f.termsAt(f.nextIntervalToSettle().call()).call()
        return LoopConfig(
            pmo=f.owner().call(),
            treasury=f.treasury().call(),
            settlement_token=f.settlementToken().call(),
            genesis=f.genesis().call(),
            interval_seconds=f.intervalSeconds().call(),
            grace_seconds=f.graceSeconds().call(),
            notice_seconds=f.noticeSeconds().call(),
            price_cap_per_wh=f.priceCapPerWh().call(),
            key=AllocationKey(terms[0]),
            price_per_wh=terms[1],
        )

    def add_meters(self, meters: Sequence[MeterSpec]) -> list[TxReceipt]:
        """Admit meters (PMO only), in batches of REGISTRATION_BATCH sent together."""
        calls = []
        for start in range(0, len(meters), REGISTRATION_BATCH):
            chunk = meters[start : start + REGISTRATION_BATCH]
            call = self.contract.functions.addMeters([m.as_call_arg() for m in chunk])
            what = f"adding meter 0x{chunk[0].meter_id.hex()}" if len(chunk) == 1 else f"adding {len(chunk)} meters"
            calls.append((call, what))
        return self.sender.transact_all(calls)

    def add_meter(self, meter_id: bytes, signer: str, payout: str, kind: MeterKind, **options: int) -> TxReceipt:
        """Admit one meter (PMO only); `options` are MeterSpec's share, weight, import_wh, export_wh."""
        w3 = self.sender.chain.w3
        spec = MeterSpec(meter_id, w3.to_checksum_address(signer), w3.to_checksum_address(payout), kind, **options)
        return self.add_meters([spec])[0]

    def remove_meter(self, meter_id: bytes) -> TxReceipt:
        """Remove a meter for good (PMO only)."""
        return self.sender.transact(self.contract.functions.removeMeter(meter_id), f"removing meter 0x{meter_id.hex()}")

    def rotate_signer(self, meter_id: bytes, new_signer: str) -> TxReceipt:
        """Announce a new gateway key for a meter, effective after the notice (PMO only)."""
        call = self.contract.functions.rotateSigner(meter_id, self.sender.chain.w3.to_checksum_address(new_signer))
        return self.sender.transact(call, f"rotating the signer of meter 0x{meter_id.hex()}")

    def repair_meter(self, meter_id: bytes, new_signer: str, import_wh: int, export_wh: int) -> TxReceipt:
        """Announce a repaired or swapped meter: a key and the indices it counts from (PMO only)."""
        signer = self.sender.chain.w3.to_checksum_address(new_signer)
        call = self.contract.functions.repairMeter(meter_id, signer, import_wh, export_wh)
        return self.sender.transact(call, f"repairing meter 0x{meter_id.hex()}")

    def cancel_meter_change(self, meter_id: bytes) -> TxReceipt:
        """Withdraw an announced meter change (PMO only)."""
        call = self.contract.functions.cancelMeterChange(meter_id)
        return self.sender.transact(call, f"cancelling the change of meter 0x{meter_id.hex()}")

    def confirm_meter_change(self, meter_id: bytes, expected: MeterChange | None = None) -> TxReceipt:
        """Agree, as the meter's payout account, to its announced change: it takes effect now.

        The confirmation names the change (`expected`, by default the one announced now), so a change
        the PMO announced in its place meanwhile is refused (`MeterChangeMismatch`), not confirmed.
        """
        change = expected or self.meter_change(meter_id) or _NO_CHANGE
        call = self.contract.functions.confirmMeterChange(
            meter_id, change.signer, change.reset, change.import_wh, change.export_wh
        )
        return self.sender.transact(call, f"confirming the change of meter 0x{meter_id.hex()}")

    def apply_meter_change(self, meter_id: bytes) -> TxReceipt:
        """Put an announced change into effect once its notice has passed (anyone)."""
        call = self.contract.functions.applyMeterChange(meter_id)
        return self.sender.transact(call, f"applying the change of meter 0x{meter_id.hex()}", repeatable=True)

    def meter_change(self, meter_id: bytes) -> MeterChange | None:
        """The change announced for a meter, if any."""
        c = self.contract.functions.meterChange(meter_id).call()
        if int(c[0], 16) == 0:
            return None
        return MeterChange(c[0], c[1], c[2], c[3], c[4])

    def transfer_pmo(self, new_pmo: str) -> TxReceipt:
        """Offer the PMO role to `new_pmo`; it moves when they accept (PMO only)."""
        call = self.contract.functions.transferOwnership(self.sender.chain.w3.to_checksum_address(new_pmo))
        return self.sender.transact(call, f"offering the PMO role to {new_pmo}")

    def accept_pmo(self) -> TxReceipt:
        """Take the PMO role offered to the sender."""
        return self.sender.transact(self.contract.functions.acceptOwnership(), "accepting the PMO role")

    def pmo(self) -> ChecksumAddress:
        """The loop's organiser (the contract's owner)."""
        owner: ChecksumAddress = self.contract.functions.owner().call()
        return owner

    def pending_pmo(self) -> ChecksumAddress | None:
        pending: ChecksumAddress = self.contract.functions.pendingOwner().call()
        return None if int(pending, 16) == 0 else pending

    def paused(self) -> bool:
        return bool(self.contract.functions.paused().call())

    def schedule_terms(self, key: AllocationKey, price_per_wh: int, from_interval: int) -> TxReceipt:
        """Set key and price for intervals from `from_interval` on (PMO only)."""
        call = self.contract.functions.scheduleTerms(int(key), price_per_wh, from_interval)
        return self.sender.transact(call, f"scheduling terms from interval {from_interval}")

    def terms_at(self, interval: int) -> Terms:
        """The terms that settle `interval` (as scheduled so far)."""
        key, price, from_interval, epoch = self.contract.functions.termsAt(interval).call()
        return Terms(AllocationKey(key), int(price), int(from_interval), int(epoch))

    def scheduled_terms(self) -> Terms | None:
        """The terms scheduled after those that settle the next interval to settle, if any."""
        settling = self.terms_at(self.next_to_settle())
        last = self.terms_at(MAX_INTERVAL)
        return None if last.epoch == settling.epoch else last

    def set_coefficients(self, coefficients: dict[bytes, tuple[int, int]]) -> TxReceipt:
        """Set meters' (share, weight) for the scheduled terms (PMO only)."""
        ids = list(coefficients)
        call = self.contract.functions.setCoefficients(
            ids, [coefficients[i][0] for i in ids], [coefficients[i][1] for i in ids]
        )
        return self.sender.transact(call, f"setting the coefficients of {len(ids)} meters")

    def pause_readings(self) -> TxReceipt:
        return self.sender.transact(self.contract.functions.pauseReadings(), "pausing readings")

    def unpause_readings(self) -> TxReceipt:
        return self.sender.transact(self.contract.functions.unpauseReadings(), "resuming readings")

    # ---------------------------------------------------------------- readings

    def submit(self, readings: Sequence[SignedReading]) -> SubmitResult:
        """Send one batch of signed readings; reports which were accepted and why others were not."""
        return self._submitted(self.sender.transact(*self._submission(readings), repeatable=True))

    def submit_all(self, readings: Sequence[SignedReading], batch_size: int = READING_BATCH) -> list[SubmitResult]:
        """Send readings in batches of `batch_size`, all in flight at once."""
        batches = [readings[i : i + batch_size] for i in range(0, len(readings), batch_size)]
        calls = [self._submission(b) for b in batches]
        return [self._submitted(r) for r in self.sender.transact_all(calls, repeatable=True)]

    def _submission(self, readings: Sequence[SignedReading]) -> tuple[EncodedCall, str]:
        data = self._calldata("submitReadings", [r.as_call_arg() for r in readings])
        gas = SUBMIT_GAS + SUBMIT_GAS_PER_READING * len(readings)
        call = EncodedCall(self.sender.chain.w3, self.contract.address, data, gas)
        return call, f"submitting {len(readings)} readings"

    def _submitted(self, receipt: TxReceipt) -> SubmitResult:
        """The batch's ReadingAccepted and ReadingRejected events, read from their topics (a batch has
        hundreds: web3's decoding of each would cost more than the rest of the batch)."""
        events = self.contract.events
        accepted_topic, rejected_topic = event_topic(events.ReadingAccepted), event_topic(events.ReadingRejected)
        accepted, rejected = [], []
        for log in receipt["logs"]:
            topics = [bytes(topic) for topic in log["topics"]]
            if log["address"] != self.address or len(topics) != 3:
                continue
            meter_id, interval = topics[1], int.from_bytes(topics[2], "big")
            if topics[0] == accepted_topic:
                accepted.append((meter_id, interval))
            elif topics[0] == rejected_topic:
                rejected.append((meter_id, interval, RejectReason(int.from_bytes(bytes(log["data"])[:32], "big"))))
        return SubmitResult(receipt, accepted, rejected)

    # ---------------------------------------------------------------- intervals

    def finalize(self, interval: int) -> TxReceipt:
        """Close `interval` (anyone, once every meter reported or the grace period passed)."""
        call = self.contract.functions.finalize(interval)
        return self.sender.transact(call, f"finalizing interval {interval}", repeatable=True)

    def settle(self, max_steps: int = SETTLEMENT_STEPS) -> SettleResult:
        """Settle the next finalized interval completely, `max_steps` meter-sides per transaction."""
        interval = self.contract.functions.nextIntervalToSettle().call()
        result = SettleResult(interval)
        while True:
            call = self.contract.functions.settle(max_steps)
            receipt = self.sender.transact(call, f"settling interval {interval}", repeatable=True)
            result.receipts.append(receipt)
            if self.events("IntervalSettled", receipt):
                return result

    def next_to_finalize(self) -> int:
        return int(self._view("nextIntervalToFinalize")[0])

    def next_to_settle(self) -> int:
        return int(self._view("nextIntervalToSettle")[0])

    def current_interval(self) -> int:
        return int(self._view("currentInterval")[0])

    def _view(self, name: str, *args: Any) -> tuple[Any, ...]:
        """The outputs of view function `name`, decoded with eth_abi: for the reads a relay makes per meter and
        per batch. Addresses come back in lower case, bytesN as bytes."""
        answer = self.sender.chain.w3.eth.call({"to": self.contract.address, "data": self._calldata(name, *args)})
        return tuple(decode(self._abi_types(name)[2], answer))

    def _calldata(self, name: str, *args: Any) -> HexBytes:
        """The call of function `name` with `args`, encoded with eth_abi: web3's ContractFunction validates the
        whole ABI and runs its formatters on each call, ~20x the cost of the encoding."""
        selector, inputs, _ = self._abi_types(name)
        return HexBytes(selector + encode(inputs, list(args)))

    def _abi_types(self, name: str) -> tuple[bytes, list[str], list[str]]:
        """Function `name`'s selector, input types and output types (looked up once)."""
        if name not in self._functions:
            function = self.contract.get_function_by_name(name).abi
            self._functions[name] = (
                function_abi_to_4byte_selector(function),
                get_abi_input_types(function),
                get_abi_output_types(function),
            )
        return self._functions[name]

    def settled_sides(self, receipts: Iterable[TxReceipt]) -> list[SettledSide]:
        """The meter-sides that `receipts` settled, in settlement order."""
        return [
            side
            for receipt in receipts
            for e in self.events("MetersSettled", receipt)
            for side in settled_sides(e["args"], self.meter_id_at)
        ]

    def results(self, receipts: Iterable[TxReceipt]) -> dict[int, dict[bytes, MemberResult]]:
        """Per interval and meter, what the settlement events in `receipts` say."""
        return tally(self.settled_sides(receipts))

    # ---------------------------------------------------------------- reads

    def events(self, name: str, receipt: TxReceipt) -> tuple[EventData, ...]:
        """The loop's `name` events in `receipt` (other contracts' logs are skipped)."""
        return tuple(getattr(self.contract.events, name)().process_receipt(receipt, errors=DISCARD))

    def meter(self, meter_id: bytes) -> MeterInfo:
        (m,) = self._view("meter", meter_id)
        return MeterInfo(
            meter_id=meter_id,
            signer=to_checksum_address(m[0]),
            payout=to_checksum_address(m[1]),
            kind=MeterKind(m[2]),
            active=m[3],
            import_limit_w=m[4],
            export_limit_w=m[5],
            active_from=m[6],
            share=m[7],
            weight=m[8],
            next_interval=m[12],
            import_wh=m[13],
            export_wh=m[14],
        )

    def meter_ids(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The ids of the meters registered `start`-th to before `stop`-th (all by default), removed ones too."""
        count = int(self._view("meterCount")[0])
        return [bytes(self._view("meterIdAt", i)[0]) for i in range(start, count if stop is None else min(stop, count))]

    def meter_id_at(self, index: int) -> bytes:
        """The id of the `index`-th registered meter (cached: an index never changes meter)."""
        if index >= len(self._meter_ids):
            self._meter_ids.extend(self.meter_ids(len(self._meter_ids)))
        if index >= len(self._meter_ids):
            raise DaiseeError(f"the loop has no meter number {index}: is the RPC node synced with the loop?")
        return self._meter_ids[index]

    def meters(self, *, include_removed: bool = False) -> list[MeterInfo]:
        """Every registered meter in registration order; removed ones only if asked."""
        found = [self.meter(meter_id) for meter_id in self.meter_ids()]
        return [m for m in found if m.active or include_removed]

    def tokens(self, account: str) -> tuple[int, int, int]:
        """`account`'s energy tokens: (produced, consumed, self-consumed) Wh."""
        f = self.contract.functions
        produced, consumed, self_consumed = f.balanceOfBatch([account] * 3, [0, 1, 2]).call()
        return int(produced), int(consumed), int(self_consumed)

    def ledger_balance(self, account: str) -> int:
        """`account`'s net position: balance + receivable - debt."""
        return int(self.contract.functions.ledgerBalance(account).call())

    def account(self, account: str) -> AccountBalance:
        """`account`'s balance, debt and receivable."""
        balance, debt, receivable = self.contract.functions.accountBalance(account).call()
        return AccountBalance(int(balance), int(debt), int(receivable))

    def receivables_queue(self) -> tuple[int, int]:
        """(repaid debts waiting to be paid out, receivables outstanding)."""
        recovered, claims = self.contract.functions.receivablesQueue().call()
        return int(recovered), int(claims)

    def receivable_due(self) -> int:
        """How much of the oldest receivable `pay_receivables` would settle now (0: nothing to do)."""
        return int(self.contract.functions.receivableDue().call())

    # ---------------------------------------------------------------- money

    def deposit(self, amount: int, account: str | None = None) -> TxReceipt:
        """Move `amount` settlement tokens into the sender's account, or `account`'s (approving them first)."""
        token = self.settlement_token()
        if token is None:
            raise DaiseeError("this loop has no settlement token (a credits-only ledger): nothing to deposit")
        f = self.contract.functions
        call = (
            f.deposit(amount)
            if account is None
            else f.depositFor(self.sender.chain.w3.to_checksum_address(account), amount)
        )
        # One after the other: the deposit's gas estimate needs the approval mined (a chain that mines on
        # sending hides this; one with block times does not).
        self.sender.transact(token.functions.approve(self.address, amount), "approving the deposit")
        return self.sender.transact(call, f"depositing {amount} units")

    def withdraw(self, amount: int) -> TxReceipt:
        """Take `amount` of the sender's balance out in settlement tokens."""
        return self.sender.transact(self.contract.functions.withdraw(amount), f"withdrawing {amount} units")

    def pay_receivables(self, max_claims: int = RECEIVABLE_CLAIMS) -> TxReceipt:
        """Pay receivables from repaid debts, oldest first (anyone)."""
        call = self.contract.functions.payReceivables(max_claims)
        return self.sender.transact(call, "paying receivables", repeatable=True)

    def settlement_token(self) -> Contract | None:
        """The loop's ERC-20, or None for a credits-only ledger."""
        address = self.contract.functions.settlementToken().call()
        if int(address, 16) == 0:
            return None
        return self.sender.chain.w3.eth.contract(address=address, abi=load_artifact("EuroToken")["abi"])


# what a confirmation names when no change is announced: the contract answers NoMeterChange
_NO_CHANGE = MeterChange(ChecksumAddress(HexAddress(HexStr("0x" + "00" * 20))), 0, False, 0, 0)


def tx_hash(receipt: TxReceipt) -> str:
    return HexBytes(receipt["transactionHash"]).to_0x_hex()
