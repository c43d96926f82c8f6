"""What the relay takes in: a POST body parsed, each reading checked off-chain, then queued — or refused.

A POST with several readings is all-or-nothing: if any reading is refused, none is queued and the answer
names the first refused reading by its index, so no gas is ever spent on a reading the relay could tell
is garbage. A client that cannot fix a batch can send its readings one by one.

A refusal's body is {"error": "<one line>"}, plus "index" (multi-reading posts) and "reason" where the loop
would have refused the reading too, by the contract's own rules: 422 for UNKNOWN_METER, BAD_SIGNATURE,
METER_INACTIVE, NOT_YET_ACTIVE (before the meter's first interval), INDEX_DECREASED, FLOW_NOT_ALLOWED (export
from a consumer, import into a producer) and ABOVE_METER_LIMIT (more energy since the meter's last accepted
reading than its limit allows over that time); 409 for STALE_INTERVAL (the chain already has this interval or
a later one). A 409 without a reason is a reading the relay already holds: GET /readings/<meter>/<interval>
tells its fate. The calendar (an interval not over, or too far ahead of settlement) is left to the chain.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from daisee.chain.connect import describe_error
from daisee.domain import SETTLEMENT_LAG, RejectReason
from daisee.errors import DaiseeError
from daisee.loop import MeterInfo
from daisee.readings import SignedReading
from daisee.relay.logs import log_event
from daisee.relay.meters import ChainReadNeededError, MeterCache, elapsed_seconds, energy_since_last
from daisee.relay.queue import DuplicateReadingError, ReadingQueue
from daisee.relay.ratelimit import RateLimiter
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

MAX_BODY_BYTES = 1 << 20
REFUSALS_PER_MINUTE = 120  # refused posts a client may make in a minute (an honest gateway makes almost none)
_SHAPE = 'one signed reading as a JSON object, or {"readings": [...]}'


class RefusedError(Exception):
    """A request the relay will not take: the HTTP status and a one-line message."""

    def __init__(self, status: int, message: str, index: int | None = None, reason: RejectReason | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.index = index
        self.reason = reason

    def as_json(self) -> dict[str, object]:
        """`error`; `index` for a multi-reading post; `reason`, the loop's reject reason, where it applies."""
        body: dict[str, object] = {"error": self.message}
        if self.index is not None:
            body["index"] = self.index
        if self.reason is not None:
            body["reason"] = self.reason.name
        return body


def parse_readings(body: bytes) -> list[SignedReading]:
    """The signed readings in a POST body (400 if it is not JSON of the right shape)."""
    try:
        data = parse_untrusted(body, max_bytes=MAX_BODY_BYTES)
    except UntrustedJSONError as exc:
        raise RefusedError(400, f"body refused: {exc}: send {_SHAPE}") from None
    items, many = [data], False
    if isinstance(data, dict) and "readings" in data:
        items, many = data["readings"], True
        if set(data) != {"readings"} or not isinstance(items, list) or not items:
            raise RefusedError(400, f'"readings" must be a non-empty list and the only key: send {_SHAPE}')
    readings = []
    for index, item in enumerate(items):
        try:
            readings.append(SignedReading.from_json(item))
        except DaiseeError as exc:
            raise RefusedError(400, _prefix(index, many) + str(exc), index if many else None) from None
    return readings


@dataclass(frozen=True)
class CheckedPost:
    """A post's readings, parsed and checked, from `client` (its address); `signers`, the meter signer each
    reading's signature was checked against (the batcher recovers it again only if the meter's has changed)."""

    readings: list[SignedReading]
    signers: list[str]
    client: str

    @property
    def many(self) -> bool:
        return len(self.readings) > 1


def _prefix(index: int, many: bool) -> str:
    return f"reading #{index}: " if many else ""


