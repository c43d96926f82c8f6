"""JSON-RPC proxies on loopback that stand between daisee and a real node to play a provider's tricks:
going silent in the middle of a command, rate-limiting, or capping the block range of `eth_getLogs`."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from daisee.chain.nodes import LOOPBACK


class RpcProxy:
    """Forwards every request to `upstream`; subclasses change `answer`. Use it as a context manager."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                answer = proxy.answer(self.rfile.read(int(self.headers["Content-Length"])))
                if answer is None:  # go silent: close without a word
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, body: bytes) -> bytes | None:
        """The bytes to answer `body` with, or None to drop the connection."""
        return self.forward(body)

    def forward(self, body: bytes) -> bytes:
        request = urllib.request.Request(self.upstream, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return bytes(response.read())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FlakyProxy(RpcProxy):
    """Goes silent at the `cut_at`-th request whose method is `method` — after forwarding it when `forward`
    is true (the answer is lost), before otherwise — and stays silent until `heal()`."""

    def __init__(self, upstream: str, method: str, cut_at: int, forward: bool) -> None:
        super().__init__(upstream)
        self.method, self.cut_at, self.send_before_cut = method, cut_at, forward
        self.seen = 0
        self.down = False

    def answer(self, body: bytes) -> bytes | None:
        if not self.down and json.loads(body).get("method") == self.method:
            self.seen += 1
            if self.seen == self.cut_at:
                if self.send_before_cut:
                    self.forward(body)
                self.down = True
        return None if self.down else self.forward(body)

    def heal(self) -> None:
        self.down, self.cut_at = False, 0


class RangeCappedProxy(RpcProxy):
    """Refuses `eth_getLogs` over more than `max_blocks` blocks, as public providers do; counts the queries."""

    def __init__(self, upstream: str, max_blocks: int) -> None:
        super().__init__(upstream)
        self.max_blocks = max_blocks
        self.log_queries: list[tuple[int, int]] = []

    def answer(self, body: bytes) -> bytes | None:
        request: dict[str, Any] = json.loads(body)
        if request.get("method") == "eth_getLogs":
            query = request["params"][0]
            first, last = int(query["fromBlock"], 16), int(query["toBlock"], 16)
            self.log_queries.append((first, last))
            if last - first + 1 > self.max_blocks:
                error = {"code": -32005, "message": f"query exceeds max block range {self.max_blocks}"}
                return json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": error}).encode()
        return self.forward(body)


class RateLimitedProxy(RpcProxy):
    """While `limited`, answers every request with a provider's rate-limit error (JSON-RPC -32005)."""

    limited = False

    def answer(self, body: bytes) -> bytes | None:
        if not self.limited:
            return self.forward(body)
        request = json.loads(body)
        error = {"code": -32005, "message": "rate limit exceeded: 10 requests per second"}
        return json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "error": error}).encode()
