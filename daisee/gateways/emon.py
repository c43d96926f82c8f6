"""OpenEnergyMonitor over MQTT: `emon/<node>/<key>` topics, each carrying one plain number.

An emonTx4 publishes its cumulative energy inputs as `E1`..`E6` in Wh (and powers as `P1`..`P6` in W):
map the import input, and the export one if the household produces. Inputs in kWh take `scale=1000`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from decimal import Decimal, DecimalException

from daisee.errors import DaiseeError
from daisee.gateways import MAX_INDEX_WH, MeterSample
from daisee.gateways.mqtt import MqttMessage, MqttSubscription, topic_level

log = logging.getLogger(__name__)


class EmonGateway:
    """Samples from an emon node: one each time a mapped input updates, with the other's last value.

    `garbage` counts the payloads that were not a non-negative number; they are logged, never yielded.
    """

    def __init__(
        self,
        host: str,
        port: int,
        node: str,
        import_key: str = "E1",
        export_key: str | None = None,
        *,
        scale: int = 1,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if scale < 1:
            raise DaiseeError(f"scale {scale}: give the Wh in one unit of the input, 1 for Wh or 1000 for kWh")
        if export_key == import_key:
            raise DaiseeError(f"import and export both read {import_key!r}: map each to its own emon input")
        self._node = topic_level(node, "emon node")
        self._import_topic = f"emon/{node}/{topic_level(import_key, 'emon import key')}"
        topics = [self._import_topic]
        if export_key is not None:
            topics.append(f"emon/{node}/{topic_level(export_key, 'emon export key')}")
        self._scale = scale
        self.garbage = 0
        self._subscription = MqttSubscription(host, port, topics, username=username, password=password, timeout=timeout)

    def samples(self) -> Iterator[MeterSample]:
        """One sample per valid update of a mapped input, until `close()`."""
        imported: int | None = None
        exported: int | None = None
        for message in self._subscription.messages():
            wh = self._wh(message)
            if wh is None:
                continue
            if message.topic == self._import_topic:
                imported = wh
            else:
                exported = wh
            yield MeterSample(message.received, imported, exported, self._node)

    def close(self) -> None:
        self._subscription.close()

    def _wh(self, message: MqttMessage) -> int | None:
        """The payload in whole Wh (rounded down), or None after counting and logging it as garbage."""
        try:
            value = Decimal(message.payload.decode("ascii").strip()) * self._scale
        except (UnicodeDecodeError, DecimalException):
            value = Decimal("NaN")
        if value.is_finite() and 0 <= value < MAX_INDEX_WH:
            return math.floor(value)
        self.garbage += 1
        log.warning("%s: ignored %r, not a cumulative energy", message.topic, message.payload[:64])
        return None
