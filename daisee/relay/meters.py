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


def precheck(signed: SignedReading, meter: MeterInfo | None, domain: LoopDomain) -> RejectReason | None:
    """Why the loop would skip `signed` before looking at the calendar, in the contract's order; None if it
    would not (on these grounds). `meter` is None for a meter the loop does not know."""
    if meter is None:
        return RejectReason.UNKNOWN_METER
    if not signed.verify(domain, meter.signer):
        return RejectReason.BAD_SIGNATURE
    if not meter.active:
        return RejectReason.METER_INACTIVE
    if signed.reading.interval < meter.next_interval:
        return RejectReason.STALE_INTERVAL
    return None


class MeterCache:
    """Meters of `loop`, each read again once older than `ttl` seconds; unknown meters are not cached."""

    def __init__(self, loop: Loop, ttl: float = METER_TTL) -> None:
        self.loop = loop
        self.ttl = ttl
        self._lock = threading.Lock()
        self._meters: dict[bytes, tuple[float, MeterInfo]] = {}
        self._pool = ThreadPoolExecutor(max_workers=RPC_THREADS, thread_name_prefix="relay-rpc")

    def get(self, meter_id: bytes, *, fresh: bool = False) -> MeterInfo | None:
        """The meter, or None if the loop does not know it; `fresh` skips the cache. RPC failures propagate."""
        now = time.monotonic()
        with self._lock:
            cached = self._meters.get(meter_id)
        if cached and not fresh and now - cached[0] < self.ttl:
            return cached[1]
        meter = self._pool.submit(self._read, meter_id).result()
        with self._lock:
            if meter is None:
                self._meters.pop(meter_id, None)
            else:
                self._meters[meter_id] = (now, meter)
        return meter

    def _read(self, meter_id: bytes) -> MeterInfo | None:
        try:
            return self.loop.meter(meter_id)
        except ContractLogicError as exc:
            if describe_revert(exc.data if isinstance(exc.data, str) else None).startswith("UnknownMeter("):
                return None
            raise

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