class Intake:
    """Checks readings against the chain's view of their meters, the rate limit and the queue, then queues them.

    Checked posts are queued by one committer thread, every post waiting for it in one transaction and one
    write to disk (group commit): posts arriving together cost the disk once.
    """

    def __init__(
        self,
        meters: MeterCache,
        queue: ReadingQueue,
        limiter: RateLimiter[bytes],
        on_queued: Callable[[], None],
        refusals: RateLimiter[str] | None = None,
    ) -> None:
        self.meters = meters
        self.queue = queue
        self.limiter = limiter  # used by the committer thread only
        self.refusals = refusals or RateLimiter(REFUSALS_PER_MINUTE)
        self.on_queued = on_queued
        self._lock = threading.Lock()  # the refusals
        self._posted = threading.Condition()  # the posts waiting for the committer, and closing
        self._waiting: list[tuple[CheckedPost, Future[int]]] = []
        self._closed = False
        self._committer = threading.Thread(target=self._commit_forever, name="relay-commit", daemon=True)

    def start(self) -> None:
        self._committer.start()

    def close(self) -> None:
        """Commit the posts still waiting, then stop the committer."""
        with self._posted:
            self._closed = True
            self._posted.notify()
        if self._committer.is_alive():
            self._committer.join()

    def admit(self, client: str) -> None:
        """Refuse (429) a client whose posts were refused REFUSALS_PER_MINUTE times in the last minute: its
        next posts are not even read until the minute has passed."""
        with self._lock:
            if self.refusals.over(Counter({client: 1}), time.monotonic()) is not None:
                raise RefusedError(
                    429,
                    f"client {client} had more than {self.refusals.per_minute} posts refused in a minute: "
                    "fix what the refusals said, then send again later",
                )

    def check(self, body: bytes, client: str, *, wait: bool = True) -> CheckedPost:
        """Parse and check a POST body from `client` (RefusedError if refused). Without `wait`, raises
        ChainReadNeededError where a meter or the calendar must be read from the chain first."""
        try:
            readings = parse_readings(body)
            signers = [self._check(signed, index, len(readings) > 1, wait) for index, signed in enumerate(readings)]
        except RefusedError as exc:
            self._refused(exc, client)
            raise
        return CheckedPost(readings, signers, client)

    def _refused(self, exc: RefusedError, client: str) -> None:
        if exc.status not in (429, 503):  # not the meter's allowance, not the node: the post itself
            with self._lock:
                self.refusals.record(Counter({client: 1}), time.monotonic())

    def commit(self, post: CheckedPost) -> Future[int]:
        """Queue every reading of a checked post or none, with the next group commit: the future gives how many
        were queued once they are on disk, or raises the refusal (409 already held, 429 the meter's rate)."""
        future: Future[int] = Future()
        with self._posted:
            if self._closed:
                raise RefusedError(503, "the relay is stopping: send it again later")
            self._waiting.append((post, future))
            self._posted.notify()
        return future

    def _commit_forever(self) -> None:
        while True:
            with self._posted:
                while not self._waiting and not self._closed:
                    self._posted.wait()
                if not self._waiting:
                    return
                group, self._waiting = self._waiting, []
            self._commit(group)

    def _commit(self, group: list[tuple[CheckedPost, Future[int]]]) -> None:
        """Apply each post's rate limit and queue it, all in one transaction; then tell each post its fate."""
        outcomes: list[int | Exception] = []
        try:
            with self.queue.adding(time.time()) as add:
                for post, _ in group:
                    outcomes.append(self._add(post, add))
        except Exception as exc:  # the disk: no post of this group was queued
            outcomes = [exc] * len(group)
        for (post, future), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, int):
                future.set_result(outcome)
                continue
            if isinstance(outcome, RefusedError):
                self._refused(outcome, post.client)
            future.set_exception(outcome)
        queued = sum(isinstance(outcome, int) for outcome in outcomes)
        if queued:
            log_event("queued", logging.DEBUG, posts=queued)
            self.on_queued()

    def _add(self, post: CheckedPost, add: Callable[[list[SignedReading], list[str]], None]) -> int | RefusedError:
        readings, many = post.readings, post.many
        wanted = Counter(signed.reading.meter_id for signed in readings)
        now = time.monotonic()
        over = self.limiter.over(wanted, now)
        if over is not None:
            index = next(i for i, s in enumerate(readings) if s.reading.meter_id == over)
            return RefusedError(
                429,
                f"{_prefix(index, many)}meter 0x{over.hex()} would send more than {self.limiter.per_minute} "
                "readings in a minute: slow down and send it again later",
                index if many else None,
            )
        try:
            add(readings, post.signers)
        except DuplicateReadingError as exc:
            reading = readings[exc.index].reading
            return RefusedError(
                409,
                f"{_prefix(exc.index, many)}meter 0x{reading.meter_id.hex()} interval {reading.interval} "
                f"is {exc}: nothing to do",
                exc.index if many else None,
            )
        self.limiter.record(wanted, now)
        return len(readings)

    def _check(self, signed: SignedReading, index: int, many: bool, wait: bool) -> str:
        """The meter signer `signed` is signed by, or RefusedError."""
        reading = signed.reading
        meter = f"meter 0x{reading.meter_id.hex()}"
        try:
            found, reason = self.meters.check(signed, wait=wait)
        except ChainReadNeededError:
            raise
        except Exception as exc:  # web3 and requests raise many types for one cause: the node did not answer
            error = describe_error(exc, self.meters.loop.sender.chain.url)
            log_event("meter_read_failed", meter=meter, error=error)
            raise RefusedError(503, f"cannot read {meter} from the chain ({error}): try again later") from None
        if reason is None:
            assert found is not None  # precheck refuses an unknown meter
            return found.signer
        status = 409 if reason is RejectReason.STALE_INTERVAL else 422
        message = _refusal(signed, found, reason, self.meters)
        raise RefusedError(status, _prefix(index, many) + message, index if many else None, reason)


