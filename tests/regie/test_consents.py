"""Consents through the régie, over real HTTP on the played loop: a member's signed grant recorded by the
régie, its grantee served exactly what it allows and refused once it is revoked, producers published by
their `open_data` consent, the neighbour comparison from the consenting households only, and every access
in the member's access log."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from daisee.chain.clock import chain_time
from daisee.chain.logs import event_logs
from daisee.consent.model import DAY, ZERO_ADDRESS, Audience, DataKind, Grant, Purpose
from daisee.consent.registry import ConsentRegistry, sign_grant, sign_revocation
from daisee.demo import DemoRun
from daisee.loop import Loop
from daisee.regie import access_log
from daisee.regie.access_log import Access
from daisee.regie.calendar import Granularity
from daisee.regie.consent_desk import MAX_GRANTS_A_DAY
from daisee.regie.consents import consent_by_id
from daisee.regie.publish import PublicationRule
from daisee.regie.service import Regie, RegieSettings
from tests.regie.test_web import _day_of_run, call, payout_key, sign_in

RESEARCHER = Account.from_key(b"\x01" * 32)
STRANGER = Account.from_key(b"\x02" * 32)
PRODUCER, CONSUMER, PROSUMER = 0, 1, 2  # households of the played loop (3, 4, 5 are of the same kinds again)


def grant_for(service: Regie, household: int, run: DemoRun, **fields: Any) -> Grant:
    """A grant of `household`'s meter, valid from its loop's genesis for thirty days, as `fields` change it."""
    genesis = service.context.facts.genesis
    values: dict[str, Any] = {
        "meter_id": run.households[household].meter_id,
        "audience": Audience.ACCOUNT,
        "grantee": RESEARCHER.address,
        "purpose": Purpose.RESEARCH,
        "kinds": DataKind.CONSUMPTION,
        "granularity": Granularity.HOUR,
        "history_days": 0,
        "valid_from": genesis,
        "valid_until": genesis + 30 * DAY,
        "nonce": time.time_ns(),
    }
    return Grant(**(values | fields))


def submitted(service: Regie, household: int, grant: Grant) -> str:
    """Sign `grant` with the household's wallet, have the régie record it, and wait until it has indexed it."""
    desk = service.desk
    assert desk is not None
    signature = sign_grant(grant, Account.from_key(payout_key(household)), desk.chain_id, desk.address)
    status, _, answer = call(
        service, "POST", "/api/consents", {"message": grant.message(), "signature": "0x" + signature.hex()}
    )
    assert status == 200, answer
    consent_id = bytes.fromhex(answer["consent_id"][2:])
    assert consent_id == grant.consent_id(desk.chain_id, desk.address)
    for _ in range(200):
        with service.engine.connect() as db:
            if consent_by_id(db, consent_id) is not None:
                return answer["consent_id"]
        time.sleep(0.05)
    raise AssertionError("the régie did not index the consent")


def revoked(service: Regie, household: int, consent_id: str) -> None:
    desk = service.desk
    assert desk is not None
    signature = sign_revocation(
        bytes.fromhex(consent_id[2:]), Account.from_key(payout_key(household)), desk.chain_id, desk.address
    )
    status, _, answer = call(
        service, "POST", f"/api/consents/{consent_id}/revocation", {"signature": "0x" + signature.hex()}
    )
    assert status == 200, answer


