"""The régie's service over real HTTP on loopback: its API equals the store (and the store the chain), the
publication rule and sign-in are enforced, bad requests get one line and change nothing."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from openapi_spec_validator import validate

from daisee.demo import DemoRun, simulated_payout_keys
from daisee.loop import Loop
from daisee.regie.service import Regie
from daisee.regie.web import SECURITY_HEADERS, openapi_description

SEED = 4  # the played loop's households


def payout_key(index: int) -> bytes:
    """The simulated household's wallet key (public by construction: simulation keys)."""
    return simulated_payout_keys(index + 1, SEED)[index]


def call(
    service: Regie, method: str, path: str, body: Any = None, *, cookie: str | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    host, port = service.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"content-type": "application/json"} if body is not None or raw is not None else {}
    if cookie:
        headers["cookie"] = f"regie_session={cookie}"
    payload = raw if raw is not None else None if body is None else json.dumps(body).encode()
    connection.request(method, path, body=payload, headers=headers)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    found = {k.lower(): v for k, v in answer.getheaders()}
    kind = found.get("content-type", "")
    return answer.status, found, json.loads(data) if "json" in kind else data.decode()


def sign_in(service: Regie, key: bytes) -> str:
    account = Account.from_key(key)
    status, _, answer = call(service, "POST", "/api/sign-in/message", {"address": account.address})
    assert status == 200, answer
    signature = account.sign_message(encode_defunct(text=answer["message"])).signature.to_0x_hex()
    status, headers, signed = call(
        service, "POST", "/api/sign-in", {"message": answer["message"], "signature": signature}
    )
    assert status == 200, signed
    assert signed["address"] == account.address
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie.replace("Strict", "strict")
    return cookie.split(";")[0].split("=", 1)[1]


def _day_of_run(service: Regie) -> str:
    return service.context.calendar.start(0).astimezone(service.context.calendar.tz).date().isoformat()


def test_a_member_sees_its_own_steps_as_the_chain_settled_them(served: Regie, played: tuple[Loop, DemoRun]) -> None:
    _, run = played
    household = run.households[2]  # a prosumer
    token = sign_in(served, payout_key(2))
    status, _, page = call(served, "GET", f"/api/member?period=day&date={_day_of_run(served)}", cookie=token)
    assert status == 200, page
    curve = page["curve"]
    names = ("CONS", "AUTOCONS", "COMPLEMENT", "PROD", "AUTOPROD", "SURPLUS")
    steps = [dict(zip(names, values, strict=True)) for values in zip(*(curve[q] for q in names), strict=True)]
    steps = [p for p in steps if p["CONS"] is not None]
    expected = [run.results[t][household.meter_id] for t in range(run.intervals)]
    assert [(p["CONS"], p["AUTOCONS"], p["PROD"], p["AUTOPROD"]) for p in steps] == [
        (r.consumed, r.allocated, r.produced, r.sold) for r in expected
    ]
    assert all(
        p["COMPLEMENT"] == p["CONS"] - p["AUTOCONS"] and p["SURPLUS"] == p["PROD"] - p["AUTOPROD"] for p in steps
    )
    assert sum(bill["local_cost"] for bill in page["bills"]) == sum(r.cost for r in expected)
    assert page["meters"] == [{"meter_id": "0x" + household.meter_id.hex(), "kind": "prosumer", "active": True}]


def test_everyone_is_told_the_loop_has_too_few_meters_and_a_member_sees_it_all(
    served: Regie, played: tuple[Loop, DemoRun]
) -> None:
    _, run = played
    path = f"/api/loop?period=day&date={_day_of_run(served)}&granularity=hour"
    status, _, public = call(served, "GET", path)
    assert status == 200
    assert public["published"] == {"consumption": False, "production": False, "coarsened": False, "members_only": False}
    assert public["curve"]["total"]["CONS"] == 0
    assert public["this_month"]["shared_wh"] is None
    assert public["members"] == {"consumer": 2, "producer": 2, "prosumer": 2}

    _, _, seen = call(served, "GET", path, cookie=sign_in(served, payout_key(1)))
    consumed = sum(r.consumed for t in range(run.intervals) for r in run.results[t].values())
    assert seen["published"]["members_only"] is True
    assert seen["curve"]["total"]["CONS"] == consumed
    assert seen["this_month"]["shared_wh"] == sum(
        r.allocated for t in range(run.intervals) for r in run.results[t].values()
    )


