"""The relay's HTTP JSON API on the standard library's threading server.

    POST /readings                       one signed reading, or {"readings": [...]}   → 202 {"queued": n}
                                         (numbers as JSON integers or decimal strings; the
                                         signature as r and vs, or one 65-byte `signature`)
    GET  /health                         → 200 {"status": "ok", "chain_id": …, "loop": …}
    GET  /status                         → 200 queue depth, totals, last batch, last error
    GET  /readings/<meter id hex>/<t>    → 200 {"status", "reason", "tx"}, 404 if the relay never had it

Every refusal is a 4xx (5xx if the chain or the relay fails) with the body {"error": "<one line>"} (see
`daisee.relay.intake` for the extra keys of a refused POST). A rejected reading may be posted again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import urlsplit

from daisee.chain.connect import describe_error
from daisee.relay.intake import MAX_BODY_BYTES, RefusedError
from daisee.relay.logs import log_event
from daisee.relay.queue import Fate

REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request
DISCARD_LIMIT = 16 * MAX_BODY_BYTES  # an oversize body up to this is read and dropped; a larger one is not read
_FATE_PATH = re.compile(r"/readings/(?:0x)?([0-9a-fA-F]{64})/([0-9]{1,10})")
Answer = tuple[int, dict[str, Any]]


class Api(Protocol):
    """What the HTTP layer serves."""

    def health(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def fate(self, meter_id: bytes, interval: int) -> Fate | None: ...

    def post(self, body: bytes, client: str) -> int: ...


class RelayServer(ThreadingHTTPServer):
    """One thread per request; closing waits for requests in progress, so none is cut half-way."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: RelayServer
    timeout = REQUEST_TIMEOUT
    server_version = "daisee-relay"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_POST(self) -> None:
        self._answer(self._post)

    def _get(self) -> Answer:
        api, path = self.server.api, urlsplit(self.path).path
        if path == "/health":
            return 200, api.health()
        if path == "/status":
            return 200, api.status()
        match = _FATE_PATH.fullmatch(path)
        if match:
            fate = api.fate(bytes.fromhex(match[1]), int(match[2]))
            if fate is None:
                raise RefusedError(404, f"no reading of meter 0x{match[1].lower()} for interval {match[2]} here")
            return 200, fate.as_json()
        if path == "/readings" or path.startswith("/readings/"):
            raise RefusedError(400, "ask GET /readings/<meter id: 64 hex digits>/<interval>")
        raise RefusedError(404, f"no endpoint {path}: use /health, /status or /readings")

    def _post(self) -> Answer:
        path = urlsplit(self.path).path
        if path != "/readings":
            status = 405 if path in ("/health", "/status") else 404
            raise RefusedError(status, f"POST {path}: post readings to /readings")
        return 202, {"queued": self.server.api.post(self._body(), self.client_address[0])}

    def _body(self) -> bytes:
        """The request body: at most MAX_BODY_BYTES kept; an oversize one up to DISCARD_LIMIT is read and dropped."""
        length = self.headers.get("Content-Length")
        if length is None or self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise RefusedError(411, "send the body with a Content-Length header (chunked bodies are not taken)")
        if not (length.isascii() and length.isdigit()):
            self.close_connection = True
            raise RefusedError(400, f"Content-Length {length!r} is not a number of bytes")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            if int(length) <= DISCARD_LIMIT:  # read it to the end, or the client may see a reset, not this answer
                self._discard(int(length))
            raise RefusedError(413, f"body of {int(length):,} bytes is over {MAX_BODY_BYTES:,}: send fewer readings")
        try:
            body = self.rfile.read(int(length))
        except TimeoutError:
            self.close_connection = True
            raise RefusedError(408, f"the body did not arrive within {REQUEST_TIMEOUT:g} s") from None
        if len(body) < int(length):
            raise RefusedError(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _discard(self, length: int) -> None:
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 1 << 16))
                if not chunk:
                    return
                length -= len(chunk)
        except TimeoutError:
            return

    def _answer(self, route: Callable[[], Answer]) -> None:
        try:
            status, body = route()
        except RefusedError as exc:
            status, body = exc.status, exc.as_json()
            level = logging.INFO if self.command == "POST" else logging.DEBUG  # oracles poll GETs that may 404
            path = urlsplit(self.path).path
            log_event("refused", level, status=status, method=self.command, path=path, error=exc.message)
        except Exception as exc:
            error = describe_error(exc, None)
            log_event("internal_error", logging.ERROR, method=self.command, path=self.path, error=error)
            status, body = 500, {"error": "internal error: see the relay's log"}
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client went away
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log_event("http", logging.DEBUG, client=self.client_address[0], line=format % args)
