"""The relay's HTTP stack on loopback against hostile clients: slow, greedy, malformed; keep-alive, stop, OpenAPI.

The API behind it is a small in-memory one: what is under test is the server, not the loop (test_relay.py
drives the whole relay against a real chain).
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any

import jsonschema
import pytest
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak
from openapi_spec_validator import validate

from daisee import http_service
from daisee.readings import LoopDomain, Reading
from daisee.relay import server
from daisee.relay.intake import CheckedPost, RefusedError, parse_readings
from daisee.relay.queue import Fate, Status
from daisee.relay.server import RelayServer, openapi_description

DEADLINE = 1.5  # the request deadline these tests run with
DOMAIN = LoopDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
SIGNED = Reading(keccak(text="meter"), 3, 1_000, 20).sign(PrivateKey(keccak(text="gateway")), DOMAIN)


class MemoryApi:
    """Queues checked posts in a list, `slow` seconds after they are committed."""

    def __init__(self, slow: float = 0.0) -> None:
        self.slow = slow
        self.posted: list[CheckedPost] = []
        self.working = threading.Event()  # set once a post is in the API's hands

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "chain_id": DOMAIN.chain_id, "loop": DOMAIN.loop}

    def status(self) -> dict[str, Any]:
        return {"queue_depth": len(self.posted)}

    def fate(self, meter_id: bytes, interval: int) -> Fate | None:
        return Fate(Status.QUEUED) if (meter_id, interval) == (SIGNED.reading.meter_id, 3) else None

    def admit(self, client: str) -> None:
        """Every client may post."""

    def check(self, body: bytes, client: str, *, wait: bool = True) -> CheckedPost:
        readings = parse_readings(body)
        signers = [signed.recover(DOMAIN) for signed in readings]
        if None in signers:
            raise RefusedError(422, "not signed")
        return CheckedPost(readings, [str(signer) for signer in signers], client)

    def commit(self, post: CheckedPost) -> Future[int]:
        self.posted.append(post)
        self.working.set()
        future: Future[int] = Future()
        threading.Timer(self.slow, future.set_result, [len(post.readings)]).start()
        return future


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_service, "REQUEST_DEADLINE", DEADLINE)


@pytest.fixture
def api() -> MemoryApi:
    return MemoryApi()


@pytest.fixture
def relay(api: MemoryApi) -> Iterator[RelayServer]:
    started = RelayServer(("127.0.0.1", 0), api)
    started.start()
    yield started
    started.stop()


def connect(relay: RelayServer) -> http.client.HTTPConnection:
    host, port = relay.server_address
    return http.client.HTTPConnection(host, port, timeout=10)


def request(relay: RelayServer, method: str, path: str, body: bytes | None = None) -> tuple[int, Any, str]:
    """One request on a fresh connection: the status, the decoded JSON answer and the Connection header."""
    connection = connect(relay)
    try:
        connection.request(method, path, body, {"Content-Type": "application/json"} if body is not None else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read()), response.getheader("Connection", "")
    finally:
        connection.close()


def raw_socket(relay: RelayServer) -> socket.socket:
    return socket.create_connection(relay.server_address, timeout=10)


def closed_by_peer(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (anything it sends first is read and dropped)."""
    sock.settimeout(within)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


BODY = json.dumps(SIGNED.to_json()).encode()


def test_a_reading_is_posted_and_every_endpoint_answers(relay: RelayServer, api: MemoryApi) -> None:
    assert request(relay, "POST", "/readings", BODY)[:2] == (202, {"queued": 1})
    assert request(relay, "GET", "/health")[:2] == (200, api.health())
    assert request(relay, "GET", "/status")[:2] == (200, {"queue_depth": 1})
    meter = SIGNED.reading.meter_id.hex()
    assert request(relay, "GET", f"/readings/0x{meter}/3")[:2] == (
        200,
        {"status": "queued", "reason": None, "tx": None},
    )
    assert [post.client for post in api.posted] == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/nowhere", 404, "no endpoint /nowhere: use /health, /status or /readings"),
        ("POST", "/health", 405, "POST /health: post readings to /readings"),
        ("POST", "/nowhere", 404, "POST /nowhere: post readings to /readings"),
        ("GET", "/readings", 400, "ask GET /readings/<meter id: 64 hex digits>/<interval>"),
        ("GET", "/readings/xyz/3", 400, "ask GET /readings/<meter id: 64 hex digits>/<interval>"),
        ("GET", "/readings/" + "ab" * 32 + "/-1", 400, "ask GET /readings/<meter id: 64 hex digits>/<interval>"),
        ("GET", "/readings/" + "ab" * 32 + "/4", 404, f"no reading of meter 0x{'ab' * 32} for interval 4 here"),
        ("DELETE", "/readings", 405, "DELETE /readings: the relay answers GET and POST only"),
    ],
)
def test_a_misdirected_request_is_told_where_to_go(
    relay: RelayServer, method: str, path: str, status: int, error: str
) -> None:
    assert request(relay, method, path, b"" if method == "POST" else None)[:2] == (status, {"error": error})


