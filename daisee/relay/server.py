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

Hostile clients are bounded as `daisee.http_service` bounds them (a deadline for each whole request, caps
on connections, keep-alive, a graceful stop); the blocking work (reads from the chain, the queue) runs on
its bounded pool of threads, the checks of cached meters on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from functools import cache
from importlib import resources
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daisee.chain.connect import describe_error
from daisee.http_service import HttpService
from daisee.relay.intake import MAX_BODY_BYTES, CheckedPost, RefusedError
from daisee.relay.logs import log_event
from daisee.relay.meters import ChainReadNeededError
from daisee.relay.queue import Fate

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


class RelayServer(HttpService):
    """The relay's API on `address`, served as `daisee.http_service` serves (binds at once: OSError if taken)."""

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        super().__init__(address, _posting(api, build_app(api)), "relay", log_event)


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
