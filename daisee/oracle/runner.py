"""The oracle's main loop: samples in, signed readings into the outbox, the outbox out to the chain."""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from eth_keys.datatypes import PrivateKey

from daisee.gateways import Gateway, MeterSample
from daisee.oracle.outbox import CONFIRMED, HELD, REJECTED, SENT, Outbox
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import PMO_ALERTS, RETRY, WAIT, ReadingSender
from daisee.readings import LoopDomain, Reading

log = logging.getLogger("daisee.oracle")
MAX_BACKOFF = 300.0
WAIT_SECONDS = 5.0  # when the chain asks to come back later
_PMO_ALERTS = {reason.name for reason in PMO_ALERTS}


@dataclass
class Oracle:
    """One meter's oracle. `run` blocks until `stop` is set; `step` is one pass, for tests."""

    sampler: Sampler
    key: PrivateKey
    domain: LoopDomain
    outbox: Outbox
    sender: ReadingSender
    stop: threading.Event = field(default_factory=threading.Event)

    def handle(self, sample: MeterSample) -> None:
        """Sign the reading `sample` completes, if any, and store it before anything is sent."""
        alerts_before = len(self.sampler.alerts)
        reading = self.sampler.feed(sample)
        for message in self.sampler.alerts[alerts_before:]:
            log.warning("event=alert kind=counter-backwards %s", message)
            self.outbox.alert("counter-backwards", message)
        if sample.import_wh is None:
            log.warning("event=corrupt-sample rejected=%s total=%d", ",".join(sample.rejected), self.sampler.corrupt)
        if reading is None:
            return
        if self.outbox.add(reading.sign(self.key, self.domain)):
            log.info(
                "event=signed interval=%d import_wh=%d export_wh=%d",
                reading.interval,
                reading.import_wh,
                reading.export_wh,
            )

    def flush(self) -> int:
        """Send what is due; returns how many readings were confirmed."""
        due = self.outbox.due(time.time())
        if not due:
            return 0
        outcomes = self.sender.send(due)
        confirmed = 0
        for signed in due:
            outcome = outcomes.get((signed.reading.meter_id, signed.reading.interval))
            reading = signed.reading
            if outcome is None or outcome.status == RETRY:
                delay = min(MAX_BACKOFF, 2.0 ** self.outbox.attempts(reading))
                reason = outcome.reason if outcome else "no answer"
                self.outbox.retry_later(reading, delay, reason or "")
                log.info("event=retry interval=%d in_s=%.0f reason=%s", reading.interval, delay, reason)
            elif outcome.status == WAIT:
                if self.outbox.reason(reading) != outcome.reason:  # once per cause, not every WAIT_SECONDS
                    log.info("event=wait interval=%d reason=%s", reading.interval, outcome.reason)
                self.outbox.retry_later(reading, WAIT_SECONDS, outcome.reason or "", count_attempt=False)
            elif outcome.status == CONFIRMED:
                self.outbox.mark(reading, CONFIRMED, outcome.reason)
                confirmed += 1
                log.info("event=confirmed interval=%d", reading.interval)
            elif outcome.status == HELD:
                self._hold(reading, outcome.reason or "")
            elif outcome.status == REJECTED:
                self.outbox.mark(reading, REJECTED, outcome.reason)
                self.outbox.alert("rejected", f"interval {reading.interval}: {outcome.reason}")
                log.warning("event=rejected interval=%d reason=%s", reading.interval, outcome.reason)
            else:
                self.outbox.mark(reading, SENT, outcome.reason)
                self.outbox.retry_later(
                    reading, WAIT_SECONDS, outcome.reason or "awaiting the relay", count_attempt=False
                )
        return confirmed

    def _hold(self, reading: Reading, reason: str) -> None:
        """Keep aside a reading the chain will never take; the meter's next reading carries its energy."""
        self.outbox.mark(reading, HELD, reason)
        if reason not in _PMO_ALERTS:  # before the meter's first interval: nothing is wrong
            log.info("event=held interval=%d reason=%s", reading.interval, reason)
            return
        message = (
            f"interval {reading.interval}: {reason}: a wrong limit or a broken meter, tell the PMO "
            "(the next reading carries its energy if it fits the meter's limits)"
        )
        self.outbox.alert("meter-limits", message)
        log.warning("event=held interval=%d reason=%s note=tell-the-pmo", reading.interval, reason)

    def run(self, gateway: Gateway, flush_seconds: float = 1.0) -> None:
        """Read `gateway` in a thread and sign and send until `stop` is set."""
        samples: queue.Queue[MeterSample | None] = queue.Queue()

        def read() -> None:
            try:
                for sample in gateway.samples():
                    samples.put(sample)
                    if self.stop.is_set():
                        break
            finally:
                samples.put(None)

        reader = threading.Thread(target=read, name="gateway", daemon=True)
        reader.start()
        self.flush()  # whatever a previous run left unconfirmed
        ended = False
        while not self.stop.is_set():
            deadline = time.monotonic() + flush_seconds
            while not ended and time.monotonic() < deadline:
                try:
                    sample = samples.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if sample is None:
                    ended = True
                else:
                    self.handle(sample)
            self.flush()
            if ended and self.outbox.backlog() == 0:
                break
            if ended:
                self.stop.wait(flush_seconds)
        gateway.close()
