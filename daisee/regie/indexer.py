"""The régie's indexer: the loop's events into the store, block by confirmed block.

It reads the registry (meters admitted and removed), the terms, the settlements (each side into the sums,
unpaid sides apart), the ledger (deposits, withdrawals, repaid debts, paid receivables) and the consent
registry's grants and revocations, in spans of
blocks the node accepts, each span in one transaction with the block it reached: a restart resumes there
and counts nothing twice. It waits for the chain's confirmations, and keeps the hashes of the last blocks
it indexed: when the chain no longer has one, a reorganisation happened, and what the indexer wrote from
the blocks it undid is taken out before they are indexed again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from eth_utils import to_checksum_address
from hexbytes import HexBytes
from sqlalchemy import Connection, Engine, delete, select, update
from web3.types import EventData, LogReceipt

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import describe_error
from daisee.chain.deploy import CONSENT_CONTRACT
from daisee.chain.logs import event_topic, raw_logs
from daisee.errors import DaiseeError
from daisee.loop import Loop, settled_records
from daisee.regie import sums
from daisee.regie.calendar import LoopCalendar, zone
from daisee.regie.schema import blocks, consents, intervals, ledger, meta, meters, terms, unpaid

log = logging.getLogger("daisee.regie")
SPAN = 2_000  # blocks asked for at once (a node that refuses so many is asked for fewer)
REORG_DEPTH = 256  # blocks back a reorganisation is undone; the hashes and sides of older ones are forgotten
POLL_SECONDS = 5.0
MAX_BACKOFF = 300.0
LEDGER_ENTRIES = {
    "Deposited": "deposit",
    "Withdrawn": "withdrawal",
    "DebtRepaid": "debt_repaid",
    "ReceivablePaid": "receivable_paid",
}
WATCHED = ("TermsScheduled", "MeterAdded", "MeterRemoved", "MetersSettled", "EnergyCarried", *LEDGER_ENTRIES)
CONSENT_EVENTS = ("ConsentGranted", "ConsentRevoked")
_CONFIG = ("genesis", "interval_seconds", "grace_seconds", "notice_seconds", "price_cap_per_wh")


@dataclass(frozen=True)
class LoopFacts:
    """What the store says of its loop: the chain and contract it indexes, its calendar and bounds."""

    chain_id: int
    loop: str
    zone: str
    genesis: int
    interval_seconds: int
    grace_seconds: int
    notice_seconds: int
    price_cap_per_wh: int
    treasury: str
    settlement_token: str
    consent_registry: str | None = None

    @property
    def calendar(self) -> LoopCalendar:
        return LoopCalendar(self.genesis, self.interval_seconds, zone(self.zone))


def read_meta(db: Connection) -> dict[str, str]:
    return {row.key: row.value for row in db.execute(select(meta))}


def loop_facts(db: Connection) -> LoopFacts | None:
    """The store's loop, or None if it indexes none yet."""
    found = read_meta(db)
    if "loop" not in found:
        return None
    return LoopFacts(
        chain_id=int(found["chain_id"]),
        loop=found["loop"],
        zone=found["zone"],
        **{name: int(found[name]) for name in _CONFIG},
        treasury=found["treasury"],
        settlement_token=found["settlement_token"],
        consent_registry=found.get("consent_registry"),
    )