def test_a_refusal_from_the_api_keeps_its_status_and_words(relay: RelayServer) -> None:
    forged = {**SIGNED.to_json(), "vs": "0x" + "00" * 32}
    assert request(relay, "POST", "/readings", json.dumps(forged).encode())[:2] == (422, {"error": "not signed"})
    status, answer, _ = request(relay, "POST", "/readings", b"[" * 100_000)
    assert status == 400
    assert answer["error"].startswith("body refused: nested deeper than 32 levels: send one signed reading")


def test_a_failure_inside_the_relay_is_a_500_in_one_line(relay: RelayServer, api: MemoryApi) -> None:
    api.posted = None  # type: ignore[assignment]  # the next post fails in the API

    assert request(relay, "POST", "/readings", BODY)[:2] == (500, {"error": "internal error: see the relay's log"})
    assert request(relay, "GET", "/health")[0] == 200  # and the relay stays up


def test_a_body_without_a_length_is_refused_and_the_connection_closed(relay: RelayServer) -> None:
    connection = connect(relay)
    connection.putrequest("POST", "/readings")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    connection.send(b"5\r\nhello\r\n0\r\n\r\n")
    response = connection.getresponse()

    assert response.status == 411
    assert json.loads(response.read())["error"].startswith("send the body with a Content-Length header")
    assert response.getheader("Connection") == "close"


def test_keep_alive_serves_many_requests_on_one_connection(relay: RelayServer, api: MemoryApi) -> None:
    connection = connect(relay)
    for _ in range(20):
        connection.request("POST", "/readings", BODY)
        response = connection.getresponse()
        assert response.status == 202
        response.read()
    local = connection.sock.getsockname()
    connection.request("GET", "/health")
    connection.getresponse().read()

    assert connection.sock.getsockname() == local  # the same socket throughout
    assert len(api.posted) == 20
    connection.close()


def test_an_idle_keep_alive_connection_is_closed(relay: RelayServer) -> None:
    connection = connect(relay)
    connection.request("GET", "/health")
    connection.getresponse().read()

    assert closed_by_peer(connection.sock, http_service.KEEP_ALIVE + 3)


@pytest.mark.parametrize("stage", ["headers", "body", "nothing"])
def test_a_client_trickling_its_request_is_dropped_at_the_deadline(
    relay: RelayServer, api: MemoryApi, stage: str
) -> None:
    """A byte every 0.3 s never trips a per-read timeout; the whole-request deadline still drops the client."""
    head = f"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n".encode()
    trickled = {"headers": head, "body": BODY, "nothing": b""}[stage]
    sock = raw_socket(relay)
    if stage == "body":
        sock.sendall(head)
    started = time.monotonic()
    dropped = False
    for byte in trickled[:-1]:
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            dropped = True
            break
        if closed_by_peer(sock, 0.3):
            dropped = True
            break
    dropped = dropped or closed_by_peer(sock, DEADLINE + 3)

    assert dropped
    assert DEADLINE - 0.2 < time.monotonic() - started < DEADLINE + 3
    assert api.posted == []
    sock.close()


def test_a_hundred_slow_clients_neither_starve_an_honest_one_nor_delay_the_stop(api: MemoryApi) -> None:
    relay = RelayServer(("127.0.0.1", 0), api)
    relay.start()
    slow = [raw_socket(relay) for _ in range(http_service.CLIENT_CONNECTIONS - 4)]
    for sock in slow:
        sock.sendall(b"POST /readings HTTP/1.1\r\nHost: x\r\nContent-Len")
    try:
        assert request(relay, "POST", "/readings", BODY)[:2] == (202, {"queued": 1})
        started = time.monotonic()
        relay.stop()
        assert time.monotonic() - started < http_service.STOP_GRACE + 1
    finally:
        relay.stop()
        for sock in slow:
            sock.close()


