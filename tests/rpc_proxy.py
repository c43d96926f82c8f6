"""JSON-RPC proxies on loopback that stand between daisee and a real node to play a provider's tricks:
going silent in the middle of a command, rate-limiting, capping the block range of `eth_getLogs`, or
answering as another client would."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from daisee.loopback import LOOPBACK


def _error(request: dict[str, Any], message: str, code: int = -32000) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": {"code": code, "message": message}}


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
                return json.dumps(_error(request, f"query exceeds max block range {self.max_blocks}", -32005)).encode()
        return self.forward(body)


class RateLimitedProxy(RpcProxy):
    """While `limited`, answers every request with a provider's rate-limit error (JSON-RPC -32005)."""

    limited = False

    def answer(self, body: bytes) -> bytes | None:
        if not self.limited:
            return self.forward(body)
        request = json.loads(body)
        return json.dumps(_error(request, "rate limit exceeded: 10 requests per second", -32005)).encode()


class QuirkyNodeProxy(RpcProxy):
    """A real node answering with another client's quirks, each one asked for by name:

    - `no_pending`: refuses the `pending` block tag with this message;
    - `no_status`: leaves `status` out of receipts (pre-Byzantium style);
    - `reword`: replaces the node's wording in error messages (`{"nonce too low": "OldNonce"}`);
    - `counts_behind`: answers `eth_getTransactionCount` this many transactions short, as a lagging backend;
    - `failed_estimate`: what a failed estimate answers instead: a message without the revert data, or
      an amount of gas (the block gas limit: OpenEthereum's way);
    - `client`: answers `web3_clientVersion` with this name (`Geth/…` makes daisee take it for a real network);
    - `receipt_fields`: overrides these fields of every receipt, as a broken or hostile node would.

    While `forgetful`, it knows no transaction by hash, as a load balancer's backend that never saw it.
    `refused` counts the requests answered with an error, by method.
    """

    forgetful = False

    def __init__(
        self,
        upstream: str,
        *,
        no_pending: str | None = None,
        no_status: bool = False,
        reword: Mapping[str, str] | None = None,
        counts_behind: int = 0,
        failed_estimate: str | int | None = None,
        client: str | None = None,
        receipt_fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(upstream)
        self.receipt_fields = dict(receipt_fields or {})
        self.no_pending, self.no_status, self.reword = no_pending, no_status, dict(reword or {})
        self.counts_behind, self.failed_estimate, self.client = counts_behind, failed_estimate, client
        self.refused: dict[str, int] = {}

    def answer(self, body: bytes) -> bytes | None:
        request: dict[str, Any] = json.loads(body)
        answer = self._answer(request)
        if "error" in answer:
            self.refused[request["method"]] = self.refused.get(request["method"], 0) + 1
        return json.dumps(answer).encode()

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        method, params = request["method"], request.get("params") or []
        if self.no_pending and "pending" in params:
            return _error(request, self.no_pending, -32602)
        if method == "web3_clientVersion" and self.client:
            return {"jsonrpc": "2.0", "id": request["id"], "result": self.client}
        if method == "eth_getTransactionByHash" and self.forgetful:
            return {"jsonrpc": "2.0", "id": request["id"], "result": None}
        answer: dict[str, Any] = json.loads(self.forward(json.dumps(request).encode()))
        result, error = answer.get("result"), answer.get("error")
        if method == "eth_getTransactionReceipt" and self.no_status and isinstance(result, dict):
            result.pop("status", None)
        if method == "eth_getTransactionReceipt" and isinstance(result, dict):
            result.update(self.receipt_fields)
        if method == "eth_getTransactionCount" and result is not None:
            answer["result"] = hex(max(0, int(result, 16) - self.counts_behind))
        if method == "eth_estimateGas" and error is not None and self.failed_estimate is not None:
            if isinstance(self.failed_estimate, str):
                return _error(request, self.failed_estimate)
            return {"jsonrpc": "2.0", "id": request["id"], "result": hex(self.failed_estimate)}
        if error is not None:
            for said, instead in self.reword.items():
                error["message"] = error["message"].replace(said, instead)
        return answer
