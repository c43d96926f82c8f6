"""The régie's pages and JSON API (Starlette; see openapi.json, served at /openapi.json).

    GET  /                     the loop's page              GET /api/loop         its data
    GET  /member               a member's page              GET /api/member       its data (signed in)
    GET  /producers            the producers that publish their figures (open_data consents), for funders
    GET  /shared               the consents a signed-in account holds
    GET  /shared/<id>          one consent's data for its grantee   GET /api/shared/<id>, /export/shared/<id>.csv|json
    GET  /api/consents         the consents an account gave and holds
    POST /api/consents/draft   the EIP-712 grant to sign;  POST /api/consents  records a signed one
    GET|POST /api/consents/<id>/revocation   the EIP-712 revocation to sign; record a signed one
    GET  /api/access-log, /export/access-log.csv|json   who accessed the member's data
    POST /api/sign-in/message  the EIP-4361 message to sign, with a fresh nonce
    POST /api/sign-in          the signed message → a session cookie;  POST /api/sign-out ends it
    POST /api/sign-in/link     the signed message → a one-time link, GET /session/<code>, that opens the
                               session in a browser (`daisee regie login`)
    GET  /billing, /api/billing, /export/bills.csv   every member's monthly bills, for the loop's PMO only
    GET  /api/signal           the flexibility signal: {start, end, interval, profile} and each step's detail
    GET  /api/signal/now       the step under way alone (for a plug);  GET /api/signal/agile  as Agile rates
    GET  /api/plan             the best time for a task
    GET  /export/loop.csv|json, /export/member.csv|json   the curves in open formats
    GET  /export/context.jsonld, /export/vocabulary.jsonld, /api/status, /openapi.json, /static/…

Pages and curves take `period` (day, week, month, year), `date` (YYYY-MM-DD, local) and `granularity`
(step, hour, day, month, year). Everyone sees the loop as the publication rule allows; a signed-in member
sees all of it, and its own curves and bills. Every refusal is {"error": "<one line>"} (a page says it).
The session is an HttpOnly, SameSite=Strict cookie; pages run no inline script (Content-Security-Policy).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Protocol

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daisee.chain.connect import describe_error
from daisee.domain import LEDGER_DECIMALS
from daisee.regie.export import CONTEXT, CONTEXT_PATH, VOCABULARY, access_log_csv, as_csv, as_json, bills_csv
from daisee.regie.logs import log_event
from daisee.regie.siwe import SignInError
from daisee.regie.views import ViewError
from daisee.untrusted_json import UntrustedJSONError, parse_untrusted

SESSION_COOKIE = "regie_session"
JSON_NAMES = {str: "string", bool: "boolean", list: "array", dict: "object"}
MAX_BODY_BYTES = 16 * 1024  # a sign-in message and its signature, with room to spare
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class RefusedError(Exception):
    """A request refused: `status` and a one-line message saying what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Api(Protocol):
    """What the pages and the API serve (the régie's service; blocking: called on worker threads)."""

    https: bool

    def status(self) -> dict[str, Any]: ...

    def account(self, token: str | None) -> str | None:
        """The account signed in with session `token`, if any."""
        ...

    def loop_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]: ...

    def member_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        """Refused 401 without an account, 403 for an account that is no member."""
        ...

    def producers_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]: ...

    def consents_page(self, account: str | None) -> dict[str, Any]: ...

    def shared_page(self, consent_id: str, params: dict[str, str], account: str | None) -> dict[str, Any]:
        """Refused unless a live consent `consent_id` is granted to `account` (None: anyone)."""
        ...

    def consent_draft(self, account: str | None, fields: dict[str, Any]) -> dict[str, Any]: ...

    def submit_grant(self, message: dict[str, Any], signature: str) -> dict[str, Any]: ...

    def revocation_draft(self, account: str | None, consent_id: str) -> dict[str, Any]: ...

    def submit_revocation(self, consent_id: str, signature: str) -> dict[str, Any]: ...

    def access_log_page(self, account: str | None) -> dict[str, Any]: ...

    def signal_page(self, account: str | None) -> dict[str, Any]: ...

    def signal_now_page(self) -> dict[str, Any]: ...

    def agile_page(self) -> dict[str, Any]: ...

    def plan_page(self, params: dict[str, str]) -> dict[str, Any]: ...

    def billing_page(self, params: dict[str, str], account: str | None) -> dict[str, Any]:
        """Refused 401 without an account, 403 for any account but the loop's PMO."""
        ...

    def sign_in_message(self, address: str) -> str: ...

    def sign_in(self, message: str, signature: str) -> tuple[str, str, datetime]:
        """The account, its session token and when it ends (SignInError)."""
        ...

    def sign_in_link(self, message: str, signature: str) -> tuple[str, str]:
        """The account and a one-time link that opens its session in a browser (SignInError)."""
        ...

    def follow_link(self, code: str) -> tuple[str, str, datetime]:
        """The account, its session token and when it ends, for a link's code, taken once (SignInError)."""
        ...

    def sign_out(self, token: str) -> None: ...