def test_the_exports_have_enedis_columns_and_a_json_ld_context(served: Regie) -> None:
    token = sign_in(served, payout_key(0))
    status, headers, text = call(
        served, "GET", f"/export/member.csv?period=day&date={_day_of_run(served)}", cookie=token
    )
    assert status == 200
    assert headers["content-type"].startswith("text/csv")
    lines = text.splitlines()
    assert lines[0] == "horodate,pas,grandeur,valeur,unite,nb_points"
    first = lines[1].split(",")
    assert first[1] == "PT2H"
    assert first[2] == "CONS"
    assert first[4] == "Wh"
    assert first[0].endswith(("+01:00", "+02:00"))
    _, _, document = call(served, "GET", f"/export/member.json?period=day&date={_day_of_run(served)}", cookie=token)
    assert document["@context"].endswith("/export/context.jsonld")
    assert len(document["mesures"]) == len(lines) - 1
    _, _, context = call(served, "GET", "/export/context.jsonld")
    assert context["@context"]["horodate"]["@id"] == "saref:hasTimestamp"


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/api/loop?period=fortnight", 400, "period 'fortnight' is not one of day, week, month, year"),
        ("/api/loop?date=2026-13-01", 400, "date '2026-13-01' is not a date: give YYYY-MM-DD"),
        ("/api/loop?period=day&granularity=month", 400, "a day is cut at most by day: give a finer granularity"),
        ("/api/loop?period=year&date=9999-12-31", 400, "date 9999-12-31 is out of range: give one from 1970 to 9998"),
        (
            "/export/loop.csv?granularity=fortnightly",
            400,
            "granularity 'fortnightly' is not one of step, hour, day, month, year",
        ),
        ("/api/member", 401, "sign in with your payout account first (POST /api/sign-in)"),
        ("/api/nowhere", 404, "GET /api/nowhere: no such page or endpoint"),
    ],
)
def test_a_bad_request_gets_one_line(served: Regie, path: str, status: int, error: str) -> None:
    got, headers, answer = call(served, "GET", path)
    assert (got, answer) == (status, {"error": error})
    assert headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]


@pytest.mark.parametrize(
    ("raw", "status", "error"),
    [
        (b"[" * 100_000 + b"]" * 100_000, 413, "the body is over 16,384 bytes"),
        (b"[" * 5_000 + b"]" * 5_000, 400, "the body is not JSON"),
        (b"{not json", 400, "the body is not JSON"),
        (b'["0xabc"]', 400, "the body must be a JSON object with address"),
        (b'{"address": 7}', 400, "the body's 'address' must be a JSON string"),
        (b'{"address": "0x123"}', 400, "'0x123' is not an Ethereum address"),
    ],
)
def test_a_bad_body_is_refused_and_the_service_stays_up(served: Regie, raw: bytes, status: int, error: str) -> None:
    got, _, answer = call(served, "POST", "/api/sign-in/message", raw=raw)
    assert got == status
    assert answer["error"].startswith(error)
    assert call(served, "GET", "/api/status")[0] == 200


def test_a_sign_in_is_refused_when_forged_replayed_or_not_json(served: Regie) -> None:
    member, intruder = Account.from_key(payout_key(0)), Account.create()
    _, _, answer = call(served, "POST", "/api/sign-in/message", {"address": member.address})
    forged = intruder.sign_message(encode_defunct(text=answer["message"])).signature.to_0x_hex()
    status, _, refused = call(served, "POST", "/api/sign-in", {"message": answer["message"], "signature": forged})
    assert (status, refused) == (
        401,
        {"error": f"the message is not signed by {member.address}: sign it with that account"},
    )
    signature = member.sign_message(encode_defunct(text=answer["message"])).signature.to_0x_hex()
    assert call(served, "POST", "/api/sign-in", {"message": answer["message"], "signature": signature})[0] == 200
    status, _, replayed = call(served, "POST", "/api/sign-in", {"message": answer["message"], "signature": signature})
    assert status == 401
    assert "nonce was not issued here, has expired or was used already" in replayed["error"]
    host, port = served.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", "/api/sign-in", body=b"message=x", headers={"content-type": "text/plain"})
    assert connection.getresponse().status == 415