@dataclass
class _Settlements:
    """The `MetersSettled` events of a span, written together: each sum once however many intervals."""

    sides: dict[int, list[sums.Side]] = field(default_factory=dict)  # by block
    prices: dict[int, tuple[int, int]] = field(default_factory=dict)  # interval: its price, its first block
    unpaid: list[dict[str, object]] = field(default_factory=list)

    def add(self, entry: LogReceipt) -> None:
        """One `MetersSettled` log, read from its words (web3's decoding was most of the indexer's time)."""
        block, (interval, price, words) = int(entry["blockNumber"]), _meters_settled(entry)
        self.prices.setdefault(interval, (price, block))
        records = settled_records(words)
        self.sides.setdefault(block, []).extend(
            sums.Side(r.meter_index, interval, r.production, r.energy_wh, r.local_wh) for r in records
        )
        self.unpaid += [
            {
                "meter_idx": r.meter_index,
                "interval": interval,
                "production": r.production,
                "amount": str(r.local_wh * price - r.paid),
                "block": block,
            }
            for r in records
            if r.paid < r.local_wh * price
        ]

    def carry(self, meter_idx: int, event: EventData) -> None:
        """A late reading's energy of the intervals before its own, from and to the grid: spread evenly over
        them (the meter told no more), whole Wh, the remainder on the first ones."""
        args, block = event["args"], event["blockNumber"]
        late = range(args["fromInterval"], args["interval"])
        for production, total in ((False, args["consumedWh"]), (True, args["producedWh"])):
            share, extra = divmod(total, len(late)) if late else (0, 0)
            self.sides.setdefault(block, []).extend(
                sums.Side(meter_idx, interval, production, share + (i < extra), 0)
                for i, interval in enumerate(late)
                if share + (i < extra)
            )

    def write(self, db: Connection, calendar: LoopCalendar, *, journal: bool) -> None:
        if self.prices:
            wanted = list(self.prices)
            known = set(db.execute(select(intervals.c.interval).where(intervals.c.interval.in_(wanted))).scalars())
            fresh = [  # an interval settled over two spans has its row from the first
                {"interval": interval, "price_per_wh": price, "block": block}
                for interval, (price, block) in self.prices.items()
                if interval not in known
            ]
            if fresh:
                db.execute(intervals.insert(), fresh)
        if self.sides:
            sums.record(db, self.sides, calendar, journal=journal)
        if self.unpaid:
            db.execute(unpaid.insert(), self.unpaid)


def _meters_settled(entry: LogReceipt) -> tuple[int, int, list[int]]:
    """The interval, price and records of a `MetersSettled(uint32 indexed, uint64, uint256[])` log."""
    data = bytes(HexBytes(entry["data"]))
    word = [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]
    offset = word[1] // 32  # where the array starts: its length, then its words
    interval = int.from_bytes(bytes(HexBytes(entry["topics"][1])), "big")
    return interval, word[0], word[offset + 1 : offset + 1 + word[offset]]