Endpoint = Callable[[Request], Awaitable[Response]]


def build_app(api: Api) -> ASGIApp:
    """The Starlette application serving `api`'s pages and JSON."""
    pages = _templates()

    async def call(function: Callable[..., Any], *args: Any) -> Any:
        try:
            return await run_in_threadpool(function, *args)
        except ViewError as exc:
            raise RefusedError(400, str(exc)) from None

    async def account(request: Request) -> str | None:
        return await call(api.account, request.cookies.get(SESSION_COOKIE))

    async def loop_page(request: Request) -> Response:
        signed_in = await account(request)
        return _page(pages, "loop.html", await call(api.loop_page, dict(request.query_params), signed_in), signed_in)

    async def member_page(request: Request) -> Response:
        signed_in = await account(request)
        if signed_in is None:
            return _page(pages, "sign_in.html", {}, None)
        return _page(
            pages, "member.html", await call(api.member_page, dict(request.query_params), signed_in), signed_in
        )

    async def producers_page(request: Request) -> Response:
        signed_in = await account(request)
        data = await call(api.producers_page, dict(request.query_params), signed_in)
        return _page(pages, "producers.html", data, signed_in)

    async def held_page(request: Request) -> Response:
        signed_in = await account(request)
        if signed_in is None:
            return _page(pages, "sign_in.html", {}, None)
        return _page(pages, "held.html", await call(api.consents_page, signed_in), signed_in)

    async def shared_page(request: Request) -> Response:
        signed_in = await account(request)
        data = await call(api.shared_page, request.path_params["consent"], dict(request.query_params), signed_in)
        return _page(pages, "shared.html", data, signed_in)

    async def shared_json(request: Request) -> Response:
        consent = request.path_params["consent"]
        return _json(await call(api.shared_page, consent, dict(request.query_params), await account(request)))

    async def consents_json(request: Request) -> Response:
        return _json(await call(api.consents_page, await account(request)))

    async def consent_draft(request: Request) -> Response:
        body = await _json_body(request, {"meter_id": str, "grantee": str, "purpose": str, "kinds": list})
        return _json(await call(api.consent_draft, await account(request), body))

    async def submit_grant(request: Request) -> Response:
        body = await _json_body(request, {"message": dict, "signature": str})
        return _json(await call(api.submit_grant, body["message"], body["signature"]))

    async def revocation_draft(request: Request) -> Response:
        return _json(await call(api.revocation_draft, await account(request), request.path_params["consent"]))

    async def submit_revocation(request: Request) -> Response:
        body = await _json_body(request, {"signature": str})
        return _json(await call(api.submit_revocation, request.path_params["consent"], body["signature"]))

    async def access_log_json(request: Request) -> Response:
        return _json(await call(api.access_log_page, await account(request)))

    def access_log_export(kind: str) -> Endpoint:
        async def answer(request: Request) -> Response:
            data = await call(api.access_log_page, await account(request))
            disposition = {"content-disposition": f'attachment; filename="access-log.{kind}"'}
            if kind == "csv":
                text = access_log_csv(data["entries"])
                return Response(text, media_type="text/csv; charset=utf-8", headers=disposition)
            return JSONResponse(data, headers=disposition)

        return answer

    async def loop_json(request: Request) -> Response:
        return _json(await call(api.loop_page, dict(request.query_params), await account(request)))

    async def member_json(request: Request) -> Response:
        return _json(await call(api.member_page, dict(request.query_params), await account(request)))

    async def producers_json(request: Request) -> Response:
        return _json(await call(api.producers_page, dict(request.query_params), await account(request)))

    async def billing_page(request: Request) -> Response:
        signed_in = await account(request)
        if signed_in is None:
            return _page(pages, "sign_in.html", {}, None)
        data = await call(api.billing_page, dict(request.query_params), signed_in)
        return _page(pages, "billing.html", data, signed_in)

    async def billing_json(request: Request) -> Response:
        return _json(await call(api.billing_page, dict(request.query_params), await account(request)))

    async def billing_csv(request: Request) -> Response:
        data = await call(api.billing_page, dict(request.query_params), await account(request))
        name = f"bills-{data['view']['period']}-{data['view']['date']}.csv"
        disposition = {"content-disposition": f'attachment; filename="{name}"'}
        return Response(bills_csv(data["members"]), media_type="text/csv; charset=utf-8", headers=disposition)

    async def status(request: Request) -> Response:
        return _json(await call(api.status))

    async def signal_json(request: Request) -> Response:
        return _json(await call(api.signal_page, await account(request)))

    async def signal_now_json(request: Request) -> Response:
        return _json(await call(api.signal_now_page))

    async def agile_json(request: Request) -> Response:
        return _json(await call(api.agile_page))

    async def plan_json(request: Request) -> Response:
        return _json(await call(api.plan_page, dict(request.query_params)))

    async def sign_in_message(request: Request) -> Response:
        body = await _json_body(request, {"address": str})
        return _json({"message": await call(api.sign_in_message, body["address"])})

    def session_cookie(response: Response, token: str, ends: datetime) -> Response:
        max_age = max(0, int((ends - datetime.now(UTC)).total_seconds()))
        response.set_cookie(
            SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=api.https, path="/"
        )
        return response

    async def signed(function: Callable[..., Any], *args: Any) -> Any:
        try:
            return await call(function, *args)
        except SignInError as exc:
            raise RefusedError(401, str(exc)) from None

    async def sign_in(request: Request) -> Response:
        body = await _json_body(request, {"message": str, "signature": str})
        address, token, ends = await signed(api.sign_in, body["message"], body["signature"])
        return session_cookie(_json({"address": address, "until": ends.isoformat()}), token, ends)

    async def sign_in_link(request: Request) -> Response:
        body = await _json_body(request, {"message": str, "signature": str})
        address, link = await signed(api.sign_in_link, body["message"], body["signature"])
        return _json({"address": address, "link": link})

    async def follow_link(request: Request) -> Response:
        _, token, ends = await signed(api.follow_link, request.path_params["code"])
        return session_cookie(RedirectResponse("/member", status_code=303), token, ends)

    async def sign_out(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            await call(api.sign_out, token)
        response = _json({"signed_out": True})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=api.https)
        return response

    def export(scope: str, kind: str) -> Endpoint:
        async def answer(request: Request) -> Response:
            params = dict(request.query_params)
            if scope == "loop":
                data = await call(api.loop_page, params, await account(request))
            elif scope == "member":
                data = await call(api.member_page, params, await account(request))
            else:
                data = await call(api.shared_page, request.path_params["consent"], params, await account(request))
            name = f"{scope}-{data['view']['period']}-{data['view']['date']}"
            disposition = {"content-disposition": f'attachment; filename="{name}.{kind}"'}
            if kind == "csv":
                return Response(as_csv(data["curve"]), media_type="text/csv; charset=utf-8", headers=disposition)
            context = str(request.url_for("context"))
            return Response(as_json(data["curve"], context), media_type="application/ld+json", headers=disposition)

        return answer

    async def context(request: Request) -> Response:
        return JSONResponse(CONTEXT, media_type="application/ld+json")

    async def vocabulary(request: Request) -> Response:
        return JSONResponse(VOCABULARY, media_type="application/ld+json")

    async def openapi(request: Request) -> Response:
        return Response(_openapi_document(), media_type="application/json")

    async def no_route(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return _refusal(request, RefusedError(status, f"{request.method} {request.url.path}: no such page or endpoint"))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RefusedError)
        return _refusal(request, exc)

    async def failed(request: Request, exc: Exception) -> Response:
        error = describe_error(exc, None)
        log_event("internal_error", logging.ERROR, method=request.method, path=request.url.path, error=error)
        return _refusal(request, RefusedError(500, "internal error: see the régie's log"))

    routes = [
        Route("/", loop_page, methods=["GET"]),
        Route("/member", member_page, methods=["GET"]),
        Route("/producers", producers_page, methods=["GET"]),
        Route("/api/loop", loop_json, methods=["GET"]),
        Route("/api/member", member_json, methods=["GET"]),
        Route("/api/producers", producers_json, methods=["GET"]),
        Route("/shared", held_page, methods=["GET"]),
        Route("/shared/{consent}", shared_page, methods=["GET"]),
        Route("/api/shared/{consent}", shared_json, methods=["GET"]),
        Route("/export/shared/{consent}.csv", export("shared", "csv"), methods=["GET"]),
        Route("/export/shared/{consent}.json", export("shared", "json"), methods=["GET"]),
        Route("/api/consents", consents_json, methods=["GET"]),
        Route("/api/consents", submit_grant, methods=["POST"]),
        Route("/api/consents/draft", consent_draft, methods=["POST"]),
        Route("/api/consents/{consent}/revocation", revocation_draft, methods=["GET"]),
        Route("/api/consents/{consent}/revocation", submit_revocation, methods=["POST"]),
        Route("/api/access-log", access_log_json, methods=["GET"]),
        Route("/export/access-log.csv", access_log_export("csv"), methods=["GET"]),
        Route("/export/access-log.json", access_log_export("json"), methods=["GET"]),
        Route("/billing", billing_page, methods=["GET"]),
        Route("/api/billing", billing_json, methods=["GET"]),
        Route("/export/bills.csv", billing_csv, methods=["GET"]),
        Route("/api/status", status, methods=["GET"]),
        Route("/api/signal", signal_json, methods=["GET"]),
        Route("/api/signal/now", signal_now_json, methods=["GET"]),
        Route("/api/signal/agile", agile_json, methods=["GET"]),
        Route("/api/plan", plan_json, methods=["GET"]),
        Route("/api/sign-in/message", sign_in_message, methods=["POST"]),
        Route("/api/sign-in", sign_in, methods=["POST"]),
        Route("/api/sign-in/link", sign_in_link, methods=["POST"]),
        Route("/session/{code}", follow_link, methods=["GET"]),
        Route("/api/sign-out", sign_out, methods=["POST"]),
        Route("/export/loop.csv", export("loop", "csv"), methods=["GET"]),
        Route("/export/loop.json", export("loop", "json"), methods=["GET"]),
        Route("/export/member.csv", export("member", "csv"), methods=["GET"]),
        Route("/export/member.json", export("member", "json"), methods=["GET"]),
        Route(CONTEXT_PATH, context, methods=["GET"], name="context"),
        Route("/export/vocabulary.jsonld", vocabulary, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("daisee.regie", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: no_route, RefusedError: refused, Exception: failed},
    )
    return _secured(app)


def _secured(app: Starlette) -> ASGIApp:
    """`app`, every answer with the security headers."""
    extra = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await app(scope, receive, sending if scope["type"] == "http" else send)

    return serve


async def _json_body(request: Request, fields: dict[str, type]) -> dict[str, Any]:
    """The request's JSON object with `fields` of their types, read within MAX_BODY_BYTES (RefusedError otherwise)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise RefusedError(415, "send the body as JSON, with Content-Type: application/json")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise RefusedError(413, f"the body is over {MAX_BODY_BYTES:,} bytes")
    try:
        found = parse_untrusted(body, max_bytes=MAX_BODY_BYTES)
    except UntrustedJSONError as exc:
        raise RefusedError(400, f"the body is not JSON: {exc}") from None
    if not isinstance(found, dict):
        raise RefusedError(400, f"the body must be a JSON object with {', '.join(fields)}")
    for name, kind in fields.items():
        if not isinstance(found.get(name), kind):
            raise RefusedError(400, f"the body's {name!r} must be a JSON {JSON_NAMES[kind]}")
    return found


def _json(data: dict[str, Any]) -> Response:
    return JSONResponse(data)


def _refusal(request: Request, exc: RefusedError) -> Response:
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    log_event("refused", level, status=exc.status, method=request.method, path=request.url.path, error=exc.message)
    if request.url.path.startswith(("/api/", "/export/")) or request.method != "GET":
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    page = _templates().get_template("error.html")
    html = page.render(status=exc.status, message=exc.message, account=None, data={}, page="error.html")
    return HTMLResponse(html, status_code=exc.status)


def _page(pages: Environment, template: str, data: dict[str, Any], account: str | None) -> Response:
    html = pages.get_template(template).render(data=data, account=account, page=template)
    return HTMLResponse(html)


@cache
def _templates() -> Environment:
    environment = Environment(loader=PackageLoader("daisee.regie", "templates"), autoescape=select_autoescape())
    environment.filters["kwh"] = _kwh
    environment.filters["money"] = _money
    environment.filters["percent"] = _percent
    return environment


def _kwh(wh: int | None) -> str:
    return "n/a" if wh is None else f"{wh / 1000:,.1f} kWh"


def _money(units: int | None) -> str:
    return "n/a" if units is None else f"{units / 10**LEDGER_DECIMALS:,.2f} €"


def _percent(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


@cache
def _openapi_document() -> bytes:
    return resources.files("daisee.regie").joinpath("openapi.json").read_bytes()


def openapi_description() -> dict[str, Any]:
    """The OpenAPI 3.1 description of the régie's endpoints."""
    return dict(json.loads(_openapi_document()))
