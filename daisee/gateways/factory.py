"""Build a gateway from the `[gateway]` table of an oracle configuration."""

from __future__ import annotations

import importlib
from typing import Any

from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.gateways import Gateway

# kind -> (module, class); the table's other entries are the class's keyword arguments
GATEWAYS = {
    "tic": ("daisee.gateways.tic", "TicGateway"),
    "dsmr": ("daisee.gateways.dsmr", "DsmrGateway"),
    "emon": ("daisee.gateways.emon", "EmonGateway"),
    "tasmota": ("daisee.gateways.tasmota", "TasmotaGateway"),
    "shelly": ("daisee.gateways.shelly", "ShellyGateway"),
    "csv": ("daisee.gateways.csv_replay", "CsvReplayGateway"),
    "sim": ("daisee.gateways.simulated", "SimulatedGateway"),
}


def gateway_class(table: dict[str, Any]) -> tuple[type[Gateway], dict[str, Any]]:
    """The class `table["kind"]` names, and the keyword arguments the rest of the table gives it."""
    options = dict(table)
    kind = options.pop("kind", None)
    if kind not in GATEWAYS:
        raise DaiseeError(f"[gateway] kind {kind!r} is unknown: use one of {', '.join(GATEWAYS)}")
    if kind == "sim":  # `kind` names the gateway here; the simulated household's kind is `meter_kind`
        options["kind"] = MeterKind.parse(str(options.pop("meter_kind", "prosumer")))
    module, name = GATEWAYS[kind]
    cls: type[Gateway] = getattr(importlib.import_module(module), name)
    return cls, options


def build_gateway(table: dict[str, Any]) -> Gateway:
    """The gateway the `[gateway]` table describes, connected to its source."""
    cls, options = gateway_class(table)
    try:
        return cls(**options)
    except TypeError as exc:
        raise DaiseeError(f"[gateway] options for {table['kind']} are wrong ({exc}): see oracles/") from None
