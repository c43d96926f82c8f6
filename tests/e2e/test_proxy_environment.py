"""A proxy set in the environment ($HTTP_PROXY, as on a corporate network) carries calls to remote nodes,
never to a node or a relay on this machine (urllib and requests would route loopback through it unless
$NO_PROXY lists it)."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, rpc_answers
from daisee.errors import DaiseeError
from daisee.loopback import LOOPBACK
from daisee.oracle.outbox import SENT
from daisee.oracle.senders import RelaySender
from daisee.readings import LoopDomain, Reading

pytestmark = pytest.mark.node


class _RecordingProxy(socketserver.ThreadingTCPServer):
    """A loopback 'proxy' that counts the requests it gets and refuses them all with 502."""

    daemon_threads = True
    requests_seen = 0


class _Refuse(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        assert isinstance(self.server, _RecordingProxy)
        self.server.requests_seen += 1
        self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RecordingProxy]:
    server = _RecordingProxy((LOOPBACK, 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    address = f"http://{LOOPBACK}:{server.server_address[1]}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.setenv(name, address)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield server
    server.shutdown()
    server.server_close()


def test_a_node_on_loopback_is_reached_without_the_environments_proxy(
    anvil_node: LocalNode, proxy: _RecordingProxy
) -> None:
    chain = connect(anvil_node.url)
    assert chain.chain_id == 31337
    assert chain.w3.eth.block_number >= 0
    assert proxy.requests_seen == 0


def test_a_started_node_is_probed_without_the_environments_proxy(anvil_node: LocalNode, proxy: _RecordingProxy) -> None:
    assert rpc_answers(anvil_node.url, timeout=5)
    assert proxy.requests_seen == 0


class _Relay(BaseHTTPRequestHandler):
    """A relay's answers to a new reading: no fate yet, then queued."""

    def do_GET(self) -> None:
        self._answer(404, {"error": "not held"})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(202, {"queued": 1})

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: object) -> None:
        pass


def test_an_oracle_reaches_a_relay_on_loopback_without_the_environments_proxy(proxy: _RecordingProxy) -> None:
    relay = ThreadingHTTPServer((LOOPBACK, 0), _Relay)
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        domain = LoopDomain(31337, "0x" + "11" * 20)
        signed = Reading(b"\x01" * 32, 3, 100, 0).sign(b"\x02" * 32, domain)
        outcomes = RelaySender(f"http://{LOOPBACK}:{relay.server_address[1]}", timeout=5).send([signed])
    finally:
        relay.shutdown()
        relay.server_close()
    assert [outcome.status for outcome in outcomes.values()] == [SENT]
    assert proxy.requests_seen == 0


def test_a_remote_node_is_reached_through_the_environments_proxy(proxy: _RecordingProxy) -> None:
    # a TEST-NET-3 address: the request goes to the loopback proxy, nothing leaves the machine
    with pytest.raises(DaiseeError, match=r"cannot reach the RPC node at http://203\.0\.113\.7:8545"):
        connect("http://203.0.113.7:8545", timeout=5)
    assert proxy.requests_seen >= 1
