"""A simulated household's meter (daisee.simulation), read like a real one: for demos and oracle tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.gateways import MeterSample
from daisee.simulation import interval_energy, profiles


class SimulatedGateway:
    """Household `household` of a simulated neighbourhood, read every `step_seconds` from `start`.

    At each interval boundary `start + k * interval_seconds` the indices are those `simulate` gives, so
    those that `daisee demo` signs for the household at the same position, with the same seed and `start`
    as genesis; in between they grow linearly through the interval's energy, rounded down. `realtime` waits
    for the clock to reach each sample's timestamp; otherwise samples come as fast as they are read, for
    ever, until `close()`.
    """

    def __init__(
        self,
        kind: MeterKind,
        seed: int,
        household: int,
        start: int,
        step_seconds: int = 60,
        realtime: bool = False,
        *,
        interval_seconds: int = 900,
    ) -> None:
        if household < 0:
            raise DaiseeError(f"household {household}: give its position in the neighbourhood, from 0")
        if step_seconds <= 0 or interval_seconds % step_seconds:
            raise DaiseeError(
                f"a step of {step_seconds} s: give a divisor of the {interval_seconds} s interval, e.g. 60"
            )
        self._profile = profiles([kind] * (household + 1), seed)[household]
        self._seed = seed
        self._household = household
        self._start = start
        self._step = step_seconds
        self._interval = interval_seconds
        self._realtime = realtime
        self._closed = threading.Event()

    def samples(self) -> Iterator[MeterSample]:
        """Samples every `step_seconds` from `start`, until `close()`."""
        imported, exported = self._profile.initial_import_wh, self._profile.initial_export_wh
        boundary = self._start
        meter = f"sim/{self._seed}/{self._household}"
        while True:
            import_wh, export_wh = interval_energy(self._profile, boundary, self._interval, self._seed, self._household)
            for offset in range(0, self._interval, self._step):
                timestamp = boundary + offset
                if self._realtime:
                    self._closed.wait(max(0.0, timestamp - time.time()))
                if self._closed.is_set():
                    return
                yield MeterSample(
                    timestamp,
                    imported + import_wh * offset // self._interval,
                    exported + export_wh * offset // self._interval,
                    meter,
                )
            imported += import_wh
            exported += export_wh
            boundary += self._interval

    def close(self) -> None:
        self._closed.set()