def test_stopping_lets_a_request_in_progress_finish() -> None:
    api = MemoryApi(slow=1.0)
    relay = RelayServer(("127.0.0.1", 0), api)
    relay.start()
    answers: list[tuple[int, Any, str]] = []
    poster = threading.Thread(target=lambda: answers.append(request(relay, "POST", "/readings", BODY)))
    poster.start()
    assert api.working.wait(10)
    relay.stop()
    poster.join(10)

    assert answers[0][:2] == (202, {"queued": 1})
    assert len(api.posted) == 1


def test_one_client_cannot_hold_every_connection(relay: RelayServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_service, "REQUEST_DEADLINE", 60.0)  # the held connections stay however slow the machine
    held = [raw_socket(relay) for _ in range(http_service.CLIENT_CONNECTIONS)]
    try:
        time.sleep(0.2)
        extra = raw_socket(relay)
        answer = extra.recv(4096)
        extra.close()
    finally:
        for sock in held:
            sock.close()

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ")
    assert json.loads(body) == {
        "error": f"client 127.0.0.1 has {http_service.CLIENT_CONNECTIONS} connections open: reuse them"
    }


def test_the_openapi_description_is_valid_and_served_and_names_every_route(relay: RelayServer) -> None:
    description = openapi_description()
    validate(description)  # OpenAPI 3.1

    assert request(relay, "GET", "/openapi.json")[:2] == (200, description)
    app_routes = {route.path for route in server.build_app(MemoryApi()).routes}  # type: ignore[attr-defined]
    assert set(description["paths"]) == app_routes | {server.READINGS_PATH}


def test_the_openapi_reading_schema_takes_what_the_relay_takes() -> None:
    schema = {
        **openapi_description()["components"]["schemas"]["SignedReading"],
        "$schema": jsonschema.Draft202012Validator.META_SCHEMA["$id"],
    }
    validator = jsonschema.Draft202012Validator(schema)
    written = SIGNED.to_json()
    as_strings = {**written, "interval": "3", "import_wh": "1000", "export_wh": "20"}
    s = int.from_bytes(SIGNED.vs, "big") & (2**255 - 1)
    v = 28 if SIGNED.vs[0] & 0x80 else 27
    one_signature = {key: value for key, value in written.items() if key not in ("r", "vs")}
    one_signature["signature"] = "0x" + (SIGNED.r + s.to_bytes(32, "big") + bytes([v])).hex()

    for accepted in (written, as_strings, one_signature):
        validator.validate(accepted)
        assert parse_readings(json.dumps(accepted).encode())[0] == SIGNED
    for refused in (
        {**written, "extra": 1},
        {**written, "interval": -1},
        {k: v for k, v in written.items() if k != "r"},
    ):
        assert not validator.is_valid(refused)
        with pytest.raises(RefusedError):
            parse_readings(json.dumps(refused).encode())


def test_the_relay_serves_on_ipv6_loopback_too(api: MemoryApi) -> None:
    try:
        relay = RelayServer(("::1", 0), api)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    relay.start()
    try:
        assert request(relay, "GET", "/health")[:2] == (200, api.health())
    finally:
        relay.stop()


@pytest.mark.parametrize(
    ("source", "forwarded", "counted_for"),
    [
        ("127.0.0.1", "198.51.100.7", "198.51.100.7"),  # a TLS proxy on this machine, for a household
        ("127.0.0.1", None, "127.0.0.1"),
        ("127.0.0.2", "198.51.100.7", "127.0.0.2"),  # anyone else's word for its address is not taken
    ],
    ids=["local-proxy", "no-header", "header-from-another-address"],
)
def test_a_post_is_counted_for_the_address_only_a_local_proxy_may_forward(
    relay: RelayServer, api: MemoryApi, source: str, forwarded: str | None, counted_for: str
) -> None:
    host, port = relay.server_address
    connection = http.client.HTTPConnection(host, port, timeout=10, source_address=(source, 0))
    headers = {"Content-Type": "application/json"} | ({"X-Forwarded-For": forwarded} if forwarded else {})
    try:
        connection.request("POST", "/readings", json.dumps(SIGNED.to_json()).encode(), headers)
        assert connection.getresponse().status == 202
    finally:
        connection.close()
    assert [post.client for post in api.posted] == [counted_for]
