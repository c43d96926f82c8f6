"""How signed readings reach the chain: a direct transaction, or a relay that batches for the loop."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from daisee.domain import RejectReason
from daisee.errors import DaiseeError
from daisee.loop import Loop
from daisee.loopback import urlopen
from daisee.oracle.outbox import CONFIRMED, HELD, REJECTED, SENT
from daisee.readings import SignedReading
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

RETRY = "retry"  # something failed (node or relay unreachable): back off
WAIT = "wait"  # the chain is not ready for it yet (interval not over, settlement behind): ask again soon
# The chain may take these later (the interval has not ended, or settlement must catch up first).
MAX_ANSWER_BYTES = 64 << 10  # the relay's answers are a few hundred bytes
_TRANSIENT = {RejectReason.FUTURE_INTERVAL, RejectReason.SETTLEMENT_BACKLOG}
# The chain never takes this reading, but the meter's next one covers more time and carries its energy: the
# reading is held (HELD in daisee.oracle.outbox). Before the meter's first interval (the notice of its
# admission) that is expected; a flow the meter's kind cannot have, or more energy than its limits allow, is a
# wrong limit or a broken meter, which the PMO must hear of.
HELD_REASONS = {RejectReason.NOT_YET_ACTIVE, RejectReason.FLOW_NOT_ALLOWED, RejectReason.ABOVE_METER_LIMIT}
PMO_ALERTS = {RejectReason.FLOW_NOT_ALLOWED, RejectReason.ABOVE_METER_LIMIT}


@dataclass(frozen=True)
class Outcome:
    """What became of one reading: CONFIRMED, REJECTED (final, with its reason), HELD (its energy rides in the
    meter's next reading), SENT (await), RETRY or WAIT."""

    status: str
    reason: str | None = None


Key = tuple[bytes, int]


class ReadingSender(Protocol):
    def send(self, readings: list[SignedReading]) -> dict[Key, Outcome]: ...


def _key(signed: SignedReading) -> Key:
    return signed.reading.meter_id, signed.reading.interval


class DirectSender:
    """Submit readings in one transaction paid by the household's own account."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop

    def send(self, readings: list[SignedReading]) -> dict[Key, Outcome]:
        try:
            result = self.loop.submit(readings)
        except (DaiseeError, OSError) as exc:
            return {_key(r): Outcome(RETRY, str(exc)) for r in readings}
        outcomes = {(bytes(m), t): Outcome(CONFIRMED) for m, t in result.accepted}
        for meter_id, interval, reason in result.rejected:
            outcomes[(bytes(meter_id), interval)] = _after_rejection(reason)
        return outcomes


def _after_rejection(reason: RejectReason) -> Outcome:
    if reason is RejectReason.STALE_INTERVAL:
        return Outcome(CONFIRMED, "the chain already has this interval")  # idempotent re-send
    if reason in _TRANSIENT:
        return Outcome(WAIT, reason.name)
    if reason in HELD_REASONS:
        return Outcome(HELD, reason.name)
    return Outcome(REJECTED, reason.name)


def _relay_rejection(reason: str) -> Outcome:
    """What a relay's rejection reason (a RejectReason name) means for the outbox."""
    try:
        return _after_rejection(RejectReason[reason])
    except KeyError:
        return Outcome(REJECTED, reason)


class RelaySender:
    """POST readings to a relay (`daisee relay serve`) and ask it what became of them."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def send(self, readings: list[SignedReading]) -> dict[Key, Outcome]:
        return {_key(r): self._send_one(r) for r in readings}

    def _send_one(self, signed: SignedReading) -> Outcome:
        r = signed.reading
        status, body = self._request("GET", f"/readings/0x{r.meter_id.hex()}/{r.interval}")
        if status == 0:  # unreachable, or an answer that is not a bounded JSON object
            return Outcome(RETRY, str(body.get("error")))
        if status == 200:
            if body.get("status") == "accepted":
                return Outcome(CONFIRMED)
            if body.get("status") != "rejected":
                return Outcome(SENT, str(body.get("status")))
            outcome = _relay_rejection(str(body.get("reason")))
            if outcome.status != WAIT:
                return outcome
            # the chain was not ready: post it again, the relay queues it anew
        elif status != 404:
            return Outcome(RETRY, f"relay answered {status}")
        status, body = self._request("POST", "/readings", signed.to_json())
        if status in (200, 202):
            return Outcome(SENT)
        if status == 409:  # the relay holds it, or the chain already has it
            return Outcome(CONFIRMED) if body.get("reason") == RejectReason.STALE_INTERVAL.name else Outcome(SENT)
        if status == 422:  # the relay applies the loop's rules before queuing
            reason = body.get("reason")
            return _relay_rejection(str(reason)) if reason else Outcome(REJECTED, str(body.get("error")))
        return Outcome(RETRY, f"relay answered {status}: {body.get('error')}")

    def _request(self, method: str, path: str, payload: object = None) -> tuple[int, dict[str, object]]:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(self.url + path, data, {"Content-Type": "application/json"}, method=method)
        try:
            with urlopen(request, self.timeout) as response:
                return response.status, _answer(response.read(MAX_ANSWER_BYTES + 1))
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, _answer(exc.read(MAX_ANSWER_BYTES + 1))
            except (OSError, ValueError):
                return exc.code, {}
        except (OSError, ValueError) as exc:
            return 0, {"error": f"relay answer refused: {exc}" if isinstance(exc, UntrustedJSONError) else str(exc)}


def _answer(data: bytes) -> dict[str, object]:
    """A relay's JSON answer, which must be an object; UntrustedJSONError otherwise."""
    answer = parse_untrusted(data, max_bytes=MAX_ANSWER_BYTES)
    if not isinstance(answer, dict):
        raise UntrustedJSONError(f"a JSON {type(answer).__name__}, not an object")
    return answer
