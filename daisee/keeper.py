"""Keep a loop moving: finalize the intervals that may be finalized and settle them (anyone may)."""

from __future__ import annotations

from daisee.errors import DaiseeError
from daisee.loop import SETTLEMENT_STEPS, Loop


def advance(loop: Loop, max_steps: int = SETTLEMENT_STEPS) -> list[int]:
    """Finalize and settle every interval that is ready; returns the intervals settled.

    An interval is ready once it has ended and every active meter reported it or its grace period
    passed; the contract decides, so this simply stops at the first refusal.
    """
    settled = []
    current = loop.current_interval()
    while loop.next_to_finalize() < current:
        try:
            loop.finalize(loop.next_to_finalize())
        except DaiseeError as exc:
            if "IntervalStillOpen" not in str(exc):
                raise
            break
    while loop.next_to_settle() < loop.next_to_finalize():
        settled.append(loop.settle(max_steps).interval)
    return settled
