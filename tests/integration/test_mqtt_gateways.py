"""OpenEnergyMonitor and Tasmota gateways against a real mosquitto broker on loopback."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

from daisee.errors import DaiseeError
from daisee.gateways import Gateway, MeterSample
from daisee.gateways.emon import EmonGateway
from daisee.gateways.mqtt import MqttSubscription
from daisee.gateways.tasmota import TasmotaGateway
from tests.mosquitto import Broker

_WAIT_SECONDS = 10


class Reader:
    """Runs a gateway's `samples()` in a thread, as the oracle would; `close()` stops it from this one."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.samples: queue.Queue[MeterSample] = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for sample in self.gateway.samples():
            self.samples.put(sample)

    def take(self, count: int) -> list[tuple[int | None, int | None]]:
        return [self._values(self.samples.get(timeout=_WAIT_SECONDS)) for _ in range(count)]

    @staticmethod
    def _values(sample: MeterSample) -> tuple[int | None, int | None]:
        return sample.import_wh, sample.export_wh

    def close(self) -> None:
        self.gateway.close()
        self.thread.join(_WAIT_SECONDS)
        assert not self.thread.is_alive(), "samples() did not end after close()"


class Publisher:
    def __init__(self, broker: Broker) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: str | bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(_WAIT_SECONDS)


@pytest.fixture
def publisher(mosquitto: Broker) -> Iterator[Publisher]:
    publisher = Publisher(mosquitto)
    yield publisher
    publisher.client.disconnect()
    publisher.client.loop_stop()


@pytest.fixture
def reading() -> Iterator[list[Reader]]:
    """Readers to start; each is closed after the test, and must stop."""
    readers: list[Reader] = []
    yield readers
    for reader in readers:
        reader.close()


