"""An MQTT subscription (paho-mqtt 2.x) as a blocking iterator of messages, shared by the MQTT gateways."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from daisee.errors import DaiseeError

log = logging.getLogger(__name__)

_KEEPALIVE_SECONDS = 60


@dataclass(frozen=True)
class MqttMessage:
    """A message as received: `received` is the local clock (unix seconds) when it arrived."""

    topic: str
    payload: bytes
    received: float


def topic_level(value: str, what: str) -> str:
    """`value` if it can stand as one level of a topic; a DaiseeError naming `what` otherwise."""
    if not value or any(c in value for c in "/+#\0"):
        raise DaiseeError(f"{what} {value!r} is not an MQTT topic level: give a name without '/', '+' or '#'")
    return value


class MqttSubscription:
    """Messages on `topics` from the broker at `host`:`port`, connected and subscribed on return.

    paho's network thread reconnects and subscribes again after the broker restarts (messages published
    meanwhile are lost). `close()`, from any thread, ends `messages()`.
    """

    def __init__(
        self,
        host: str,
        port: int,
        topics: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._where = f"MQTT broker {host}:{port}"
        self._topics = list(topics)
        self._queue: queue.Queue[MqttMessage | None] = queue.Queue()
        self._closed = threading.Event()
        self._ready = threading.Event()
        self._failure: str | None = None
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.connect_timeout = timeout
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        try:
            self._client.connect(host, port, _KEEPALIVE_SECONDS)
        except (OSError, ValueError) as exc:
            raise DaiseeError(f"cannot reach the {self._where} ({exc}): check it runs, its host and port") from None
        self._client.loop_start()
        if not self._ready.wait(timeout):
            self._failure = f"did not confirm the subscription within {timeout} s: check that it is an MQTT broker"
        if self._failure:
            self.close()
            raise DaiseeError(f"{self._where} {self._failure}")

    def messages(self) -> Iterator[MqttMessage]:
        """Messages in the order they arrive, until `close()`."""
        while not self._closed.is_set():
            message = self._queue.get()
            if message is None:
                return
            yield message

    def close(self) -> None:
        """Disconnect and end `messages()`; safe to call twice."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._client.disconnect()
        self._client.loop_stop()
        self._queue.put(None)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self._fail(f"refused the connection ({reason}): check the user name and password")
            return
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode], properties: Any
    ) -> None:
        refused = [topic for topic, reason in zip(self._topics, reasons, strict=False) if reason.is_failure]
        if refused:
            self._fail(f"refused the subscription to {', '.join(refused)}: check the broker's access rules")
            return
        self._ready.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._queue.put(MqttMessage(message.topic, bytes(message.payload), time.time()))

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode, properties: Any
    ) -> None:
        if not self._closed.is_set():
            log.warning("lost the %s (%s); reconnecting", self._where, reason)

    def _fail(self, failure: str) -> None:
        """Before the first subscription: make the constructor raise. After: log, and let paho retry."""
        if self._ready.is_set():
            log.error("%s %s", self._where, failure)
            return
        self._failure = failure
        self._ready.set()