def test_a_signed_in_account_that_is_no_member_sees_no_member_page(served: Regie) -> None:
    stranger = Account.create()
    token = sign_in(served, bytes(stranger.key))
    status, _, answer = call(served, "GET", "/api/member", cookie=token)
    assert (status, answer) == (403, {"error": f"{stranger.address} is the payout account of no meter of this loop"})


def test_the_openapi_description_is_valid_and_names_every_endpoint(served: Regie) -> None:
    description = openapi_description()
    validate(description)
    status, _, served_description = call(served, "GET", "/openapi.json")
    assert (status, served_description) == (200, description)
    for path in description["paths"]:
        method = next(iter(description["paths"][path]))
        assert call(served, method.upper(), path)[0] != 404, path


def test_the_served_charting_library_is_the_one_npm_pins(project_root: Path) -> None:
    static = project_root / "daisee/regie/static"
    dist = project_root / "node_modules/uplot/dist"
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        assert (static / name).read_bytes() == (dist / name).read_bytes(), name
    assert (static / "uPlot.LICENSE").read_bytes() == (project_root / "node_modules/uplot/LICENSE").read_bytes()


def pmo_token(service: Regie, loop: Loop) -> str:
    """A session of the loop's PMO, signed in with the node's unlocked account."""
    pmo = loop.pmo()
    _, _, answer = call(service, "POST", "/api/sign-in/message", {"address": pmo})
    signature = loop.sender.chain.w3.eth.sign(pmo, text=answer["message"]).to_0x_hex()
    _, headers, _ = call(service, "POST", "/api/sign-in", {"message": answer["message"], "signature": signature})
    return str(headers["set-cookie"].split(";")[0].split("=", 1)[1])


def test_the_pmo_sees_every_members_bills_and_no_one_else_does(served: Regie, played: tuple[Loop, DemoRun]) -> None:
    loop, run = played
    token = pmo_token(served, loop)
    query = f"/api/billing?date={_day_of_run(served)}"

    status, _, billing = call(served, "GET", query, cookie=token)
    assert status == 200, billing
    assert sorted(m["account"] for m in billing["members"]) == sorted(h.payout for h in run.households)
    settled = [r for t in range(run.intervals) for r in run.results[t].values()]
    assert sum(b["local_cost"] for m in billing["members"] for b in m["bills"]) == sum(r.cost for r in settled)
    assert sum(b["local_revenue"] for m in billing["members"] for b in m["bills"]) == sum(r.revenue for r in settled)
    status, _, text = call(served, "GET", f"/export/bills.csv?date={_day_of_run(served)}", cookie=token)
    lines = text.splitlines()
    assert lines[0].startswith("account,month,CONS,AUTOCONS,COMPLEMENT")
    assert len(lines) == 1 + len(run.households)
    status, _, page = call(served, "GET", f"/billing?date={_day_of_run(served)}", cookie=token)
    assert status == 200
    assert all(household.payout in page for household in run.households)
    logged = call(served, "GET", "/api/access-log", cookie=sign_in(served, payout_key(1)))[2]["entries"]
    assert {(e["reader"], e["basis"], e["what"]) for e in logged if e["basis"] == "billing"} == {
        (loop.pmo(), "billing", "bills")
    }

    member = sign_in(served, payout_key(1))
    status, _, refused = call(served, "GET", query, cookie=member)
    assert (status, refused["error"]) == (
        403,
        f"{run.households[1].payout} is not this loop's PMO: billing shows every member's bills to it only",
    )
    assert call(served, "GET", query)[0] == 401
