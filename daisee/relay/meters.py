"""The loop's meters and calendar as the relay sees them: read from the chain, kept, and checked against a
reading with every rule the contract applies, so that no gas goes to a reading it rejects.

A meter read from the chain is trusted for `ttl` seconds. While `watch` runs, the loop's events keep the
cache true instead, for up to WATCHED_TTL: each accepted reading moves its meter's counters on, and any
change of a meter (admission, removal, rotation, repair, limits) drops it so that it is read again. A meter
then costs one RPC per WATCHED_TTL, not one per reading or per interval; if the watch falls behind (the node
does not answer), `ttl` applies again. Once it starts, the watch reads every registered meter, so that the
first interval's readings find their meters cached too. The calls run on a small fixed pool of threads, so
web3 (which keeps one HTTP session per thread) reuses its connections.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TypeVar

from web3.exceptions import ContractLogicError
from web3.types import RPCEndpoint

from daisee.chain.clock import chain_time
from daisee.chain.connect import describe_error
from daisee.chain.logs import event_topic
from daisee.chain.reverts import describe_revert
from daisee.domain import SETTLEMENT_LAG, RejectReason
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterInfo
from daisee.readings import LoopDomain, SignedReading
from daisee.relay.logs import log_event

T = TypeVar("T")
METER_TTL = 5.0  # seconds a meter read from the chain is trusted
WATCHED_TTL = 600.0  # seconds it is trusted while the loop's events keep it up to date
WATCH_SECONDS = 1.0  # how often the watch asks for the loop's new events
WATCH_LAG = 5.0  # a watch that has not caught up for this long is not trusted
WATCH_SPAN = 2_000  # blocks per eth_getLogs
WARM_CHUNK = 100  # registered meters the watch reads into the cache between two catch-ups, once it starts
# events that change what the relay checks of a meter (ReadingAccepted moves its counters on)
_METER_CHANGES = ("MeterAdded", "MeterRemoved", "MeterChangeScheduled", "MeterChangeCancelled", "MeterChanged")
# a "not yet" is said only on a calendar at most this old: a chain's clock may jump (a development chain's
# does), and readings that pass it must not wait out the cache; it bounds the reads a burst of them costs
CALENDAR_RECHECK = 0.25
RPC_THREADS = 4
_NOT_YET = frozenset({RejectReason.FUTURE_INTERVAL, RejectReason.SETTLEMENT_BACKLOG})  # refusals that pass with time
# Refusals that a change of the meter since it was cached may lift: a rotated signer, or a repaired meter's
# new indices. The others stand whatever the cache's age: a removal is final, a meter's first interval and
# its limits never change, and its last accepted interval only grows.
_LIFTED_BY_CHANGE = frozenset(
    {
        RejectReason.BAD_SIGNATURE,
        RejectReason.INDEX_DECREASED,
        RejectReason.FLOW_NOT_ALLOWED,
        RejectReason.ABOVE_METER_LIMIT,
    }
)


@dataclass(frozen=True)
class Calendar:
    """Where the loop stands for a reading: the interval under way (by the later of the chain's and this
    machine's clocks), and the loop's progress (read a moment ago: it can only have moved forward since)."""

    current: int
    next_to_finalize: int
    next_to_settle: int


def precheck(
    signed: SignedReading,
    meter: MeterInfo | None,
    domain: LoopDomain,
    interval_seconds: int,
    calendar: Calendar | None = None,
    signed_by: str | None = None,
) -> RejectReason | None:
    """Why the loop would skip `signed`, in the contract's order; None if it would not on these grounds.
    `meter` is None for a meter the loop does not know; without a `calendar` its checks are skipped.
    `signed_by` is a signer `signed` was already checked against (by the relay's intake): if it is still the
    meter's, the signature is not recovered again.

    The meter's checks compare the reading with the meter's last accepted one, and never refuse what the
    chain would take later: were readings of the meter accepted since `meter` was read, each within its
    limit, the energy since `meter`'s index is within the limit over the longer time too. Of the calendar's,
    INTERVAL_FINALIZED is final; FUTURE_INTERVAL and SETTLEMENT_BACKLOG mean "not yet": send it again later.
    """
    if meter is None:
        return RejectReason.UNKNOWN_METER
    if signed_by != meter.signer and not signed.verify(domain, meter.signer):
        return RejectReason.BAD_SIGNATURE
    if not meter.active:
        return RejectReason.METER_INACTIVE
    reading = signed.reading
    if reading.interval < meter.active_from:
        return RejectReason.NOT_YET_ACTIVE
    if reading.interval < meter.next_interval:
        return RejectReason.STALE_INTERVAL
    if calendar is not None:
        if reading.interval >= calendar.current:
            return RejectReason.FUTURE_INTERVAL
        if reading.interval < calendar.next_to_finalize:
            return RejectReason.INTERVAL_FINALIZED
        if reading.interval >= calendar.next_to_settle + SETTLEMENT_LAG:
            return RejectReason.SETTLEMENT_BACKLOG
    if reading.import_wh < meter.import_wh or reading.export_wh < meter.export_wh:
        return RejectReason.INDEX_DECREASED
    consumed, produced = energy_since_last(signed, meter)
    if (consumed and not meter.import_limit_w) or (produced and not meter.export_limit_w):
        return RejectReason.FLOW_NOT_ALLOWED
    elapsed = elapsed_seconds(signed, meter, interval_seconds)
    if consumed * 3600 > meter.import_limit_w * elapsed or produced * 3600 > meter.export_limit_w * elapsed:
        return RejectReason.ABOVE_METER_LIMIT
    return None


def energy_since_last(signed: SignedReading, meter: MeterInfo) -> tuple[int, int]:
    """(imported, exported) Wh since the meter's last accepted reading (or its admission)."""
    return signed.reading.import_wh - meter.import_wh, signed.reading.export_wh - meter.export_wh


def elapsed_seconds(signed: SignedReading, meter: MeterInfo, interval_seconds: int) -> int:
    """The time the reading covers: from the start of the meter's next interval to the end of the reading's."""
    return (signed.reading.interval + 1 - meter.next_interval) * interval_seconds


class ChainReadNeededError(Exception):
    """The check needs the chain, and was asked not to wait for it."""


class MeterCache:
    """Meters of `loop` (and the fact that a meter is unknown), each read again once older than `ttl`
    seconds (WATCHED_TTL while `watch` keeps them true), and the loop's calendar."""

    def __init__(self, loop: Loop, ttl: float = METER_TTL) -> None:
        self.loop = loop
        self.ttl = ttl
        self._lock = threading.Lock()
        self._meters: dict[bytes, tuple[float, MeterInfo | None]] = {}
        self._interval_seconds: int | None = None
        self._genesis: int | None = None
        self._progress: tuple[float, int, int, int] | None = None  # read at, block time, next to finalize, settle
        self._pool = ThreadPoolExecutor(max_workers=RPC_THREADS, thread_name_prefix="relay-rpc")
        self._watched_at: float | None = None  # when the watch last caught up with the chain
        self._watched_since = float("inf")  # meters read since then are kept true by the watch
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._watch_error: str | None = None
        self._catching_up = threading.Lock()
        self._next_block: int | None = None  # the first block whose events are not applied yet
        self._warmed: int | None = 0  # registered meters the watch has read, None once it has read them all
        events = loop.contract.events
        # ReadingAccepted first
        self._topics = [event_topic(getattr(events, name)) for name in ("ReadingAccepted", *_METER_CHANGES)]

    @property
    def interval_seconds(self) -> int:
        """The loop's interval length (read once: it is fixed at deployment). RPC failures propagate."""
        return self._interval_seconds_now(wait=True)

    def _interval_seconds_now(self, *, wait: bool) -> int:
        if self._interval_seconds is None:
            self._interval_seconds = int(self._from_chain(self.loop.contract.functions.intervalSeconds().call, wait))
        return self._interval_seconds

    def _from_chain(self, read: Callable[[], T], wait: bool) -> T:
        """`read()` on the pool's threads; ChainReadNeededError instead if not `wait`."""
        if not wait:
            raise ChainReadNeededError
        return self._pool.submit(read).result()

    def calendar(self, max_age: float | None = None, *, wait: bool = True) -> Calendar:
        """The loop's calendar now, read again once older than `max_age` (default `ttl`): it only moves forward.
        RPC failures propagate; ChainReadNeededError if it must be read and not `wait`."""
        if self._genesis is None:
            self._genesis = int(self._from_chain(self.loop.contract.functions.genesis().call, wait))
        now = time.monotonic()
        with self._lock:
            progress = self._progress
        if progress is None or now - progress[0] >= (self.ttl if max_age is None else max_age):
            progress = (now, *self._from_chain(self._read_progress, wait))
            with self._lock:
                self._progress = progress
        _, block_time, next_to_finalize, next_to_settle = progress
        clock = max(block_time, int(time.time()))  # the next block is at least this late
        current = max(clock - self._genesis, 0) // self._interval_seconds_now(wait=wait)
        return Calendar(current, next_to_finalize, next_to_settle)

    def check(
        self, signed: SignedReading, *, fresh: bool = False, wait: bool = True, signed_by: str | None = None
    ) -> tuple[MeterInfo | None, RejectReason | None]:
        """The reading's meter and `precheck`'s verdict on it and the calendar; `fresh` skips the meter's cache.
        A refusal that a change of the meter may lift (a rotation, a repair) is made only on the meter as the
        chain has it now. Without `wait`, ChainReadNeededError where the chain must be read (the cache cannot tell)."""
        meter_id = signed.reading.meter_id
        meter, was_read = self._get(meter_id, fresh, wait)
        calendar = self.calendar(wait=wait)
        interval_seconds = self._interval_seconds_now(wait=wait)
        domain = self.loop.domain
        reason = precheck(signed, meter, domain, interval_seconds, calendar, signed_by)
        if reason in _LIFTED_BY_CHANGE and not was_read:
            meter, _ = self._get(meter_id, True, wait)
            reason = precheck(signed, meter, domain, interval_seconds, calendar, signed_by)
        if reason in _NOT_YET:
            calendar = self.calendar(max_age=min(self.ttl, CALENDAR_RECHECK), wait=wait)
            reason = precheck(signed, meter, domain, interval_seconds, calendar, signed_by)
        return meter, reason

    def get(self, meter_id: bytes, *, fresh: bool = False) -> MeterInfo | None:
        """The meter, or None if the loop does not know it; `fresh` skips the cache. RPC failures propagate."""
        return self._get(meter_id, fresh, True)[0]

    def _get(self, meter_id: bytes, fresh: bool, wait: bool) -> tuple[MeterInfo | None, bool]:
        """The meter, and whether it was read from the chain just now."""
        now = time.monotonic()
        with self._lock:
            cached = self._meters.get(meter_id)
            watched = self._watched_at is not None and now - self._watched_at < WATCH_LAG
            kept_true = cached is not None and watched and cached[0] >= self._watched_since
        if cached and not fresh and now - cached[0] < (WATCHED_TTL if kept_true else self.ttl):
            return cached[1], False
        meter = self._from_chain(lambda: self._read(meter_id), wait)
        with self._lock:
            self._meters[meter_id] = (now, meter)
        return meter, True

    def watch(self) -> None:
        """Follow the loop's events in a thread of its own (until `close`), keeping the cached meters true."""
        self._watch = threading.Thread(target=self._follow, name="relay-watch", daemon=True)
        self._watch.start()

    def watch_status(self) -> dict[str, object]:
        """`trusted` (the watch keeps the cache true), `behind_seconds` since it last caught up, `last_error`,
        `warm` (it has read every meter registered when it started)."""
        with self._lock:
            watched_at = self._watched_at
        behind = None if watched_at is None else round(time.monotonic() - watched_at, 1)
        return {
            "trusted": behind is not None and behind < WATCH_LAG,
            "behind_seconds": behind,
            "last_error": self._watch_error,
            "warm": self._warmed is None,
        }

    def _follow(self) -> None:
        while True:
            try:
                self.catch_up()
                self._warm()
            except Exception as exc:  # the node: the cache falls back to its ttl until the watch catches up
                self._watch_error = describe_error(exc, self.loop.sender.chain.url)
                log_event("watch_failed", error=self._watch_error)
                pause = WATCH_SECONDS
            else:
                self._watch_error = None
                pause = WATCH_SECONDS if self._warmed is None else 0  # the next meters to read at once
            if self._stop.wait(pause):
                return

    def _warm(self) -> None:
        """Read the next WARM_CHUNK registered meters into the cache, once the watch keeps it true."""
        if self._warmed is None:
            return
        ids = self.loop.meter_ids(self._warmed, self._warmed + WARM_CHUNK)
        for meter_id in ids:
            read_at = time.monotonic()
            meter = self._read(meter_id)
            with self._lock:
                self._meters[meter_id] = (read_at, meter)
        self._warmed = None if len(ids) < WARM_CHUNK else self._warmed + len(ids)

    def catch_up(self) -> None:
        """Apply the loop's events up to the chain's head now (the batcher calls it before each batch, so that
        it checks readings against the chain as it is). RPC failures propagate."""
        with self._catching_up:
            started = time.monotonic()
            w3 = self.loop.sender.chain.w3
            head = int(w3.eth.block_number)
            if self._next_block is None:  # what came before is in the meters read from now on
                self._next_block, self._watched_since = head + 1, started
            while self._next_block <= head:
                end = min(self._next_block + WATCH_SPAN - 1, head)
                self._apply(self._logs(self._next_block, end))
                self._next_block = end + 1
            with self._lock:
                self._watched_at = started

    def _logs(self, first: int, last: int) -> list[tuple[list[bytes], bytes]]:
        """The topics and data of the loop's watched events in blocks `first` to `last`, as the node sent them
        (web3 would build an attribute dictionary of each, a round's thousand accepted readings included)."""
        query = {
            "address": self.loop.address,
            "fromBlock": hex(first),
            "toBlock": hex(last),
            "topics": [[topic.to_0x_hex() for topic in self._topics]],
        }
        answer = self.loop.sender.chain.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [query])
        if "error" in answer:
            raise DaiseeError(f"eth_getLogs refused by the node: {answer['error']}")
        return [([_bytes(t) for t in log["topics"]], _bytes(log["data"])) for log in answer["result"]]

    def _apply(self, logs: Sequence[tuple[list[bytes], bytes]]) -> None:
        with self._lock:
            for topics, data in logs:
                meter_id = topics[1]
                if topics[0] != self._topics[0]:
                    self._meters.pop(meter_id, None)
                    continue
                cached = self._meters.get(meter_id)
                interval = int.from_bytes(topics[2], "big")
                if cached is None or cached[1] is None or interval < cached[1].next_interval:
                    continue
                import_wh, export_wh = int.from_bytes(data[:32], "big"), int.from_bytes(data[32:64], "big")
                self._meters[meter_id] = (
                    cached[0],
                    replace(cached[1], next_interval=interval + 1, import_wh=import_wh, export_wh=export_wh),
                )

    def _read(self, meter_id: bytes) -> MeterInfo | None:
        try:
            return self.loop.meter(meter_id)
        except ContractLogicError as exc:
            if describe_revert(exc.data if isinstance(exc.data, str) else None).startswith("UnknownMeter("):
                return None
            raise

    def _read_progress(self) -> tuple[int, int, int]:
        return chain_time(self.loop.sender.chain), self.loop.next_to_finalize(), self.loop.next_to_settle()

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _bytes(value: str) -> bytes:
    """A JSON-RPC answer's 0x-hex string."""
    return bytes.fromhex(value.removeprefix("0x"))
