"""From a meter's stream of samples to one reading per settlement interval.

The reading for interval t carries the indices of the first trustworthy sample at or after t's end.
After a gap (the gateway was off) only the last complete interval is read: cumulative indices carry
the missed intervals' energy into it, so nothing is lost. A sample without an import index (a frame
that failed its checksum) is counted, not used; indices below the last signed ones (a gateway reset,
a meter swap) are never signed and raise an alert instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from daisee.gateways import MeterSample
from daisee.readings import Reading


@dataclass
class Sampler:
    meter_id: bytes
    genesis: int
    interval_seconds: int
    floor: Reading | None = None  # the last reading signed: its indices and interval bound the next
    corrupt: int = 0
    alerts: list[str] = field(default_factory=list)

    def interval_at(self, timestamp: float) -> int:
        return int((timestamp - self.genesis) // self.interval_seconds)

    def feed(self, sample: MeterSample) -> Reading | None:
        """The reading this sample completes, if it crosses an interval boundary."""
        if sample.import_wh is None:
            self.corrupt += 1
            return None
        last_export = self.floor.export_wh if self.floor else 0
        export_wh = sample.export_wh if sample.export_wh is not None else last_export
        interval = self.interval_at(sample.timestamp) - 1  # the last interval that has ended
        if interval < 0 or (self.floor is not None and interval <= self.floor.interval):
            return None
        if self.floor is not None and (sample.import_wh < self.floor.import_wh or export_wh < self.floor.export_wh):
            self.alerts.append(
                f"counter went backwards (import {self.floor.import_wh} -> {sample.import_wh} Wh, export "
                f"{self.floor.export_wh} -> {export_wh} Wh): gateway reset or meter swap? not signed; tell the PMO"
            )
            return None
        self.floor = Reading(self.meter_id, interval, sample.import_wh, export_wh)
        return self.floor
