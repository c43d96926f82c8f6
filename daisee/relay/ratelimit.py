"""At most N readings per meter in any 60 seconds (a sliding window), so one runaway gateway cannot flood the relay.

Only readings signed by the meter's own key count, so nobody can use up a neighbour's allowance.
"""

from __future__ import annotations

from collections import Counter, deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Per-meter sliding window; not thread-safe (the intake calls it under its lock)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[bytes, deque[float]] = {}

    def over(self, wanted: Counter[bytes], now: float) -> bytes | None:
        """The first meter that would exceed its allowance by taking `wanted[meter]` more readings, or None."""
        for meter_id, count in wanted.items():
            seen = self._seen.get(meter_id)
            while seen and seen[0] <= now - WINDOW_SECONDS:
                seen.popleft()
            if (len(seen) if seen else 0) + count > self.per_minute:
                return meter_id
        return None

    def record(self, taken: Counter[bytes], now: float) -> None:
        for meter_id, count in taken.items():
            self._seen.setdefault(meter_id, deque()).extend([now] * count)
