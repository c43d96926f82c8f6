"""Build a gateway from the `[gateway]` table of an oracle configuration."""

from __future__ import annotations

import importlib
from typing import Any

from daisee.errors import DaiseeError
from daisee.gateways import Gateway

# kind -> (module, class); options of the table are the class's keyword arguments
GATEWAYS = {
    "tic": ("daisee.gateways.tic", "TicGateway"),
    "dsmr": ("daisee.gateways.dsmr", "DsmrGateway"),
    "emon": ("daisee.gateways.emon", "EmonGateway"),
    "tasmota": ("daisee.gateways.tasmota", "TasmotaGateway"),
    "shelly": ("daisee.gateways.shelly", "ShellyGateway"),
    "csv": ("daisee.gateways.csv_replay", "CsvReplayGateway"),
    "sim": ("daisee.gateways.simulated", "SimulatedGateway"),
}


def build_gateway(table: dict[str, Any]) -> Gateway:
    """The gateway `table["kind"]` with the table's other entries as its options."""
    options = dict(table)
    kind = options.pop("kind", None)
    if kind not in GATEWAYS:
        raise DaiseeError(f"[gateway] kind {kind!r} is unknown: use one of {', '.join(GATEWAYS)}")
    module, name = GATEWAYS[kind]
    cls = getattr(importlib.import_module(module), name)
    try:
        gateway: Gateway = cls(**options)
    except TypeError as exc:
        raise DaiseeError(f"[gateway] options for {kind} are wrong ({exc}): see oracles/{kind}.toml") from None
    return gateway
