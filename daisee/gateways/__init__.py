"""Meter gateways: each turns one meter source into timestamped cumulative indices in Wh.

A gateway knows nothing of chains or keys (no web3 here): the oracle samples it at interval
boundaries, signs and sends. Sources: Linky TIC and DSMR P1 (serial), OpenEnergyMonitor and Tasmota
(MQTT), Shelly (HTTP), a CSV load curve and the simulator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

MAX_INDEX_WH = 2**64  # the on-chain index is a uint64 (Wh): a larger value is garbage, never a reading


@dataclass(frozen=True)
class MeterSample:
    """Cumulative indices read from a meter at `timestamp` (unix seconds).

    `import_wh`/`export_wh` are None when the source gave no trustworthy value (a group that failed its
    checksum, a register the meter does not have). `meter` is the address as read (ADSC, equipment id):
    for local debugging only, never sent on-chain. `rejected` names what failed its checksum or CRC.
    """

    timestamp: float
    import_wh: int | None
    export_wh: int | None
    meter: str | None = None
    rejected: tuple[str, ...] = ()


class Gateway(Protocol):
    """A meter source. `samples()` blocks and yields samples as the meter reports them."""

    def samples(self) -> Iterator[MeterSample]: ...

    def close(self) -> None: ...
