"""Keep a loop moving: finalize the intervals that may be finalized and settle them, pay receivables
from repaid debts, and put announced meter changes into effect once due (anyone may do all of it).

Readings may run at most SETTLEMENT_LAG intervals ahead of settlement, so a loop whose intervals nobody
settles stops taking readings (`SETTLEMENT_BACKLOG`). `settle_ready` does one pass; a `Keeper` repeats
it every few seconds until stopped: it waits for the loop's genesis, and rides out every failure (a node
outage, an RPC error such as a provider's rate limit) by retrying with a growing delay.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from web3.exceptions import Web3Exception

from daisee.chain.clock import chain_time
from daisee.chain.connect import describe_error
from daisee.chain.logs import event_logs
from daisee.errors import DaiseeError
from daisee.loop import SETTLEMENT_STEPS, Loop, SettleResult, tx_hash

log = logging.getLogger("daisee.keeper")
KEEP_EVERY = 30.0  # seconds between passes
MAX_BACKOFF = 300.0  # longest wait after failures in a row
# reverts that only mean "not yet" or "someone else got there first": look again, nothing is wrong
_NOT_YET = "IntervalStillOpen"
_RACED = ("IntervalNotNext", "IntervalNotFinalized")


def settle_ready(
    loop: Loop,
    max_steps: int = SETTLEMENT_STEPS,
    *,
    stop: threading.Event | None = None,
    on_settled: Callable[[SettleResult], None] | None = None,
) -> list[SettleResult]:
    """Finalize and settle every interval that is ready, oldest first; returns what was settled.

    An interval is ready once it has ended and every active meter reported it or its grace period
    passed; the contract decides, so this stops at its first "still open". Another keeper working on
    the same loop is harmless: its progress is read back and the pass goes on from there. `stop`, if
    set, ends the pass between two transactions.
    """
    settled: list[SettleResult] = []
    while stop is None or not stop.is_set():
        to_settle, to_finalize = loop.next_to_settle(), loop.next_to_finalize()
        try:
            if to_settle < to_finalize:
                result = loop.settle(max_steps)
                settled.append(result)
                if on_settled:
                    on_settled(result)
            elif to_finalize < loop.current_interval():
                loop.finalize(to_finalize)
                log.debug("event=finalized interval=%d", to_finalize)
            else:
                break
        except DaiseeError as exc:
            if _NOT_YET in str(exc):
                break
            if not any(name in str(exc) for name in _RACED):
                raise
    return settled


def pay_receivables(loop: Loop) -> int:
    """Settle receivables while the oldest can be settled; returns how many transactions it took."""
    sent = 0
    while loop.receivable_due():
        receipt = loop.pay_receivables()
        sent += 1
        log.info("event=receivables_paid tx=%s", tx_hash(receipt))
    return sent


class MeterChanges:
    """The meter changes the PMO announced, followed from the loop's events, applied once due."""

    def __init__(self, loop: Loop, from_block: int = 0) -> None:
        self.loop = loop
        self.next_block = from_block
        self.due: dict[bytes, int] = {}  # meter id -> effective at (unix seconds)

    def apply_due(self, now: int) -> list[bytes]:
        """Read the announcements since the last call, and apply those whose notice has passed."""
        latest = int(self.loop.sender.chain.w3.eth.block_number)
        if latest >= self.next_block:
            event = self.loop.contract.events.MeterChangeScheduled
            for e in event_logs(event, self.next_block, latest):
                self.due[bytes(e["args"]["meterId"])] = int(e["args"]["effectiveAt"])
            self.next_block = latest + 1
        applied = []
        for meter_id, effective_at in sorted(self.due.items(), key=lambda item: item[1]):
            if effective_at > now:
                continue
            del self.due[meter_id]
            change = self.loop.meter_change(meter_id)
            if change is None or change.effective_at > now:  # applied, confirmed or cancelled already; or re-announced
                if change is not None:
                    self.due[meter_id] = change.effective_at
                continue
            receipt = self.loop.apply_meter_change(meter_id)
            log.info("event=meter_changed meter=0x%s tx=%s", meter_id.hex(), tx_hash(receipt))
            applied.append(meter_id)
        return applied


def advance(loop: Loop, max_steps: int = SETTLEMENT_STEPS) -> list[int]:
    """Finalize and settle every interval that is ready; returns the intervals settled."""
    return [result.interval for result in settle_ready(loop, max_steps)]


def log_settled(result: SettleResult) -> None:
    """One line per settled interval: `event=settled interval=… transactions=… gas=… tx=…`."""
    log.info(
        "event=settled interval=%d transactions=%d gas=%d tx=%s",
        result.interval,
        len(result.receipts),
        result.gas_used,
        tx_hash(result.receipts[-1]),
    )