def _refusal(signed: SignedReading, found: MeterInfo | None, reason: RejectReason, meters: MeterCache) -> str:
    """Why the loop would skip `signed`, in one line that says what to do."""
    reading, domain = signed.reading, meters.loop.domain
    meter = f"meter 0x{reading.meter_id.hex()}"
    if found is None:
        return f"{meter} is not registered in loop {domain.loop}"
    if reason is RejectReason.BAD_SIGNATURE:
        return (
            f"{meter} interval {reading.interval} is not signed by the meter's registered signer "
            f"for loop {domain.loop} on chain {domain.chain_id}"
        )
    if reason is RejectReason.METER_INACTIVE:
        return f"{meter} was removed from the loop"
    if reason is RejectReason.NOT_YET_ACTIVE:
        return (
            f"{meter} takes readings from interval {found.active_from} on (its admission and the loop's notice), "
            f"not {reading.interval}: send the later ones, the first carries the energy since the admission"
        )
    if reason is RejectReason.STALE_INTERVAL:
        return (
            f"{meter} already has interval {reading.interval} or a later one on chain "
            f"(its next interval is {found.next_interval}): nothing to do"
        )
    if reason is RejectReason.FUTURE_INTERVAL:
        return f"{meter} interval {reading.interval} is not over yet: send it once it ends"
    if reason is RejectReason.INTERVAL_FINALIZED:
        return (
            f"{meter} interval {reading.interval} is finalized: too late for it, the meter's next reading "
            "carries its energy"
        )
    if reason is RejectReason.SETTLEMENT_BACKLOG:
        return (
            f"{meter} interval {reading.interval} is more than {SETTLEMENT_LAG} intervals past the last settled "
            "one: send it again once the loop's keeper has caught up"
        )
    if reason is RejectReason.INDEX_DECREASED:
        return (
            f"{meter} interval {reading.interval} has indices (import {reading.import_wh}, export "
            f"{reading.export_wh} Wh) below its last accepted ones ({found.import_wh}, {found.export_wh} Wh): "
            "a reset or swapped meter: the PMO repairs it"
        )
    consumed, produced = energy_since_last(signed, found)
    if reason is RejectReason.FLOW_NOT_ALLOWED:
        flow = f"{produced} Wh exported" if produced and not found.export_limit_w else f"{consumed} Wh imported"
        return (
            f"{meter} is a {found.kind.name.lower()} but interval {reading.interval} has {flow} since its last "
            "accepted reading: a broken meter or a wrong kind: tell the PMO"
        )
    elapsed = elapsed_seconds(signed, found, meters.interval_seconds)
    over_import = consumed * 3600 > found.import_limit_w * elapsed
    flow, limit, energy = (
        ("imported", found.import_limit_w, consumed) if over_import else ("exported", found.export_limit_w, produced)
    )
    return (
        f"{meter} interval {reading.interval}: {energy} Wh {flow} since its last accepted reading is above its "
        f"limit of {limit} W over {elapsed} s ({limit * elapsed // 3600} Wh): a wrong limit or a broken meter: "
        "tell the PMO"
    )