def test_a_grantee_sees_what_its_consent_allows_and_nothing_once_it_is_revoked(
    served: Regie, played: tuple[Loop, DemoRun]
) -> None:
    _, run = played
    household = run.households[CONSUMER]
    genesis = served.context.facts.genesis
    grant = grant_for(served, CONSUMER, run, valid_from=genesis + 4 * 3600)  # intervals 0 and 1 left out
    consent_id = submitted(served, CONSUMER, grant)
    researcher = sign_in(served, RESEARCHER.key)
    day = _day_of_run(served)

    status, _, shared = call(served, "GET", f"/api/shared/{consent_id}?period=day&date={day}&granularity=step",
                             cookie=researcher)  # fmt: skip
    assert status == 200, shared
    curve = shared["curve"]
    assert curve["granularity"] == "hour"  # coarsened: the consent allows no finer
    assert set(curve) == {"granularity", "pas", "total", "rates", "horodate", "CONS"}
    consumed = [run.results[t][household.meter_id].consumed for t in range(run.intervals)]
    even_hours = curve["CONS"][0:16:2]  # an interval of two hours is summed in the hour it starts
    assert even_hours == [None, None, *consumed[2:]]
    assert all(value is None for value in curve["CONS"][1:16:2])
    assert shared["allowed"]["quantities"] == ["CONS"]

    whole_day = call(served, "GET", f"/api/shared/{consent_id}?period=day&date={day}&granularity=day",
                     cookie=researcher)[2]  # fmt: skip
    assert whole_day["curve"]["CONS"] == [None]  # the day begins before the consent's window: withheld whole
    csv = call(served, "GET", f"/export/shared/{consent_id}.csv?period=day&date={day}", cookie=researcher)[2]
    assert {line.split(",")[2] for line in csv.splitlines()[1:]} == {"CONS"}

    stranger = sign_in(served, STRANGER.key)
    assert call(served, "GET", f"/api/shared/{consent_id}", cookie=stranger)[0] == 403
    assert call(served, "GET", f"/api/shared/{consent_id}")[0] == 401
    member = sign_in(served, payout_key(CONSUMER))
    log = call(served, "GET", "/api/access-log", cookie=member)[2]
    mine = [e for e in log["entries"] if e["consent_id"] == consent_id]
    assert [(e["reader"], e["basis"], e["what"], e["granularity"]) for e in mine] == [
        (RESEARCHER.address, "research", "curve", "hour"),  # the CSV export
        (RESEARCHER.address, "research", "curve", "day"),
        (RESEARCHER.address, "research", "curve", "hour"),
    ]
    assert mine[-1]["data_from"] == served.context.calendar.start(2).isoformat()

    revoked(served, CONSUMER, consent_id)  # on chain now; the store may not have indexed it yet
    status, _, refusal = call(served, "GET", f"/api/shared/{consent_id}?date={day}", cookie=researcher)
    assert (status, refusal) == (403, {"error": f"consent {consent_id} is revoked: its data is no longer shared"})
    assert len(call(served, "GET", "/api/access-log", cookie=member)[2]["entries"]) == len(log["entries"])
    with served.engine.connect() as db:
        assert access_log.verify(db)


def test_a_grant_the_member_did_not_sign_is_refused_and_nothing_is_recorded(
    served: Regie, played: tuple[Loop, DemoRun]
) -> None:
    _, run = played
    desk = served.desk
    assert desk is not None
    grant = grant_for(served, CONSUMER, run)
    forged = sign_grant(grant, STRANGER, desk.chain_id, desk.address)
    status, _, answer = call(
        served, "POST", "/api/consents", {"message": grant.message(), "signature": "0x" + forged.hex()}
    )
    assert status == 400
    assert "payout account" in answer["error"]
    with served.engine.connect() as db:
        assert consent_by_id(db, grant.consent_id(desk.chain_id, desk.address)) is None
    desk.max_grants_a_day = 0  # a member who has had its day's grants recorded already
    signature = "0x" + sign_grant(grant, Account.from_key(payout_key(CONSUMER)), desk.chain_id, desk.address).hex()
    try:
        status, _, answer = call(served, "POST", "/api/consents", {"message": grant.message(), "signature": signature})
    finally:
        desk.max_grants_a_day = MAX_GRANTS_A_DAY
    assert (status, answer["error"][:50]) == (429, "this régie records at most 0 grants a meter a day:")
    bad = call(served, "POST", "/api/consents", {"message": {"meterId": "0x12"}, "signature": "0x" + forged.hex()})
    assert bad[0] == 400
    assert call(served, "POST", "/api/consents", {"message": grant.message(), "signature": "0x12"})[0] == 400


