"""Shelly gateway against a small fake Shelly on loopback: Gen1 and Gen2 payloads, failures retried."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from daisee.errors import DaiseeError
from daisee.gateways import MeterSample
from daisee.gateways.shelly import ShellyGateway

_WAIT_SECONDS = 10
_POLL_SECONDS = 0.01

EMETER = {
    "power": 120.5,
    "reactive": 0,
    "voltage": 231.2,
    "is_valid": True,
    "total": 1234567.8,
    "total_returned": 910.2,
}
GEN1_EM = {
    "mac": "A4CF12F45678",
    "emeters": [
        EMETER,
        {"power": 0, "reactive": 0, "voltage": 231.2, "is_valid": True, "total": 55.9, "total_returned": 0},
    ],
}
GEN1_3EM = {
    "emeters": [
        {"power": 10, "is_valid": True, "total": 100.6, "total_returned": 10.5},
        {"power": 20, "is_valid": True, "total": 200.6, "total_returned": 20.5},
        {"power": 30, "is_valid": True, "total": 300.6, "total_returned": 30.5},
    ]
}
GEN2_EMDATA = {
    "id": 0,
    "a_total_act_energy": 1000.12,
    "a_total_act_ret_energy": 0,
    "b_total_act_energy": 2000.5,
    "b_total_act_ret_energy": 0,
    "c_total_act_energy": 3000,
    "c_total_act_ret_energy": 4500.99,
    "total_act": 6000.62,
    "total_act_ret": 4500.99,
}


class FakeShelly(ThreadingHTTPServer):
    """Answers each GET with the next scripted (status, body), then repeats the last; records the paths."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: list[tuple[int, str]] = []
        self.paths: list[str] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_response(self, path: str) -> tuple[int, str]:
        with self.lock:
            self.paths.append(path)
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]