class Keeper:
    """Settles `loop`'s ready intervals every `every` seconds until `stop` is set; the loop's sender pays.

    Before the loop's genesis it waits. A failure (the node down, an RPC error, the account out of
    funds…) is logged and the pass tried again after a delay that doubles each time, from `every` up to
    MAX_BACKOFF: the thread never ends before `stop`. `status()` tells how it fares.
    """

    def __init__(
        self,
        loop: Loop,
        every: float = KEEP_EVERY,
        max_steps: int = SETTLEMENT_STEPS,
        on_settled: Callable[[SettleResult], None] | None = None,
        from_block: int = 0,
    ) -> None:
        self.loop = loop
        self.changes = MeterChanges(loop, from_block)
        self.every = every
        self.max_steps = max_steps
        self.on_settled = on_settled
        self.stop = threading.Event()
        self.settled = 0
        self.last_settled: int | None = None  # the last interval this keeper settled
        self.failures = 0  # in a row: the pass is being retried
        self.last_error: str | None = None
        self.waiting_for_genesis = False
        self._genesis: int | None = None
        self._started = False  # genesis has passed: no need to read the chain's clock for it again
        self._thread: threading.Thread | None = None

    def status(self) -> dict[str, object]:
        """`running`, `waiting_for_genesis`, `settled`, `last_settled`, `failures` (retries in a row), `last_error`."""
        return {
            "running": self._thread is not None and self._thread.is_alive(),
            "waiting_for_genesis": self.waiting_for_genesis,
            "settled": self.settled,
            "last_settled": self.last_settled,
            "failures": self.failures,
            "last_error": self.last_error,
        }

    def _settled(self, result: SettleResult) -> None:
        self.settled += 1
        self.last_settled = result.interval
        log_settled(result)
        if self.on_settled:
            self.on_settled(result)

    def run_once(self) -> list[SettleResult]:
        """One pass: settle what is ready, pay receivables, apply due meter changes; errors propagate."""
        if self.starts_in() > 0:
            return []  # nothing is ready before genesis (and the contract's clock views refuse to answer)
        settled = settle_ready(self.loop, self.max_steps, stop=self.stop, on_settled=self._settled)
        if not self.stop.is_set():
            pay_receivables(self.loop)
            self.changes.apply_due(int(self.loop.sender.chain.w3.eth.get_block("latest")["timestamp"]))
        return settled

    def run(self) -> None:
        """Pass after pass until `stop` is set; the pass in progress finishes its transaction first."""
        log.info(
            "event=keeper_started loop=%s account=%s every_s=%g",
            self.loop.address,
            self.loop.sender.address,
            self.every,
        )
        while not self.stop.is_set():
            try:
                if self._waited_for_genesis():
                    continue
                self.run_once()
            except Exception as exc:  # a keeper that dies leaves the loop frozen: log, back off, go on
                self._failed(exc)
                continue
            if self.failures:
                log.info("event=recovered after_failures=%d", self.failures)
            self.failures, self.last_error = 0, None
            self.stop.wait(self.every)
        log.info("event=keeper_stopped settled=%d", self.settled)

    def starts_in(self) -> int:
        """Seconds until the loop's genesis by the chain's clock (its latest block); 0 or less once it runs."""
        if self._started:
            return 0
        if self._genesis is None:
            self._genesis = self.loop.config().genesis
        starts_in = self._genesis - chain_time(self.loop.sender.chain)
        self._started = starts_in <= 0
        return starts_in

    def _waited_for_genesis(self) -> bool:
        """Before the loop's genesis, wait (at most one period) and say so; False once the loop runs."""
        starts_in = self.starts_in()
        if starts_in <= 0:
            if self.waiting_for_genesis:
                log.info("event=genesis_reached")
            self.waiting_for_genesis = False
            return False
        if not self.waiting_for_genesis:
            log.info("event=waiting_for_genesis genesis=%d starts_in_s=%d", self._genesis, starts_in)
        self.waiting_for_genesis = True
        self.stop.wait(min(starts_in, self.every))
        return True

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        delay = min(self.every * 2 ** (self.failures - 1), max(MAX_BACKOFF, self.every))
        self.last_error = describe_error(exc, self.loop.sender.chain.url)
        expected = isinstance(exc, DaiseeError | OSError | Web3Exception)  # OSError: requests' connection errors
        log.log(
            logging.WARNING if expected else logging.ERROR,
            "event=retry error=%s failures=%d retry_in_s=%g",
            _quoted(self.last_error),
            self.failures,
            delay,
            exc_info=not expected,  # a bug: its traceback goes to the log, and the keeper goes on
        )
        self.stop.wait(delay)

    def start(self) -> None:
        """Run in a background thread (see `close`)."""
        self._thread = threading.Thread(target=self.run, name="keeper", daemon=True)
        self._thread.start()

    def close(self, timeout: float) -> bool:
        """Stop the background thread; False if a transaction still runs after `timeout` seconds."""
        self.stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()


def _quoted(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'
