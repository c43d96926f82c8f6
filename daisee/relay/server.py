"""The relay's HTTP JSON API: Starlette on uvicorn and uvloop, in a thread of its own (see openapi.json, served
at /openapi.json); POST /readings, the hot path, is answered by plain ASGI in front of Starlette.

    POST /readings                       one signed reading, or {"readings": [...]}   → 202 {"queued": n}
                                         (numbers as JSON integers or decimal strings; the
                                         signature as r and vs, or one 65-byte `signature`)
    GET  /health                         → 200 {"status": "ok", "chain_id": …, "loop": …}
    GET  /status                         → 200 queue depth, totals, last batch, last error, keeper
    GET  /readings/<meter id hex>/<t>    → 200 {"status", "reason", "tx"}, 404 if the relay never had it
    GET  /openapi.json                   → the OpenAPI 3.1 description of these endpoints

Every refusal is a 4xx (5xx if the chain or the relay fails) with the body {"error": "<one line>"} (see
`daisee.relay.intake` for the extra keys of a refused POST). A rejected reading may be posted again.

The client a post is counted for is its connection's address, or the `X-Forwarded-For` address a proxy on
this machine (127.0.0.1) forwards it for; that header is ignored from anyone else.

Hostile clients are bounded: a request (headers and body) must arrive within REQUEST_DEADLINE or its
connection is dropped, a client holds at most CLIENT_CONNECTIONS connections and the relay MAX_CONNECTIONS
(503 beyond), idle keep-alive connections close after KEEP_ALIVE seconds, and the blocking work (signature
checks, the queue, reads from the chain) runs on a bounded pool of threads. Stopping lets the requests in
progress finish, for STOP_GRACE seconds at most.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from functools import cache
from importlib import resources
from typing import Any, Protocol

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from daisee.chain.connect import describe_error
from daisee.loopback import LOOPBACK
from daisee.relay.intake import MAX_BODY_BYTES, CheckedPost, RefusedError
from daisee.relay.logs import log_event
from daisee.relay.meters import ChainReadNeededError
from daisee.relay.queue import Fate

try:
    from uvloop import new_event_loop
except ImportError:  # uvloop runs on Unix only
    from asyncio import new_event_loop  # type: ignore[assignment]

REQUEST_DEADLINE = 10.0  # seconds a client may take to send a whole request, headers and body
KEEP_ALIVE = 5  # seconds an idle keep-alive connection stays open
MAX_CONNECTIONS = 512  # open connections; beyond, requests are answered 503
CLIENT_CONNECTIONS = 64  # open connections from one address; beyond, new ones are closed at once
STOP_GRACE = 5  # seconds stopping waits for requests in progress
START_TIMEOUT = 10.0
WORKER_THREADS = 4  # for the reads from the chain (checks the cached meters answer run on the event loop)
DISCARD_LIMIT = 16 * MAX_BODY_BYTES  # an oversize body up to this is read and dropped; a larger one is not read
_METER_ID = re.compile(r"(?:0x)?([0-9a-fA-F]{64})")
_INTERVAL = re.compile(r"[0-9]{1,10}")


class Api(Protocol):
    """What the HTTP layer serves."""

    def health(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def fate(self, meter_id: bytes, interval: int) -> Fate | None: ...

    def admit(self, client: str) -> None:
        """Refuse (RefusedError) a client before its body is read."""
        ...

    def check(self, body: bytes, client: str, *, wait: bool = True) -> CheckedPost:
        """Parse and check a POST body (RefusedError); without `wait`, ChainReadNeededError for a chain read."""
        ...

    def commit(self, post: CheckedPost) -> Future[int]:
        """Queue a checked post: how many readings were queued, once on disk (or its refusal)."""
        ...


class RelayServer:
    """The API on `address`, served by uvicorn on an event loop in a thread of its own."""

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        """Binds at once: raises OSError if the address is taken."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.create_server(address, family=family, backlog=MAX_CONNECTIONS)
        config = uvicorn.Config(
            _posting(api, build_app(api)),
            http=_DeadlineProtocol,
            loop="none",  # the loop is uvloop's, made in _serve
            log_level="warning",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            headers=[("server", "daisee-relay")],
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=STOP_GRACE,
            # a TLS proxy on this machine tells each household's address; nobody else is believed
            proxy_headers=True,
            forwarded_allow_ips=[LOOPBACK],
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="relay-http", daemon=True)

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self._socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        """Serve in the background; returns once requests are answered."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            self.stop()
            raise OSError(f"the HTTP server did not start within {START_TIMEOUT:g} s")

    def stop(self) -> None:
        """Stop listening, let the requests in progress finish (STOP_GRACE seconds at most), close."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(STOP_GRACE + KEEP_ALIVE)
        self._socket.close()

    def _serve(self) -> None:
        async def serve() -> None:
            # few threads for the blocking work: they share one interpreter lock, and more only queue for it
            anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
            await self._server.serve(sockets=[self._socket])

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve())