@contextlib.contextmanager
def socket_port(listen: bool = False) -> Iterator[int]:
    """A loopback port where nothing answers: refused, or (`listen`) accepted but never spoken to."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if listen:
            sock.listen()
        yield sock.getsockname()[1]


def start(readers: list[Reader], gateway: Gateway) -> Reader:
    readers.append(Reader(gateway))
    return readers[-1]


def test_emon_yields_a_sample_per_update_with_the_other_input_last_value(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = EmonGateway(mosquitto.host, mosquitto.port, "emontx4", "E1", export_key="E2")
    reader = start(reading, gateway)
    publisher.publish("emon/emontx4/E1", "1234.9")
    publisher.publish("emon/emontx4/P1", "560")  # a power input: not mapped
    publisher.publish("emon/other/E2", "777")  # another node
    publisher.publish("emon/emontx4/E2", "56")
    publisher.publish("emon/emontx4/E1", "1300")
    assert reader.take(3) == [(1234, None), (1234, 56), (1300, 56)]
    assert reader.samples.empty()
    assert gateway.garbage == 0


def test_emon_counts_garbage_payloads_and_never_yields_them(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = EmonGateway(mosquitto.host, mosquitto.port, "emonpi")
    reader = start(reading, gateway)
    garbage: list[str | bytes] = ["abc", "", "nan", "inf", "-5", "1e999999999", "12 34", b"\xff\xfe"]
    for payload in garbage:
        publisher.publish("emon/emonpi/E1", payload)
    publisher.publish("emon/emonpi/E1", " 42 ")
    assert reader.take(1) == [(42, None)]
    assert gateway.garbage == 8


def test_emon_scales_a_kwh_input_to_whole_wh_exactly(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = EmonGateway(mosquitto.host, mosquitto.port, "meter", "kwh_in", "kwh_out", scale=1000)
    reader = start(reading, gateway)
    publisher.publish("emon/meter/kwh_in", "4.185")  # 4185 Wh, where float arithmetic gives 4184.999...
    publisher.publish("emon/meter/kwh_out", "0.0019")
    sample = reader.samples.get(timeout=_WAIT_SECONDS)
    assert (sample.import_wh, sample.export_wh, sample.meter) == (4185, None, "meter")
    assert reader.take(1) == [(4185, 1)]


def test_tasmota_reads_total_and_export_in_kwh_as_exact_wh(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = TasmotaGateway(mosquitto.host, mosquitto.port, "tasmota_A1B2C3", export_field="ENERGY.ExportActive")
    reader = start(reading, gateway)
    publisher.publish(
        "tele/tasmota_A1B2C3/SENSOR",
        '{"Time":"2024-05-01T12:00:00","ENERGY":{"TotalStartTime":"2024-01-01T00:00:00","Total":4.185,'
        '"Yesterday":1.2,"Today":0.5,"Power":120,"ExportActive":12.0019}}',
    )
    publisher.publish("tele/tasmota_A1B2C3/STATE", '{"ENERGY":{"Total":9}}')  # not the SENSOR topic
    publisher.publish("tele/tasmota_A1B2C3/SENSOR", '{"ENERGY":{"Total":5,"ExportActive":13}}')
    sample = reader.samples.get(timeout=_WAIT_SECONDS)
    assert (sample.import_wh, sample.export_wh, sample.meter) == (4185, 12001, "tasmota_A1B2C3")
    assert reader.take(1) == [(5000, 13000)]
    assert gateway.garbage == 0


def test_tasmota_counts_malformed_messages_and_never_yields_them(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = TasmotaGateway(mosquitto.host, mosquitto.port, "plug")
    reader = start(reading, gateway)
    garbage: list[str | bytes] = [
        "not json",
        '{"ENERGY":{"Total":1.5',
        "[1, 2]",
        '{"ENERGY":{}}',
        '{"ENERGY":{"Total":"1.5"}}',
        '{"ENERGY":{"Total":-1.5}}',
        '{"ENERGY":{"Total":true}}',
        '{"ENERGY":{"Total":NaN}}',
        '{"ENERGY":{"Total":[1.0,2.0,3.0]}}',
        '{"ENERGY":{"Total":1e400}}',
        b'{"ENERGY":{"Total":\xff}}',
        "[" * 100_000 + "]" * 100_000,  # a depth bomb: refused before json.loads, the reader stays up
    ]
    for payload in garbage:
        publisher.publish("tele/plug/SENSOR", payload)
    publisher.publish("tele/plug/SENSOR", '{"ENERGY":{"Total":0.001}}')
    assert reader.take(1) == [(1, None)]
    assert gateway.garbage == 12


def test_tasmota_without_the_configured_export_field_is_garbage(
    mosquitto: Broker, publisher: Publisher, reading: list[Reader]
) -> None:
    gateway = TasmotaGateway(
        mosquitto.host, mosquitto.port, "reader", import_field="SML.Total_in", export_field="SML.Total_out"
    )
    reader = start(reading, gateway)
    publisher.publish("tele/reader/SENSOR", '{"SML":{"Total_in":100.25}}')
    publisher.publish("tele/reader/SENSOR", '{"SML":{"Total_in":100.5,"Total_out":2}}')
    assert reader.take(1) == [(100500, 2000)]
    assert gateway.garbage == 1


def test_close_from_another_thread_ends_a_waiting_gateway(mosquitto: Broker) -> None:
    reader = Reader(EmonGateway(mosquitto.host, mosquitto.port, "idle"))
    reader.close()  # asserts the reading thread ended


def test_unreachable_broker_is_a_one_line_error() -> None:
    with socket_port() as port, pytest.raises(DaiseeError, match=rf"cannot reach the MQTT broker 127.0.0.1:{port}"):
        EmonGateway("127.0.0.1", port, "node")


def test_a_listener_that_never_acknowledges_is_a_one_line_error() -> None:
    with socket_port(listen=True) as port, pytest.raises(DaiseeError, match="did not confirm the subscription"):
        MqttSubscription("127.0.0.1", port, ["emon/node/E1"], timeout=0.5)


@pytest.mark.parametrize(
    ("node", "key"), [("a/b", "E1"), ("node", "#"), ("+", "E1"), ("", "E1")], ids=["slash", "hash", "plus", "empty"]
)
def test_rejects_names_that_are_not_a_topic_level(node: str, key: str) -> None:
    with pytest.raises(DaiseeError, match="not an MQTT topic level"):
        EmonGateway("127.0.0.1", 1, node, key)
