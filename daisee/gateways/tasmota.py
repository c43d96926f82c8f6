"""Tasmota over MQTT: the `tele/<topic>/SENSOR` JSON that a metering plug or smart-meter reader publishes.

Tasmota's energy driver reports `ENERGY.Total` in kWh, with three decimals by default (`EnergyRes`); a
device that measures export adds `ENERGY.ExportActive`. An SML smart-meter script names its own fields
(`SML.Total_in`, ...): both paths are configurable, and both are read in kWh, converted exactly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from decimal import Decimal

from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.gateways.mqtt import MqttMessage, MqttSubscription, topic_level
from daisee.untrusted_json import parse_untrusted

log = logging.getLogger(__name__)

_MAX_KWH = Decimal(MAX_INDEX_WH) / 1000
MAX_PAYLOAD_BYTES = 64 << 10  # a SENSOR message is well under 2 kB


class TasmotaGateway:
    """Samples from one Tasmota device, one per valid SENSOR message (every `TelePeriod`, 300 s by default).

    `import_field` and `export_field` are dotted paths into the message. `garbage` counts the messages
    without a non-negative number at every configured path; they are logged, never yielded.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topic: str,
        *,
        import_field: str = "ENERGY.Total",
        export_field: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._topic = topic_level(topic, "Tasmota topic")
        self._fields = (import_field, export_field)
        self.garbage = 0
        self._subscription = MqttSubscription(
            host, port, [f"tele/{topic}/SENSOR"], username=username, password=password, timeout=timeout
        )

    def samples(self) -> Iterator[MeterSample]:
        """One sample per valid SENSOR message, until `close()`."""
        for message in self._subscription.messages():
            values = self._read(message)
            if values is not None:
                yield MeterSample(message.received, values[0], values[1], self._topic)

    def close(self) -> None:
        self._subscription.close()

    def _read(self, message: MqttMessage) -> list[int | None] | None:
        """The configured fields in whole Wh (rounded down), or None after counting and logging the message."""
        try:
            document = parse_untrusted(message.payload, max_bytes=MAX_PAYLOAD_BYTES, parse_float=Decimal)
        except ValueError as exc:  # too large or deep, bad JSON, bad UTF-8, or an integer too long to parse
            self._garbage(message, str(exc))
            return None
        values: list[int | None] = []
        for path in self._fields:
            if path is None:
                values.append(None)
                continue
            value = document
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if not isinstance(value, Decimal | int) or isinstance(value, bool) or not 0 <= value < _MAX_KWH:
                self._garbage(message, f"no energy in kWh at {path}")
                return None
            values.append(math.floor(value * 1000))
        return values

    def _garbage(self, message: MqttMessage, why: str) -> None:
        self.garbage += 1
        log.warning("%s: ignored a message, %s: %r", message.topic, why, message.payload[:120])