def test_a_member_drafts_a_grant_for_its_own_meter_only(served: Regie, played: tuple[Loop, DemoRun]) -> None:
    _, run = played
    member = sign_in(served, payout_key(CONSUMER))
    meter = "0x" + run.households[CONSUMER].meter_id.hex()
    fields = {"meter_id": meter, "grantee": "everyone", "purpose": "open_data", "kinds": ["consumption"],
              "granularity": "day", "until": "2999-01-01"}  # fmt: skip
    assert "at most 1096 days" in call(served, "POST", "/api/consents/draft", fields, cookie=member)[2]["error"]
    status, _, typed = call(served, "POST", "/api/consents/draft", fields | {"until": _in_days(served, 90)},
                            cookie=member)  # fmt: skip
    assert status == 200, typed
    assert typed["primaryType"] == "Grant"
    assert typed["message"]["audience"] == Audience.EVERYONE
    assert typed["message"]["grantee"] == ZERO_ADDRESS
    assert typed["domain"]["verifyingContract"] == served.desk.address if served.desk else False
    other = fields | {"meter_id": "0x" + run.households[PRODUCER].meter_id.hex()}
    assert call(served, "POST", "/api/consents/draft", other, cookie=member)[0] == 403
    assert call(served, "POST", "/api/consents/draft", fields | {"purpose": "gossip"}, cookie=member)[2] == {
        "error": "unknown purpose 'gossip': use one of loop_dashboard, neighbour_comparison, open_data, research, "
        "advice, supplier"
    }
    assert call(served, "POST", "/api/consents/draft", fields)[0] == 401


def _in_days(service: Regie, days: int) -> str:
    from datetime import UTC, datetime

    now = chain_time(service.loop.sender.chain)
    return datetime.fromtimestamp(now + days * DAY, UTC).date().isoformat()


def test_a_producer_is_published_by_its_open_data_consent_as_far_as_it_goes(
    served: Regie, played: tuple[Loop, DemoRun]
) -> None:
    _, run = played
    producer = run.households[PRODUCER]
    day = _day_of_run(served)
    assert call(served, "GET", f"/api/producers?period=day&date={day}")[2]["producers"] == []
    figures = grant_for(served, PRODUCER, run, audience=Audience.EVERYONE, grantee=ZERO_ADDRESS,
                        purpose=Purpose.OPEN_DATA, kinds=DataKind.PRODUCTION, granularity=Granularity.DAY)  # fmt: skip
    consent_id = submitted(served, PRODUCER, figures)

    funders = call(served, "GET", f"/api/producers?period=day&date={day}")[2]
    produced = [run.results[t][producer.meter_id] for t in range(run.intervals) if producer.meter_id in run.results[t]]
    assert [(p["meter_id"], p["consent_id"]) for p in funders["producers"]] == [
        ("0x" + producer.meter_id.hex(), consent_id)
    ]
    shown = funders["producers"][0]
    assert shown["PROD"] == sum(r.produced for r in produced)
    assert (shown["AUTOPROD"], shown["SURPLUS"], shown["revenue"]) == (None, None, None)  # not covered

    everything = grant_for(served, PRODUCER, run, audience=Audience.EVERYONE, grantee=ZERO_ADDRESS,
                           purpose=Purpose.OPEN_DATA, kinds=DataKind.PRODUCTION | DataKind.ALLOCATION | DataKind.BILL,
                           granularity=Granularity.STEP)  # fmt: skip
    finer = submitted(served, PRODUCER, everything)
    shown = call(served, "GET", f"/api/producers?period=day&date={day}")[2]["producers"][0]
    assert shown["consent_id"] == finer
    assert (shown["AUTOPROD"], shown["revenue"]) == (sum(r.sold for r in produced), sum(r.revenue for r in produced))
    member = sign_in(served, payout_key(PRODUCER))
    entries = call(served, "GET", "/api/access-log", cookie=member)[2]["entries"]
    assert [(e["reader"], e["basis"], e["what"]) for e in entries[:2]] == [("anyone", "open_data", "figures")] * 2
    for consent in (consent_id, finer):
        revoked(served, PRODUCER, consent)
    for _ in range(200):
        if not call(served, "GET", f"/api/producers?period=day&date={day}")[2]["producers"]:
            break
        time.sleep(0.05)
    assert call(served, "GET", f"/api/producers?period=day&date={day}")[2]["producers"] == []


