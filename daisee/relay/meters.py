"""The loop's meters as the relay sees them: read from the chain, kept a few seconds, and checked against a reading.

A burst of readings costs one RPC per meter per `ttl`, not one per reading. The calls run on a small fixed
pool of threads, so web3 (which keeps one HTTP session per thread) reuses its connections.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from web3.exceptions import ContractLogicError

from daisee.chain.reverts import describe_revert
from daisee.domain import RejectReason
from daisee.loop import Loop, MeterInfo
from daisee.readings import LoopDomain, SignedReading

METER_TTL = 5.0  # seconds a meter read from the chain is trusted
RPC_THREADS = 4
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


def precheck(
    signed: SignedReading, meter: MeterInfo | None, domain: LoopDomain, interval_seconds: int
) -> RejectReason | None:
    """Why the loop would skip `signed` whatever the calendar says, in the contract's order; None if it would
    not on these grounds. `meter` is None for a meter the loop does not know.

    The calendar's checks (FUTURE_INTERVAL, INTERVAL_FINALIZED, SETTLEMENT_BACKLOG) are left to the chain: a
    queued reading may pass them by the time its batch goes. The others compare the reading with the meter's
    last accepted one, and never refuse what the chain would take later: were readings of the meter accepted
    since `meter` was read, each within its limit, the energy since `meter`'s index is within the limit over
    the longer time too.
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
    """Meters of `loop`, each read again once older than `ttl` seconds; unknown meters are not cached."""

    def __init__(self, loop: Loop, ttl: float = METER_TTL) -> None:
        self.loop = loop
        self.ttl = ttl
        self._lock = threading.Lock()
        self._meters: dict[bytes, tuple[float, MeterInfo]] = {}
        self._interval_seconds: int | None = None
        self._pool = ThreadPoolExecutor(max_workers=RPC_THREADS, thread_name_prefix="relay-rpc")

    @property
    def interval_seconds(self) -> int:
        """The loop's interval length (read once: it is fixed at deployment). RPC failures propagate."""
        if self._interval_seconds is None:
            call = self.loop.contract.functions.intervalSeconds().call
            self._interval_seconds = int(self._pool.submit(call).result())
        return self._interval_seconds

    def check(self, signed: SignedReading, *, fresh: bool = False) -> tuple[MeterInfo | None, RejectReason | None]:
        """The reading's meter and `precheck`'s verdict; `fresh` skips the cache. A refusal that a change of the
        meter may lift (a rotation, a repair) is made only on the meter as the chain has it now."""
        meter_id = signed.reading.meter_id
        meter, was_read = self._get(meter_id, fresh)
        reason = precheck(signed, meter, self.loop.domain, self.interval_seconds)
        if reason in _LIFTED_BY_CHANGE and not was_read:
            meter, _ = self._get(meter_id, True)
            reason = precheck(signed, meter, self.loop.domain, self.interval_seconds)
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
            if meter is None:
                self._meters.pop(meter_id, None)
            else:
                self._meters[meter_id] = (now, meter)
        return meter, True

    def _read(self, meter_id: bytes) -> MeterInfo | None:
        try:
            return self.loop.meter(meter_id)
        except ContractLogicError as exc:
            if describe_revert(exc.data if isinstance(exc.data, str) else None).startswith("UnknownMeter("):
                return None
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