class _DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (llhttp's parser, through httptools) with a deadline for each whole request
    and caps on open connections.

    The deadline starts with the connection and again with the first byte of each next request, and ends
    once the request is complete (its last body byte parsed): a client that trickles its headers or its body
    is dropped when it passes, whatever the pace of its bytes. A connection over a cap is answered 503 at
    once and closed.
    """

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # asyncio sets TCP_NODELAY only on sockets whose protocol number is TCP's, and socket.create_server
        # leaves it 0: without it a response's body waits for the client's delayed ACK of its headers (40 ms)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        host = _host(self)
        if len(self.connections) > MAX_CONNECTIONS:
            self._turn_away(f"the relay has {MAX_CONNECTIONS} connections open: try again shortly")
        elif host is not None and sum(_host(c) == host for c in self.connections) > CLIENT_CONNECTIONS:
            self._turn_away(f"client {host} has {CLIENT_CONNECTIONS} connections open: reuse them")
        else:
            self._arm()

    def on_message_begin(self) -> None:
        if self._deadline is None:
            self._arm()  # a keep-alive connection's next request
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(REQUEST_DEADLINE, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log_event("slow_client_dropped", client=_host(self), after=REQUEST_DEADLINE)
            self.transport.close()

    def _turn_away(self, error: str) -> None:
        log_event("connection_refused", logging.WARNING, client=_host(self), error=error)
        body = json.dumps({"error": error}).encode()
        head = f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        self.transport.write(head.encode() + b"\r\nConnection: close\r\n\r\n" + body)
        self.transport.close()


def _host(protocol: object) -> str | None:
    """The client address of one of uvicorn's connections."""
    client = getattr(protocol, "client", None)
    return str(client[0]) if client else None


Endpoint = Callable[[Request], Awaitable[Response]]


def build_app(api: Api) -> Starlette:
    """The Starlette application serving `api`."""

    async def health(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(api.health))

    async def status(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(api.status))

    async def fate(request: Request) -> Response:
        meter, interval = request.path_params["meter"], request.path_params["interval"]
        meter_match = _METER_ID.fullmatch(meter)
        if meter_match is None or not _INTERVAL.fullmatch(interval):
            raise RefusedError(400, _ASK_FATE)
        meter_hex = meter_match[1].lower()
        found = await run_in_threadpool(api.fate, bytes.fromhex(meter_hex), int(interval))
        if found is None:
            raise RefusedError(404, f"no reading of meter 0x{meter_hex} for interval {interval} here")
        return JSONResponse(found.as_json())

    async def openapi(request: Request) -> Response:
        return Response(_openapi_document(), media_type="application/json")

    async def no_route(request: Request, exc: Exception) -> Response:
        return _refused(request, _misrouted(request, exc.status_code if isinstance(exc, HTTPException) else 404))

    routes = [
        Route("/health", _answering(health), methods=["GET"]),
        Route("/status", _answering(status), methods=["GET"]),
        Route("/readings/{meter}/{interval}", _answering(fate), methods=["GET"]),
        Route("/openapi.json", _answering(openapi), methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: no_route})


READINGS_PATH = "/readings"  # served in front of Starlette, by _posting
_INTERNAL_ERROR: dict[str, object] = {"error": "internal error: see the relay's log"}
_ASK_FATE = "ask GET /readings/<meter id: 64 hex digits>/<interval>"


def _posting(api: Api, app: ASGIApp) -> ASGIApp:
    """`app`, in front of which POST /readings, the relay's hot path, is answered as plain ASGI: a post costs
    a third of what it cost through Starlette's layers. A client refused too often is answered 429 before
    its body is read: a flood of such posts costs the relay little more than their headers."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != READINGS_PATH:
            await app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"  # after X-Forwarded-For
        body_read = False
        answer: dict[str, object]
        try:
            api.admit(client)
            body = await _body(scope, receive)
            body_read = True
            try:  # on the event loop while the meters are cached: a thread's turn costs more than the check
                post = api.check(body, client, wait=False)
            except ChainReadNeededError:
                post = await run_in_threadpool(api.check, body, client)
            queued: int = await asyncio.wrap_future(api.commit(post))
            status, answer = 202, {"queued": queued}
        except RefusedError as exc:
            log_event("refused", logging.INFO, status=exc.status, method="POST", path=READINGS_PATH, error=exc.message)
            status, answer = exc.status, exc.as_json()
        except Exception as exc:
            error = describe_error(exc, None)
            log_event("internal_error", logging.ERROR, method="POST", path=READINGS_PATH, error=error)
            status, answer = 500, _INTERNAL_ERROR
        content = json.dumps(answer, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
        if not body_read:
            headers.append((b"connection", b"close"))  # the rest of its body is not read: no next request on it
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return serve


async def _body(scope: Scope, receive: Receive) -> bytes:
    """The request body: at most MAX_BODY_BYTES kept; an oversize one up to DISCARD_LIMIT is read and dropped."""
    headers = dict(scope["headers"])
    length = headers.get(b"content-length", b"").decode("latin-1")
    if not length or b"transfer-encoding" in headers:
        raise RefusedError(411, "send the body with a Content-Length header (chunked bodies are not taken)")
    if not (length.isascii() and length.isdigit()):
        raise RefusedError(400, f"Content-Length {length!r} is not a number of bytes")
    if int(length) > MAX_BODY_BYTES:
        if int(length) <= DISCARD_LIMIT:  # read it to the end, or the client may see a reset, not this answer
            while (message := await receive())["type"] != "http.disconnect" and message.get("more_body", False):
                pass
        raise RefusedError(413, f"body of {int(length):,} bytes is over {MAX_BODY_BYTES:,}: send fewer readings")
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RefusedError(400, "the client went away before its body arrived")
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _misrouted(request: Request, status: int) -> RefusedError:
    """The refusal of a request no route takes (`status`: 404 or 405), in the words of the endpoint it missed."""
    path, method = request.url.path, request.method
    if method == "POST":
        return RefusedError(status, f"POST {path}: post readings to /readings")
    if method == "GET" and (path == "/readings" or path.startswith("/readings/")):
        return RefusedError(400, _ASK_FATE)
    if method != "GET":
        return RefusedError(405, f"{method} {path}: the relay answers GET and POST only")
    return RefusedError(404, f"no endpoint {path}: use /health, /status or /readings")


def _answering(endpoint: Endpoint) -> Endpoint:
    """`endpoint`, its refusals answered {"error": …} and any other failure answered 500 and logged in one line."""

    async def answer(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RefusedError as exc:
            return _refused(request, exc)
        except Exception as exc:
            error = describe_error(exc, None)
            log_event("internal_error", logging.ERROR, method=request.method, path=request.url.path, error=error)
            return JSONResponse(_INTERNAL_ERROR, status_code=500)

    return answer


def _refused(request: Request, exc: RefusedError) -> Response:
    level = logging.INFO if request.method == "POST" else logging.DEBUG  # oracles poll GETs that may 404
    log_event("refused", level, status=exc.status, method=request.method, path=request.url.path, error=exc.message)
    return JSONResponse(exc.as_json(), status_code=exc.status)


@cache
def _openapi_document() -> bytes:
    return resources.files("daisee.relay").joinpath("openapi.json").read_bytes()


def openapi_description() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the relay's endpoints."""
    return dict(json.loads(_openapi_document()))
