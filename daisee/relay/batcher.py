"""The submission loop: when `batch_size` readings wait, or the oldest has waited `batch_seconds`, send what
waits in batches of `batch_size`, up to `in_flight` transactions at once (consecutive nonces).

Each reading is checked again against its meter: the cached one, or the chain as it is now if an earlier
attempt may have recorded the reading. One the chain is already past (the lost receipt of an earlier attempt,
or a gateway that also sent it directly) is not sent again: it is marked accepted if the chain holds exactly
it, else rejected as stale. A failed transaction or RPC leaves the readings queued, and the batcher retries
with exponential backoff.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from hexbytes import HexBytes

from daisee.chain.connect import describe_error
from daisee.chain.logs import event_logs
from daisee.domain import RejectReason
from daisee.loop import Loop, SubmitResult, tx_hash
from daisee.relay.logs import log_event
from daisee.relay.meters import MeterCache
from daisee.relay.queue import Entry, Fate, ReadingQueue, Status

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
PRUNE_EVERY = 3600.0
_STALE = RejectReason.STALE_INTERVAL.name


@dataclass(frozen=True)
class BatchReport:
    """The last batch sent."""

    tx: str
    gas_used: int
    readings: int
    accepted: int
    rejected: int
    at: float


class Batcher:
    """A thread that drains `queue` into `loop` in batches."""

    def __init__(
        self,
        loop: Loop,
        queue: ReadingQueue,
        meters: MeterCache,
        *,
        batch_size: int,
        batch_seconds: float,
        in_flight: int = 1,
    ) -> None:
        self.loop = loop
        self.queue = queue
        self.meters = meters
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.in_flight = in_flight
        self.batches = 0
        self.last_batch: BatchReport | None = None
        self.last_error: tuple[str, float] | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._pruned_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="relay-batcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A reading was queued: look again whether a batch is due."""
        self._wake.set()

    def stop(self, timeout: float) -> bool:
        """Stop after the batch in flight, if any; False if it is still running after `timeout` seconds."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            wait = self._due_in()
            if wait <= 0:
                self._attempt()
                continue
            self._wake.wait(wait)

    def _due_in(self) -> float:
        """Seconds until the next batch is due (0: now); a failing chain is tried again only after its backoff."""
        now = time.time()
        depth, oldest = self.queue.pending()
        if oldest is None:
            return BACKOFF_MAX
        due = now if depth >= self.batch_size else oldest + self.batch_seconds
        return max(due, self._retry_at) - now

    def _attempt(self) -> None:
        try:
            self._send_batch()
        except Exception as exc:  # the node, the network or the contract: retry later, whatever the cause
            self._failures += 1
            delay = min(BACKOFF_FIRST * 2 ** (self._failures - 1), BACKOFF_MAX)
            self._retry_at = time.time() + delay
            error = describe_error(exc, self.loop.sender.chain.url)
            self.last_error = (error, time.time())
            log_event("batch_failed", error=error, failures=self._failures, retry_in=f"{delay:g}s")
            return
        self._failures = 0
        self._retry_at = 0.0
        if time.time() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = time.time()
            pruned = self.queue.prune(self._pruned_at)
            if pruned:
                log_event("pruned", readings=pruned)

    def _send_batch(self) -> None:
        self.meters.catch_up()  # the checks below see the chain as it is now
        entries = self.queue.take(self.batch_size * self.in_flight)
        fates: list[tuple[Entry, Fate]] = []
        to_send: list[Entry] = []
        batch_of: dict[bytes, int] = {}  # the batch each meter's readings go in
        for entry in entries:
            meter_id = entry.signed.reading.meter_id
            if batch_of.setdefault(meter_id, len(to_send) // self.batch_size) != len(to_send) // self.batch_size:
                continue  # not in a later batch in flight, estimated without the earlier: it waits for the next take
            # a reading an earlier attempt may have recorded is checked against the chain as it is now; any
            # other against the cached meter (a reading the chain took meanwhile is caught by its STALE reason)
            _, reason = self.meters.check(entry.signed, fresh=entry.sent_block is not None, signed_by=entry.signer)
            if reason is RejectReason.STALE_INTERVAL:
                fates.append((entry, self._fate_on_chain(entry, entry.sent_block)))
            elif reason is not None:
                fates.append((entry, Fate(Status.REJECTED, reason.name)))
            else:
                to_send.append(entry)
        if fates:
            self.queue.settle(fates, 0, time.time())
            log_event(
                "resolved_without_sending",
                readings=len(fates),
                accepted=sum(f.status is Status.ACCEPTED for _, f in fates),
            )
        if to_send:
            self._submit(to_send)

    def _submit(self, entries: list[Entry]) -> None:
        self.queue.mark_submitted(entries, int(self.loop.sender.chain.w3.eth.block_number), time.time())
        try:
            results = self.loop.submit_all([e.signed for e in entries], self.batch_size)
        except BaseException:
            self.queue.requeue(entries, time.time())
            raise
        batches = [entries[i : i + self.batch_size] for i in range(0, len(entries), self.batch_size)]
        for batch, result in zip(batches, results, strict=True):
            self._settle(batch, result)

    def _settle(self, entries: list[Entry], result: SubmitResult) -> None:
        """Record the fate of each reading of one batch the chain took."""
        tx = tx_hash(result.receipt)
        rejected = {(bytes(m), t): reason for m, t, reason in result.rejected}
        fates = []
        for entry in entries:
            reason = rejected.get((entry.signed.reading.meter_id, entry.signed.reading.interval))
            if reason is None:
                fates.append((entry, Fate(Status.ACCEPTED, None, tx)))
            elif reason is RejectReason.STALE_INTERVAL:  # an earlier attempt, or someone else, got there first
                fates.append((entry, self._fate_on_chain(entry, entry.sent_block)))
            else:
                fates.append((entry, Fate(Status.REJECTED, reason.name, tx)))
        self.queue.settle(fates, len(entries), time.time())
        accepted = sum(f.status is Status.ACCEPTED for _, f in fates)
        gas = int(result.receipt["gasUsed"])
        self.batches += 1
        self.last_batch = BatchReport(tx, gas, len(entries), accepted, len(entries) - accepted, time.time())
        log_event("batch_submitted", tx=tx, readings=len(entries), accepted=accepted, gas=gas)

    def _fate_on_chain(self, entry: Entry, sent_block: int | None) -> Fate:
        """The fate of a reading the chain is already past: accepted if the chain holds exactly it.

        After an attempt of ours (`sent_block` set) the loop's events since then tell; otherwise only the
        meter's last recorded reading can (the relay keeps no history of other senders).
        """
        reading = entry.signed.reading
        if sent_block is not None:
            logs = event_logs(
                self.loop.contract.events.ReadingAccepted,
                sent_block,
                int(self.loop.sender.chain.w3.eth.block_number),
                {"meterId": reading.meter_id, "interval": reading.interval},
            )
            for log in logs:
                if (log["args"]["importWh"], log["args"]["exportWh"]) == (reading.import_wh, reading.export_wh):
                    return Fate(Status.ACCEPTED, None, HexBytes(log["transactionHash"]).to_0x_hex())
            return Fate(Status.REJECTED, _STALE)
        meter = self.meters.get(reading.meter_id, fresh=True)
        if meter and (meter.next_interval, meter.import_wh, meter.export_wh) == (
            reading.interval + 1,
            reading.import_wh,
            reading.export_wh,
        ):
            return Fate(Status.ACCEPTED)
        return Fate(Status.REJECTED, _STALE)
