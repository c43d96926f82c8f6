"""The signal as retained MQTT messages, for plugs and home automation that read a broker.

`daisee/<loop>/signal` holds the native shape without the steps' detail (about 1 kB for 36 hours of
quarter-hours: within a Tasmota's default MQTT buffer); `daisee/<loop>/signal/score` the score of the step
under way, alone, for a rule that switches on it; `daisee/<loop>/signal/level` its colour. Retained, so a
device that connects later reads the current signal at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from daisee.errors import DaiseeError
from daisee.flex.forecast import Expected
from daisee.flex.signal import Signal, level, score

_KEEPALIVE_SECONDS = 60
_COMPACT = ("loop", "computed_at", "start", "end", "interval", "profile", "optimise")


def topic(loop: str) -> str:
    return f"daisee/{loop}/signal"


def compact(signal: Signal) -> dict[str, Any]:
    """What the signal topic carries: the profile of scores and the step under way."""
    full = signal.as_json(consumption=False, production=False)
    current = signal.current()
    now = None if current is None else {"start": current.start, "end": current.end} | _score_of(current)
    return {name: full[name] for name in _COMPACT} | {"now": now}


def _score_of(step: Expected) -> dict[str, object]:
    value = score(step)
    return {"score": value, "level": level(value)}


@dataclass(frozen=True)
class Broker:
    """Where to publish: a broker's host and port, and a user name and password if it asks for them."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, username: str | None = None, password: str | None = None) -> Broker:
        """`HOST` or `HOST:PORT`."""
        host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DaiseeError(f"MQTT broker {text!r}: give HOST or HOST:PORT, e.g. 127.0.0.1:1883")
        return cls(host, int(port), username, password)


class SignalPublisher:
    """A connection to `broker` that publishes a loop's signal, retained, at QoS 1."""

    def __init__(self, broker: Broker, loop: str, timeout: float = 10.0) -> None:
        self.topic = topic(loop)
        self._where = f"MQTT broker {broker.host}:{broker.port}"
        self._connected = threading.Event()
        self._refused: str | None = None
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.connect_timeout = timeout
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        self._client.on_connect = self._on_connect
        try:
            self._client.connect(broker.host, broker.port, _KEEPALIVE_SECONDS)
        except (OSError, ValueError) as exc:
            raise DaiseeError(f"cannot reach the {self._where} ({exc}): check it runs, its host and port") from None
        self._client.loop_start()
        if not self._connected.wait(timeout) or self._refused:
            self.close()
            raise DaiseeError(f"the {self._where} {self._refused or 'did not answer as an MQTT broker'}")

    def publish(self, signal: Signal) -> None:
        """Publish `signal` (paho queues it while the broker is away and sends it on reconnecting)."""
        current = signal.current()
        messages = [(self.topic, json.dumps(compact(signal), separators=(",", ":")))]
        if current is not None:
            messages += [(f"{self.topic}/score", str(score(current))), (f"{self.topic}/level", level(score(current)))]
        for name, payload in messages:
            self._client.publish(name, payload, qos=1, retain=True)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self._refused = f"refused the connection ({reason}): check the user name and password"
        self._connected.set()
