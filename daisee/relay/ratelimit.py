"""At most N events per key in any 60 seconds (a sliding window): readings per meter, so one runaway gateway
cannot flood the relay (only readings signed by the meter's own key count, so nobody can use up a
neighbour's allowance), and refused posts per client, so nobody makes the relay read the chain for garbage.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

WINDOW_SECONDS = 60.0
Key = TypeVar("Key", bound=Hashable)


class RateLimiter(Generic[Key]):
    """Per-key sliding window; not thread-safe (the intake calls it under its lock)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._seen: dict[Key, deque[float]] = {}

    def over(self, wanted: Counter[Key], now: float) -> Key | None:
        """The first key that would exceed its allowance by taking `wanted[key]` more events, or None."""
        for key, count in wanted.items():
            seen = self._seen.get(key)
            while seen and seen[0] <= now - WINDOW_SECONDS:
                seen.popleft()
            if seen is not None and not seen:
                del self._seen[key]  # keys that went quiet take no memory
                seen = None
            if (len(seen) if seen else 0) + count > self.per_minute:
                return key
        return None

    def record(self, taken: Counter[Key], now: float) -> None:
        for key, count in taken.items():
            self._seen.setdefault(key, deque()).extend([now] * count)