class Indexer:
    """Follows one loop's events into one store."""

    def __init__(
        self,
        engine: Engine,
        loop: Loop,
        from_block: int,
        tz: ZoneInfo,
        confirmations: int | None = None,
        registry: str | None = None,
    ) -> None:
        self.engine, self.loop = engine, loop
        chain = loop.sender.chain
        self.confirmations = chain.policy.confirmations if confirmations is None else confirmations
        events = loop.contract.events
        self._events = {event_topic(getattr(events, name)): getattr(events, name)() for name in WATCHED}
        self._addresses: list[str] = [loop.address]
        if registry is not None:
            registry = to_checksum_address(registry)
            granted = chain.w3.eth.contract(registry, abi=load_artifact(CONSENT_CONTRACT)["abi"]).events
            self._events |= {event_topic(getattr(granted, name)): getattr(granted, name)() for name in CONSENT_EVENTS}
            self._addresses.append(registry)
        self._settled_topic = event_topic(events.MetersSettled)
        self.facts = self._open(from_block, tz, registry)
        self.calendar = self.facts.calendar
        self.last_error: str | None = None
        self.head: int | None = None
        self.wake = threading.Event()  # set to index now rather than at the next poll
        self._timestamps: dict[int, int] = {}
        self._journal = True  # whether the span being indexed is recent enough for a reorganisation
        self._handlers: dict[str, Callable[[Connection, EventData], None]] = {
            "TermsScheduled": self._on_terms,
            "MeterAdded": self._on_meter_added,
            "MeterRemoved": self._on_meter_removed,
            **dict.fromkeys(LEDGER_ENTRIES, self._on_ledger),
            "ConsentGranted": self._on_consent_granted,
            "ConsentRevoked": self._on_consent_revoked,
        }

    def _open(self, from_block: int, tz: ZoneInfo, registry: str | None) -> LoopFacts:
        """The store's loop: this one, written down the first time; DaiseeError if it indexes another."""
        chain_id, address = self.loop.sender.chain.chain_id, self.loop.address
        with self.engine.begin() as db:
            facts = loop_facts(db)
            if facts is None:
                config = self.loop.config()
                values = {
                    "chain_id": str(chain_id),
                    "loop": address,
                    "zone": tz.key,
                    **{name: str(getattr(config, name)) for name in _CONFIG},
                    "treasury": config.treasury,
                    "settlement_token": config.settlement_token,
                    "next_block": str(from_block),
                } | ({"consent_registry": registry} if registry else {})
                db.execute(meta.insert(), [{"key": k, "value": v} for k, v in values.items()])
                facts = loop_facts(db)
                assert facts is not None
        if (facts.chain_id, facts.loop) != (chain_id, address):
            raise DaiseeError(
                f"this store indexes loop {facts.loop} on chain {facts.chain_id}, not {address} on chain "
                f"{chain_id}: give each loop a store of its own (--db)"
            )
        if registry is not None and facts.consent_registry != registry:
            raise DaiseeError(
                f"this store follows the consents of registry {facts.consent_registry or '(none)'}, not {registry}: "
                "give the régie the registry it started with (--consents), or index into a new store (--db)"
            )
        if facts.zone != tz.key:
            raise DaiseeError(
                f"this store keeps its sums in the civil time of {facts.zone}, not {tz.key}: use --zone "
                f"{facts.zone}, or index into a new store (--db)"
            )
        return facts

    @property
    def next_block(self) -> int:
        with self.engine.connect() as db:
            return int(read_meta(db)["next_block"])

    def catch_up(self) -> int:
        """Index every confirmed block not indexed yet, after undoing a reorganisation if there was one; how
        many events were indexed. RPC failures propagate, and the store keeps what the spans before wrote."""
        w3 = self.loop.sender.chain.w3
        self.head = int(w3.eth.block_number)
        last = self.head - self.confirmations
        self._undo_reorganisation()
        indexed = 0
        first = self.next_block
        while first <= last:
            end = min(first + SPAN - 1, last)
            end_hash = HexBytes(w3.eth.get_block(end)["hash"])
            logs = raw_logs(w3, self._addresses, list(self._events), first, end)
            if HexBytes(w3.eth.get_block(end)["hash"]) != end_hash:  # the chain reorganised meanwhile: next time
                break
            self._journal = end >= self.head - REORG_DEPTH  # else no reorganisation can undo this span
            with self.engine.begin() as db:
                self._apply(db, logs)
                seen = {int(entry["blockNumber"]): HexBytes(entry["blockHash"]) for entry in logs}
                seen[end] = end_hash
                db.execute(blocks.insert(), [{"number": n, "hash": bytes(h)} for n, h in sorted(seen.items())])
                db.execute(delete(blocks).where(blocks.c.number < end - REORG_DEPTH))
                sums.forget_before(db, end - REORG_DEPTH)
                db.execute(update(meta).where(meta.c.key == "next_block").values(value=str(end + 1)))
            indexed += len(logs)
            first = end + 1
            self._timestamps.clear()
        return indexed

    def _undo_reorganisation(self) -> None:
        """If the chain lost blocks that were indexed, take out what they wrote and index again from there."""
        w3 = self.loop.sender.chain.w3
        with self.engine.connect() as db:
            kept = db.execute(select(blocks.c.number, blocks.c.hash).order_by(blocks.c.number.desc())).all()
        for depth, (number, stored) in enumerate(kept):
            found = w3.eth.get_block(number) if number <= int(w3.eth.block_number) else None
            if found is not None and bytes(HexBytes(found["hash"])) == bytes(stored):
                if depth:
                    self._undo_after(number)
                return
        if kept:
            raise DaiseeError(
                f"the chain reorganised more than the {REORG_DEPTH} blocks the store can undo: index the loop "
                "into a new store (--db)"
            )

    def _undo_after(self, block: int) -> None:
        with self.engine.begin() as db:
            undone = sums.undo_from(db, block + 1, self.calendar)
            for table in (meters, terms, intervals, unpaid, ledger, consents):
                db.execute(delete(table).where(table.c.block > block))
            db.execute(update(meters).where(meters.c.removed_block > block).values(removed_block=None))
            revoked = update(consents).where(consents.c.revoked_block > block)
            db.execute(revoked.values(revoked_block=None, revoked_at=None))
            db.execute(delete(blocks).where(blocks.c.number > block))
            db.execute(update(meta).where(meta.c.key == "next_block").values(value=str(block + 1)))
        log.warning("event=reorganisation fork_block=%d sides_undone=%d", block, undone)

    def _apply(self, db: Connection, logs: Sequence[LogReceipt]) -> None:
        settled = _Settlements()
        for entry in logs:
            topic = HexBytes(entry["topics"][0])
            if topic == self._settled_topic:
                settled.add(entry)
                continue
            event = self._events[topic].process_log(entry)
            if event["event"] == "EnergyCarried":
                settled.carry(self._meter_idx(db, bytes(event["args"]["meterId"])), event)
            else:
                self._handlers[event["event"]](db, event)
        settled.write(db, self.calendar, journal=self._journal)

    def _meter_idx(self, db: Connection, meter_id: bytes) -> int:
        return int(db.execute(select(meters.c.idx).where(meters.c.meter_id == meter_id)).scalar_one())

    def _on_terms(self, db: Connection, event: EventData) -> None:
        args = event["args"]
        db.execute(
            terms.insert().values(
                block=event["blockNumber"],
                log_index=event["logIndex"],
                epoch=args["epoch"],
                allocation_key=args["key"],
                price_per_wh=args["pricePerWh"],
                from_interval=args["from"],
            )
        )

    def _on_meter_added(self, db: Connection, event: EventData) -> None:
        args = event["args"]
        db.execute(
            meters.insert().values(
                idx=args["index"],
                meter_id=bytes(args["meterId"]),
                kind=args["kind"],
                payout=args["payout"],
                active_from=args["activeFrom"],
                block=event["blockNumber"],
            )
        )

    def _on_meter_removed(self, db: Connection, event: EventData) -> None:
        removed = update(meters).where(meters.c.meter_id == bytes(event["args"]["meterId"]))
        db.execute(removed.values(removed_block=event["blockNumber"]))

    def _on_ledger(self, db: Connection, event: EventData) -> None:
        args = event["args"]
        amount = args["received"] if event["event"] == "Deposited" else args["amount"]
        db.execute(
            ledger.insert().values(
                block=event["blockNumber"],
                log_index=event["logIndex"],
                account=args["account"],
                entry=LEDGER_ENTRIES[event["event"]],
                amount=str(amount),
                timestamp=self._timestamp(event["blockNumber"]),
            )
        )

    def _on_consent_granted(self, db: Connection, event: EventData) -> None:
        args = event["args"]
        db.execute(
            consents.insert().values(
                consent_id=bytes(args["consentId"]),
                meter_idx=self._meter_idx(db, bytes(args["meterId"])),
                grantor=args["grantor"],
                audience=args["audience"],
                grantee=args["grantee"],
                purpose=args["purpose"],
                kinds=args["kinds"],
                granularity=args["granularity"],
                history_days=args["historyDays"],
                valid_from=args["validFrom"],
                valid_until=args["validUntil"],
                nonce=str(args["nonce"]),
                block=event["blockNumber"],
            )
        )

    def _on_consent_revoked(self, db: Connection, event: EventData) -> None:
        revoked = update(consents).where(consents.c.consent_id == bytes(event["args"]["consentId"]))
        block = event["blockNumber"]
        db.execute(revoked.values(revoked_block=block, revoked_at=self._timestamp(block)))

    def _timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            self._timestamps[block] = int(self.loop.sender.chain.w3.eth.get_block(block)["timestamp"])
        return self._timestamps[block]

    def status(self) -> dict[str, Any]:
        """How far the store has come: the next block to index, the chain's head, the last failure."""
        return {"next_block": self.next_block, "head": self.head, "last_error": self.last_error}

    def run(self, stop: threading.Event, every: float = POLL_SECONDS) -> None:
        """Catch up every `every` seconds until `stop` is set, riding out node failures with a growing delay."""
        pause = every
        while not stop.is_set():
            try:
                indexed = self.catch_up()
            except DaiseeError:
                raise  # the store cannot follow this chain: nothing to retry
            except Exception as exc:
                self.last_error = describe_error(exc, self.loop.sender.chain.url)
                log.warning("event=index_failed error=%s retry_in=%.0fs", self.last_error, pause)
                stop.wait(pause)
                pause = min(pause * 2, MAX_BACKOFF)
                continue
            self.last_error, pause = None, every
            if indexed:
                log.info("event=indexed events=%d next_block=%d", indexed, self.next_block)
            self.wake.wait(every)
            self.wake.clear()