class _Handler(BaseHTTPRequestHandler):
    server: FakeShelly

    def do_GET(self) -> None:
        status, body = self.server.next_response(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def shelly() -> Iterator[FakeShelly]:
    server = FakeShelly()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(_WAIT_SECONDS)


def take(gateway: ShellyGateway, count: int) -> list[MeterSample]:
    """The first `count` samples, read in a thread and stopped by `close()` from this one."""
    samples: queue.Queue[MeterSample] = queue.Queue()

    def read() -> None:
        for sample in gateway.samples():
            samples.put(sample)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        return [samples.get(timeout=_WAIT_SECONDS) for _ in range(count)]
    finally:
        gateway.close()
        thread.join(_WAIT_SECONDS)
        assert not thread.is_alive(), "samples() did not end after close()"


def test_gen1_em_reads_the_channel_totals_in_whole_wh(shelly: FakeShelly) -> None:
    shelly.script = [(200, json.dumps(GEN1_EM))]
    first, second = take(ShellyGateway(shelly.url, generation=1, channel=0, poll_seconds=_POLL_SECONDS), 2)
    assert (first.import_wh, first.export_wh) == (1234567, 910)
    assert (second.import_wh, second.export_wh) == (1234567, 910)
    assert second.timestamp >= first.timestamp
    assert shelly.paths[0] == "/status"
    [sample] = take(ShellyGateway(shelly.url + "/", channel=1, poll_seconds=_POLL_SECONDS), 1)
    assert (sample.import_wh, sample.export_wh) == (55, 0)


def test_gen1_3em_sums_the_phases_before_rounding_down(shelly: FakeShelly) -> None:
    shelly.script = [(200, json.dumps(GEN1_3EM))]
    [summed] = take(ShellyGateway(shelly.url, sum_emeters=True, poll_seconds=_POLL_SECONDS), 1)
    assert (summed.import_wh, summed.export_wh) == (601, 61)  # 601.8 and 61.5
    [phase] = take(ShellyGateway(shelly.url, channel=2, poll_seconds=_POLL_SECONDS), 1)
    assert (phase.import_wh, phase.export_wh) == (300, 30)


def test_gen2_reads_emdata_totals_for_the_channel(shelly: FakeShelly) -> None:
    shelly.script = [(200, json.dumps(GEN2_EMDATA))]
    [sample] = take(ShellyGateway(shelly.url, generation=2, channel=0, poll_seconds=_POLL_SECONDS), 1)
    assert (sample.import_wh, sample.export_wh) == (6000, 4500)
    assert shelly.paths[0] == "/rpc/EMData.GetStatus?id=0"
    take(ShellyGateway(shelly.url, generation=2, channel=1, poll_seconds=_POLL_SECONDS), 1)
    assert shelly.paths[-1] == "/rpc/EMData.GetStatus?id=1"


@pytest.mark.parametrize(
    ("generation", "failures"),
    [
        (1, [(500, "Internal Server Error"), (200, "{not json"), (200, "[]"), (200, '{"emeters": []}')]),
        (1, [(200, json.dumps({"emeters": [{**EMETER, "is_valid": False}]}))]),
        (1, [(200, json.dumps({"emeters": [{"total": "12", "total_returned": 0}]}))]),
        (1, [(200, json.dumps({"emeters": [{"total": -1.5, "total_returned": 0}]}))]),
        (1, [(200, json.dumps({"emeters": [{"total": 1e30, "total_returned": 0}]}))]),
        (2, [(500, '{"code": -105, "message": "Argument id, value 0 not found!"}'), (404, "Not Found")]),
        (2, [(200, '{"total_act": 12.5}'), (200, '{"total_act": null, "total_act_ret": 1}'), (200, "\xff")]),
        (2, [(200, '{"total_act": NaN, "total_act_ret": 1}'), (200, '{"total_act": true, "total_act_ret": 1}')]),
        (2, [(200, "[" * 100_000 + "]" * 100_000), (200, " " * (1 << 20) + "{}")]),
    ],
    ids=["errors", "invalid", "string", "negative", "huge", "rpc-errors", "missing", "not-numbers", "bombs"],
)
def test_failed_polls_are_counted_retried_and_never_yielded(
    shelly: FakeShelly, generation: int, failures: list[tuple[int, str]]
) -> None:
    good = GEN1_EM if generation == 1 else GEN2_EMDATA
    shelly.script = [*failures, (200, json.dumps(good))]
    gateway = ShellyGateway(shelly.url, generation=generation, poll_seconds=_POLL_SECONDS)
    [sample] = take(gateway, 1)
    assert (sample.import_wh, sample.export_wh) == ((1234567, 910) if generation == 1 else (6000, 4500))
    assert gateway.failed_polls == len(failures)


def test_an_unreachable_shelly_is_retried_until_closed() -> None:
    server = FakeShelly()
    url = server.url
    server.server_close()  # the port is now closed: connections are refused
    gateway = ShellyGateway(url, poll_seconds=_POLL_SECONDS, timeout=1)
    reader = threading.Thread(target=lambda: list(gateway.samples()), daemon=True)
    reader.start()
    reader.join(0.2)
    gateway.close()
    reader.join(_WAIT_SECONDS)
    assert not reader.is_alive()
    assert gateway.failed_polls >= 2


@contextlib.contextmanager
def socket_listening() -> Iterator[str]:
    """The URL of a loopback port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_slow_shelly_times_out_and_is_retried() -> None:
    with socket_listening() as url:
        gateway = ShellyGateway(url, poll_seconds=_POLL_SECONDS, timeout=0.2)
        reader = threading.Thread(target=lambda: list(gateway.samples()), daemon=True)
        reader.start()
        reader.join(0.5)
        gateway.close()
        reader.join(_WAIT_SECONDS)
    assert not reader.is_alive()
    assert gateway.failed_polls >= 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"url": "192.168.1.50"}, "give the device's address"),
        ({"url": "ftp://192.168.1.50"}, "give the device's address"),
        ({"url": "http://shelly", "generation": 3}, "use 1 for Gen1"),
        ({"url": "http://shelly", "generation": 2, "sum_emeters": True}, "sum_emeters is for Gen1 3EM"),
        ({"url": "http://shelly", "channel": -1}, "from 0"),
        ({"url": "http://shelly", "poll_seconds": 0}, "give positive seconds"),
    ],
)
def test_rejects_a_bad_configuration_in_one_line(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(DaiseeError, match=message) as error:
        ShellyGateway(**arguments)
    assert "\n" not in str(error.value)