@pytest.fixture
def comparing(played: tuple[Loop, DemoRun], tmp_path: Path) -> Iterator[Regie]:
    """The played loop's régie with a rule of three meters (its six households can compare), publishing
    its access log's running hash every half second."""
    loop, run = played
    store = f"sqlite:///{tmp_path / 'regie.sqlite'}"
    settings = RegieSettings(store, port=0, rule=PublicationRule(3), poll_seconds=0.2, anchor_seconds=0.5)
    service = Regie(settings, loop, run.deployment.block, run.deployment.consent_registry, loop.sender)
    service.start()
    yield service
    service.stop()


def test_a_member_compares_with_the_neighbours_that_consented_only(
    comparing: Regie, played: tuple[Loop, DemoRun]
) -> None:
    _, run = played
    member = sign_in(comparing, payout_key(CONSUMER))
    day = _day_of_run(comparing)

    def comparison() -> dict[str, Any]:
        return dict(call(comparing, "GET", f"/api/member?period=day&date={day}", cookie=member)[2]["comparison"])

    def consent(household: int) -> None:
        genesis = comparing.context.facts.genesis
        grant = grant_for(comparing, household, run, audience=Audience.MEMBERS, grantee=ZERO_ADDRESS,
                          purpose=Purpose.NEIGHBOUR_COMPARISON, history_days=62,
                          valid_until=genesis + 62 * DAY)  # fmt: skip
        submitted(comparing, household, grant)

    assert comparison() == {"neighbours": 0, "needed": 3, "enough": False}
    consent(2)
    consent(3)  # a producer: not a comparable household
    assert comparison() == {"neighbours": 1, "needed": 3, "enough": False}
    consent(4)
    consent(5)
    compared = comparison()
    assert (compared["neighbours"], compared["enough"]) == (3, True)

    def consumed(household: int, intervals: range) -> int:
        meter = run.households[household].meter_id
        return sum(run.results[t][meter].consumed for t in intervals if meter in run.results[t])

    everything = range(run.intervals)
    totals = [consumed(h, everything) for h in (2, 4, 5)]
    (month,) = [m for m in compared["months"] if m["median"] is not None]
    assert month["mine"] == consumed(CONSUMER, everything)
    assert (month["median"], month["households"]) == (statistics.median(totals), 3)
    assert month["frugal_fifth"] == statistics.quantiles(totals, n=5, method="inclusive")[0]
    hours = {h["at"]: h for h in compared["hours"]}
    first = [consumed(h, range(0, 1)) for h in (2, 4, 5)]
    assert (hours["00:00"]["mine"], hours["00:00"]["median"]) == (
        consumed(CONSUMER, range(0, 1)),
        statistics.median(first),
    )

    neighbour = sign_in(comparing, payout_key(2))
    entries = call(comparing, "GET", "/api/access-log", cookie=neighbour)[2]["entries"]
    reader = Account.from_key(payout_key(CONSUMER)).address
    assert {(e["reader"], e["basis"], e["what"]) for e in entries} == {(reader, "neighbour_comparison", "comparison")}
    assert {e["granularity"] for e in entries} == {"month", "hour"}


def test_the_access_logs_running_hash_is_published_on_chain(comparing: Regie) -> None:
    with comparing.engine.begin() as db:
        head = access_log.record(db, [Access(0, RESEARCHER.address, "research", None, "curve", 0, 1, "hour")], at=1)
    desk = comparing.desk
    assert desk is not None
    contract = ConsentRegistry(comparing.loop.sender, desk.address).contract
    for _ in range(100):
        anchored = event_logs(contract.events.AccessLogAnchored, 0, comparing.loop.sender.chain.w3.eth.block_number)
        if any(bytes(e["args"]["head"]) == head for e in anchored):
            break
        time.sleep(0.1)
    (found,) = [e["args"] for e in anchored if bytes(e["args"]["head"]) == head]
    with comparing.engine.connect() as db:
        assert (found["entries"], found["regie"]) == (access_log.head(db)[1], comparing.loop.sender.address)
