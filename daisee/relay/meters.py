"""The loop's meters and calendar as the relay sees them: read from the chain, kept a few seconds, and
checked against a reading with every rule the contract applies, so that no gas goes to a reading it rejects.

A burst of readings costs one RPC per meter per `ttl` (an unknown meter's too), not one per reading. The
calls run on a small fixed pool of threads, so web3 (which keeps one HTTP session per thread) reuses its
connections.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from web3.exceptions import ContractLogicError

from daisee.chain.clock import chain_time
from daisee.chain.reverts import describe_revert
from daisee.domain import SETTLEMENT_LAG, RejectReason
from daisee.loop import Loop, MeterInfo
from daisee.readings import LoopDomain, SignedReading

METER_TTL = 5.0  # seconds a meter read from the chain is trusted
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
) -> RejectReason | None:
    """Why the loop would skip `signed`, in the contract's order; None if it would not on these grounds.
    `meter` is None for a meter the loop does not know; without a `calendar` its checks are skipped.

    The meter's checks compare the reading with the meter's last accepted one, and never refuse what the
    chain would take later: were readings of the meter accepted since `meter` was read, each within its
    limit, the energy since `meter`'s index is within the limit over the longer time too. Of the calendar's,
    INTERVAL_FINALIZED is final; FUTURE_INTERVAL and SETTLEMENT_BACKLOG mean "not yet": send it again later.
    """
    if meter is None:
        return RejectReason.UNKNOWN_METER
    if not signed.verify(domain, meter.signer):
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


class MeterCache:
    """Meters of `loop` (and the fact that a meter is unknown), each read again once older than `ttl`
    seconds, and the loop's calendar."""

    def __init__(self, loop: Loop, ttl: float = METER_TTL) -> None:
        self.loop = loop
        self.ttl = ttl
        self._lock = threading.Lock()
        self._meters: dict[bytes, tuple[float, MeterInfo | None]] = {}
        self._interval_seconds: int | None = None
        self._genesis: int | None = None
        self._progress: tuple[float, int, int, int] | None = None  # read at, block time, next to finalize, settle
        self._pool = ThreadPoolExecutor(max_workers=RPC_THREADS, thread_name_prefix="relay-rpc")

    @property
    def interval_seconds(self) -> int:
        """The loop's interval length (read once: it is fixed at deployment). RPC failures propagate."""
        if self._interval_seconds is None:
            call = self.loop.contract.functions.intervalSeconds().call
            self._interval_seconds = int(self._pool.submit(call).result())
        return self._interval_seconds

    def calendar(self, max_age: float | None = None) -> Calendar:
        """The loop's calendar now, read again once older than `max_age` (default `ttl`): it only moves forward.
        RPC failures propagate."""
        if self._genesis is None:
            self._genesis = int(self._pool.submit(self.loop.contract.functions.genesis().call).result())
        now = time.monotonic()
        with self._lock:
            progress = self._progress
        if progress is None or now - progress[0] >= (self.ttl if max_age is None else max_age):
            progress = (now, *self._pool.submit(self._read_progress).result())
            with self._lock:
                self._progress = progress
        _, block_time, next_to_finalize, next_to_settle = progress
        clock = max(block_time, int(time.time()))  # the next block is at least this late
        current = max(clock - self._genesis, 0) // self.interval_seconds
        return Calendar(current, next_to_finalize, next_to_settle)

    def check(self, signed: SignedReading, *, fresh: bool = False) -> tuple[MeterInfo | None, RejectReason | None]:
        """The reading's meter and `precheck`'s verdict on it and the calendar; `fresh` skips the meter's cache.
        A refusal that a change of the meter may lift (a rotation, a repair) is made only on the meter as the
        chain has it now."""
        meter_id = signed.reading.meter_id
        meter, was_read = self._get(meter_id, fresh)
        calendar = self.calendar()
        reason = precheck(signed, meter, self.loop.domain, self.interval_seconds, calendar)
        if reason in _LIFTED_BY_CHANGE and not was_read:
            meter, _ = self._get(meter_id, True)
            reason = precheck(signed, meter, self.loop.domain, self.interval_seconds, calendar)
        if reason in _NOT_YET:
            calendar = self.calendar(max_age=min(self.ttl, CALENDAR_RECHECK))
            reason = precheck(signed, meter, self.loop.domain, self.interval_seconds, calendar)
        return meter, reason

    def get(self, meter_id: bytes, *, fresh: bool = False) -> MeterInfo | None:
        """The meter, or None if the loop does not know it; `fresh` skips the cache. RPC failures propagate."""
        return self._get(meter_id, fresh)[0]

    def _get(self, meter_id: bytes, fresh: bool) -> tuple[MeterInfo | None, bool]:
        """The meter, and whether it was read from the chain just now."""
        now = time.monotonic()
        with self._lock:
            cached = self._meters.get(meter_id)
        if cached and not fresh and now - cached[0] < self.ttl:
            return cached[1], False
        meter = self._pool.submit(self._read, meter_id).result()
        with self._lock:
            self._meters[meter_id] = (now, meter)
        return meter, True

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
        self._pool.shutdown(wait=True, cancel_futures=True)
