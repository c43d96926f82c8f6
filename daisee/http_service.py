"""The HTTP server of daisee's services (the relay, the régie): an ASGI application on uvicorn and uvloop,
in a thread of its own, hardened against hostile clients.

A request (headers and body) must arrive within REQUEST_DEADLINE or its connection is dropped, a client
holds at most CLIENT_CONNECTIONS connections and the service MAX_CONNECTIONS (503 beyond), idle keep-alive
connections close after KEEP_ALIVE seconds, and the blocking work runs on WORKER_THREADS threads. Stopping
lets the requests in progress finish, for STOP_GRACE seconds at most. The client of a request is its
connection's address, or the `X-Forwarded-For` address a proxy on this machine (127.0.0.1) forwards it for.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import socket
import threading
import time

import anyio.to_thread
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from daisee.event_log import LogEvent
from daisee.loopback import LOOPBACK

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
WORKER_THREADS = 4  # for the blocking work: they share one interpreter lock, and more only queue for it
YOUNG_GENERATION = 10_000  # allocations between the collector's young scans (Python's default: 700)


def settle_heap() -> None:
    """For a service's process, once the service is up: what it holds for good (modules, clients, caches)
    is left out of the cyclic collector's scans, and young objects are scanned less often. A year's page
    allocates some 100,000 objects; each page otherwise set off full scans of the whole heap, 100 ms of a
    150 ms page (the régie's benchmark). Not for a process that starts and drops services one after the
    other, like the tests': what is frozen is never collected."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])


class HttpService:
    """`app` on `address`, served by uvicorn on an event loop in a thread named `name`-http."""

    def __init__(self, address: tuple[str, int], app: ASGIApp, name: str, log_event: LogEvent) -> None:
        """Binds at once: raises OSError if the address is taken."""
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._socket = socket.create_server(address, family=family, backlog=MAX_CONNECTIONS)
        config = uvicorn.Config(
            app,
            http=_deadline_protocol(name, log_event),
            loop="none",  # the loop is uvloop's, made in _serve
            log_level="warning",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            headers=[("server", f"daisee-{name}")],
            timeout_keep_alive=KEEP_ALIVE,
            timeout_graceful_shutdown=STOP_GRACE,
            # a TLS proxy on this machine tells each client's address; nobody else is believed
            proxy_headers=True,
            forwarded_allow_ips=[LOOPBACK],
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name=f"{name}-http", daemon=True)

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
            anyio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
            await self._server.serve(sockets=[self._socket])

        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(serve())


def _deadline_protocol(service: str, log_event: LogEvent) -> type[HttpToolsProtocol]:
    class DeadlineProtocol(HttpToolsProtocol):
        """uvicorn's HTTP/1.1 protocol (llhttp's parser, through httptools) with a deadline for each whole
        request and caps on open connections.

        The deadline starts with the connection and again with the first byte of each next request, and ends
        once the request is complete (its last body byte parsed): a client that trickles its headers or its
        body is dropped when it passes, whatever the pace of its bytes. A connection over a cap is answered
        503 at once and closed.
        """

        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # asyncio sets TCP_NODELAY only on sockets whose protocol number is TCP's, and socket.create_server
            # leaves it 0: without it a response's body waits for the client's delayed ACK of its headers (40 ms)
            transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            host = _host(self)
            if len(self.connections) > MAX_CONNECTIONS:
                self._turn_away(f"the {service} has {MAX_CONNECTIONS} connections open: try again shortly")
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

    return DeadlineProtocol


def _host(protocol: object) -> str | None:
    """The client address of one of uvicorn's connections."""
    client = getattr(protocol, "client", None)
    return str(client[0]) if client else None
