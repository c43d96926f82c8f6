"""The relay against a real anvil and a real loop: HTTP in, batches out, every refusal, restarts and the CLI."""

from __future__ import annotations

import http.client
import json
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak
from web3.types import Wei

from daisee.bench_relay import bench_relay
from daisee.chain.accounts import create_account
from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, free_port
from daisee.chain.transact import Sender
from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec
from daisee.readings import LoopDomain, Reading, SignedReading
from daisee.relay import Relay, RelaySettings
from daisee.relay.intake import MAX_BODY_BYTES, REFUSALS_PER_MINUTE
from daisee.relay.meters import WATCH_SECONDS, MeterCache
from daisee.relay.queue import ReadingQueue
from daisee.relay.worker import SendingProcess, SendingSettings, SendingThreads, sending
from tests.contract.conftest import INTERVAL, Household, SignedLoop, make_signed_loop

WAIT_SECONDS = 30.0
NEVER = 3600.0  # a batch-seconds threshold no test reaches

MakeRelay = Callable[..., Relay]


@pytest.fixture
def env(anvil_node: LocalNode) -> SignedLoop:
    """A fresh loop with a producer, a consumer and a prosumer admitted in interval 0, a household's default
    limits, and intervals 0 to 19 over; intervals 0 and 1 can be reported (settlement lag)."""
    return make_signed_loop(connect(anvil_node.url), intervals_over=20)


def producer(env: SignedLoop) -> Household:
    return env.households[0]


def consumer(env: SignedLoop) -> Household:
    return env.households[1]


def prosumer(env: SignedLoop) -> Household:
    return env.households[2]


@pytest.fixture
def queue_file(tmp_path: Path) -> Path:
    return tmp_path / "relay.sqlite"


@pytest.fixture
def make_relay(env: SignedLoop, queue_file: Path) -> Iterator[MakeRelay]:
    """`make_relay(**settings)`: an unstarted relay on a free loopback port, paying with the outsider account."""
    started: list[Relay] = []

    def make(**settings: Any) -> Relay:
        relay = Relay(Loop(env.outsider, env.loop.address), queue_file, RelaySettings(port=0, **settings))
        started.append(relay)
        return relay

    yield make
    for relay in started:  # stopped already, unless a test failed half-way
        relay.stop()


# ---------------------------------------------------------------- HTTP


def call(url: str, body: bytes | None = None) -> tuple[int, Any]:
    """GET `url`, or POST `body` to it; the status and the decoded JSON answer."""
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=WAIT_SECONDS) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def post(relay: Relay, payload: object) -> tuple[int, Any]:
    return call(relay.url + "/readings", json.dumps(payload).encode())


def fate(relay: Relay, signed: SignedReading) -> tuple[int, Any]:
    return call(f"{relay.url}/readings/0x{signed.reading.meter_id.hex()}/{signed.reading.interval}")


def status(relay: Relay) -> dict[str, Any]:
    code, body = call(relay.url + "/status")
    assert code == 200
    return dict(body)


def wait_for(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_settled(relay: Relay, *readings: SignedReading) -> list[dict[str, Any]]:
    """Wait until every reading is accepted or rejected; their fates."""
    wait_for("the batch", lambda: all(fate(relay, r)[1]["status"] in ("accepted", "rejected") for r in readings))
    return [fate(relay, r)[1] for r in readings]


# ---------------------------------------------------------------- the chain


def accepted_on_chain(env: SignedLoop, signed: SignedReading) -> list[str]:
    """Transactions in which the loop accepted this meter's interval."""
    reading = signed.reading
    logs = env.loop.contract.events.ReadingAccepted.get_logs(
        argument_filters={"meterId": reading.meter_id, "interval": reading.interval}, from_block=0
    )
    return [log["transactionHash"].to_0x_hex() for log in logs]


def rejections_on_chain(env: SignedLoop) -> int:
    return len(env.loop.contract.events.ReadingRejected.get_logs(from_block=0))


# ---------------------------------------------------------------- the happy path and the thresholds


def test_a_valid_reading_is_queued_then_accepted_on_chain(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = prosumer(env)
    signed = env.sign(house, 0, 1_200, 2_200)
    with make_relay(batch_seconds=1.0) as relay:
        assert call(relay.url + "/health") == (
            200,
            {"status": "ok", "chain_id": env.chain.chain_id, "loop": env.loop.address},
        )
        assert post(relay, signed.to_json()) == (202, {"queued": 1})
        assert fate(relay, signed) == (200, {"status": "queued", "reason": None, "tx": None})

        [settled] = wait_settled(relay, signed)

        assert settled["status"] == "accepted"
        assert settled["reason"] is None
        assert accepted_on_chain(env, signed) == [settled["tx"]]
        assert env.counter(house) == (1, 1_200, 2_200)
        report = status(relay)
        assert report["queue_depth"] == report["in_flight"] == 0
        assert (report["submitted"], report["accepted"], report["rejected"]) == (1, 1, {})
        assert report["batches"] == 1
        assert report["last_batch"]["tx"] == settled["tx"]
        assert report["last_batch"]["gas_used"] > 0
        assert report["last_error"] is None
        assert report["watch"]["trusted"] is True
        assert report["watch"]["last_error"] is None


def test_a_reading_as_javascript_clients_write_it_is_taken(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = consumer(env)
    signed = env.sign(house, 0, 1_500, 0)
    r_s_v = signed.r + (int.from_bytes(signed.vs, "big") & (2**255 - 1)).to_bytes(32, "big")
    v = 28 if signed.vs[0] & 0x80 else 27
    numbers = ("interval", "import_wh", "export_wh")
    written = {key: str(value) if key in numbers else value for key, value in signed.to_json().items()}
    del written["r"], written["vs"]
    written["signature"] = "0x" + (r_s_v + bytes([v])).hex()
    with make_relay(batch_seconds=0.2) as relay:
        assert post(relay, written) == (202, {"queued": 1})
        [settled] = wait_settled(relay, signed)
    assert settled["status"] == "accepted"
    assert env.counter(house) == (1, 1_500, 0)


def test_a_full_batch_goes_at_once_and_a_partial_one_waits(env: SignedLoop, make_relay: MakeRelay) -> None:
    readings = [env.sign(h, 0, 10 * i, 0) for i, h in enumerate(env.households)]
    with make_relay(batch_size=3, batch_seconds=NEVER) as relay:
        for signed in readings[:2]:
            assert post(relay, signed.to_json())[0] == 202
        time.sleep(1.0)
        assert [fate(relay, r)[1]["status"] for r in readings[:2]] == ["queued", "queued"]
        assert status(relay)["batches"] == 0

        assert post(relay, readings[2].to_json())[0] == 202
        fates = wait_settled(relay, *readings)

        assert {f["status"] for f in fates} == {"accepted"}
        assert len({f["tx"] for f in fates}) == 1  # one transaction
        assert status(relay)["last_batch"]["readings"] == 3


def test_a_partial_batch_goes_once_its_oldest_reading_waited_batch_seconds(
    env: SignedLoop, make_relay: MakeRelay
) -> None:
    first, second = env.sign(producer(env), 0, 0, 5), env.sign(consumer(env), 0, 7, 0)
    with make_relay(batch_size=100, batch_seconds=2.0) as relay:
        assert post(relay, first.to_json())[0] == 202
        time.sleep(1.0)
        assert post(relay, second.to_json())[0] == 202
        assert fate(relay, first)[1]["status"] == "queued"

        fates = wait_settled(relay, first, second)

        assert [f["status"] for f in fates] == ["accepted", "accepted"]
        assert fates[0]["tx"] == fates[1]["tx"]  # the younger reading rode along


# ---------------------------------------------------------------- refusals


def _post_raw(relay: Relay, body: bytes) -> tuple[int, Any]:
    return call(relay.url + "/readings", body)


def _stranger(env: SignedLoop) -> SignedReading:
    return Reading(keccak(text="nobody"), 0, 1, 1).sign(Account.create().key, env.loop.domain)


def _forged(env: SignedLoop) -> SignedReading:
    house, forger = prosumer(env), consumer(env)
    return Reading(house.meter_id, 0, 1, 1).sign(forger.key.key, env.loop.domain)


def _before_admission(env: SignedLoop) -> SignedReading:
    """A reading of a meter admitted during interval 20 (the notice is 0) for interval 5."""
    late = Household(keccak(text="late"), Account.create(), MeterKind.CONSUMER, env.outsider)
    env.loop.add_meters([MeterSpec(late.meter_id, late.key.address, late.payout, late.kind)])
    return env.sign(late, 5, 1, 0)


def _below_the_chain(env: SignedLoop, relay: Relay) -> SignedReading:
    """Interval 1 with an import index below the one the chain accepted for interval 0 (sent by the gateway
    itself), once the relay's watch has seen it."""
    env.loop.submit([env.sign(consumer(env), 0, 500, 0)])
    wait_for("the watch", lambda: relay.meters.get(consumer(env).meter_id).next_interval == 1)  # type: ignore[union-attr]
    return env.sign(consumer(env), 1, 499, 0)


# A household's default limits: 12 kVA of import (3,000 Wh in 900 s), 9 kWc of export (2,250 Wh); none for the
# flow a kind cannot have.
IMPORT_LIMIT_WH, EXPORT_LIMIT_WH = 12_000 * INTERVAL // 3600, 9_000 * INTERVAL // 3600


REFUSALS: dict[str, tuple[Callable[[SignedLoop, Relay], tuple[int, Any]], int, str, str | None]] = {
    "bad JSON": (lambda env, relay: _post_raw(relay, b'{"meter_id": '), 400, "body refused: not JSON", None),
    "not UTF-8": (lambda env, relay: _post_raw(relay, b"\xff\xfe"), 400, "body refused: not UTF-8", None),
    # 200 kB that crashed the relay with SIGSEGV inside json.loads (py_ecc's recursion limit is 100000)
    "depth bomb": (
        lambda env, relay: _post_raw(relay, b"[" * 100_000 + b"]" * 100_000),
        400,
        "body refused: nested deeper than 32 levels",
        None,
    ),
    "missing key": (
        lambda env, relay: post(relay, {"meter_id": "0x" + "00" * 32}),
        400,
        "missing key 'interval'",
        None,
    ),
    "empty list": (lambda env, relay: post(relay, {"readings": []}), 400, "non-empty list", None),
    "oversize body": (
        lambda env, relay: _post_raw(relay, b" " * (MAX_BODY_BYTES + 1)),
        413,
        f"body of {MAX_BODY_BYTES + 1:,} bytes is over",
        None,
    ),
    "unknown meter": (
        lambda env, relay: post(relay, _stranger(env).to_json()),
        422,
        "is not registered in loop",
        "UNKNOWN_METER",
    ),
    "bad signature": (
        lambda env, relay: post(relay, _forged(env).to_json()),
        422,
        "is not signed by the meter's",
        "BAD_SIGNATURE",
    ),
    "before the meter's admission": (
        lambda env, relay: post(relay, _before_admission(env).to_json()),
        422,
        "takes readings from interval 20 on (its admission and the loop's notice), not 5",
        "NOT_YET_ACTIVE",
    ),
    "index below the chain's": (
        lambda env, relay: post(relay, _below_the_chain(env, relay).to_json()),
        422,
        "has indices (import 499, export 0 Wh) below its last accepted ones (500, 0 Wh)",
        "INDEX_DECREASED",
    ),
    "export from a consumer": (
        lambda env, relay: post(relay, env.sign(consumer(env), 0, 10, 1).to_json()),
        422,
        "is a consumer but interval 0 has 1 Wh exported since its last accepted reading",
        "FLOW_NOT_ALLOWED",
    ),
    "import into a producer": (
        lambda env, relay: post(relay, env.sign(producer(env), 0, 1, 10).to_json()),
        422,
        "is a producer but interval 0 has 1 Wh imported since its last accepted reading",
        "FLOW_NOT_ALLOWED",
    ),
    "import above the subscription": (
        lambda env, relay: post(relay, env.sign(consumer(env), 0, IMPORT_LIMIT_WH + 1, 0).to_json()),
        422,
        f"interval 0: {IMPORT_LIMIT_WH + 1} Wh imported since its last accepted reading is above its limit of "
        f"12000 W over 900 s ({IMPORT_LIMIT_WH} Wh)",
        "ABOVE_METER_LIMIT",
    ),
    "export above the installed peak": (
        lambda env, relay: post(relay, env.sign(prosumer(env), 1, 0, 2 * EXPORT_LIMIT_WH + 1).to_json()),
        422,
        f"interval 1: {2 * EXPORT_LIMIT_WH + 1} Wh exported since its last accepted reading is above its limit of "
        f"9000 W over 1800 s ({2 * EXPORT_LIMIT_WH} Wh)",
        "ABOVE_METER_LIMIT",
    ),
}


@pytest.mark.parametrize("case", REFUSALS, ids=str)
def test_a_refused_post_says_why_and_queues_nothing(env: SignedLoop, make_relay: MakeRelay, case: str) -> None:
    send, code, message, reason = REFUSALS[case]
    with make_relay(batch_seconds=NEVER) as relay:
        answer_code, body = send(env, relay)

        error = body.pop("error")
        assert answer_code == code
        assert message in error
        assert "\n" not in error
        assert body == ({} if reason is None else {"reason": reason})
        assert status(relay)["queue_depth"] == 0
        assert status(relay)["batches"] == 0


def test_a_declared_oversize_body_is_refused_before_it_is_read(env: SignedLoop, make_relay: MakeRelay) -> None:
    with make_relay(batch_seconds=NEVER) as relay:
        host, port = relay.url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=WAIT_SECONDS)
        connection.putrequest("POST", "/readings")
        connection.putheader("Content-Length", str(100 * MAX_BODY_BYTES))
        connection.endheaders()  # and never send the 100 MiB
        response = connection.getresponse()

        assert response.status == 413
        assert "is over" in json.load(response)["error"]
        connection.close()


def test_a_removed_meter_is_refused(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = prosumer(env)
    env.loop.remove_meter(house.meter_id)
    with make_relay(batch_seconds=NEVER) as relay:
        assert post(relay, env.sign(house, 0, 1, 1).to_json()) == (
            422,
            {"error": f"meter 0x{house.meter_id.hex()} was removed from the loop", "reason": "METER_INACTIVE"},
        )
        assert status(relay)["queue_depth"] == 0


def test_the_limit_counts_from_the_meter_s_last_accepted_reading(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = consumer(env)
    idle = [env.sign(h, 0, 0, 0) for h in (producer(env), prosumer(env))]
    env.loop.submit([env.sign(house, 0, IMPORT_LIMIT_WH, 0), *idle])  # a full interval at 12 kVA: just within
    env.loop.finalize(0)
    env.loop.settle()  # so that interval 2 is within the settlement lag
    with make_relay(batch_seconds=NEVER) as relay:
        code, body = post(relay, env.sign(house, 1, 2 * IMPORT_LIMIT_WH + 1, 0).to_json())
        assert (code, body["reason"]) == (422, "ABOVE_METER_LIMIT")
        assert f"{IMPORT_LIMIT_WH + 1} Wh imported since its last accepted reading" in body["error"]
        assert "over 900 s" in body["error"]

        # a gateway back from an outage: interval 2's reading covers intervals 1 and 2, twice the energy
        catch_up = env.sign(house, 2, 3 * IMPORT_LIMIT_WH, 0)
        assert post(relay, catch_up.to_json()) == (202, {"queued": 1})
        assert status(relay)["queue_depth"] == 1


def test_a_queued_reading_the_chain_would_now_refuse_costs_no_gas(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = prosumer(env)
    queued = env.sign(house, 1, 0, 2 * EXPORT_LIMIT_WH)  # within the limit over intervals 0 and 1
    with make_relay(batch_seconds=NEVER, batch_size=2, meter_ttl=0.0) as relay:
        assert post(relay, queued.to_json())[0] == 202
        env.loop.submit([env.sign(house, 0, 0, 0)])  # the gateway sent interval 0 itself: interval 1 alone is over
        other = env.sign(consumer(env), 0, 10, 0)
        assert post(relay, other.to_json())[0] == 202  # the batch is full

        refused, accepted = wait_settled(relay, queued, other)

    assert refused == {"status": "rejected", "reason": "ABOVE_METER_LIMIT", "tx": None}
    assert accepted["status"] == "accepted"
    assert rejections_on_chain(env) == 0
    assert env.counter(house) == (1, 0, 0)


def test_a_repaired_meter_is_picked_up_at_once(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = consumer(env)
    with make_relay(batch_seconds=NEVER, batch_size=2, meter_ttl=NEVER) as relay:
        before = env.sign(house, 0, 100, 0)
        assert post(relay, before.to_json())[0] == 202  # the meter is now cached with indices (0, 0)
        env.loop.repair_meter(house.meter_id, house.key.address, 10_000, 0)  # swapped for one at 10 kWh
        after = env.sign(house, 1, 10_500, 0)  # from the cache, 10,500 Wh in 1,800 s: above 12 kVA

        assert post(relay, after.to_json()) == (202, {"queued": 1})

        refused, accepted = wait_settled(relay, before, after)

    assert refused == {"status": "rejected", "reason": "INDEX_DECREASED", "tx": None}  # no gas spent on it
    assert accepted["status"] == "accepted"
    assert env.counter(house) == (2, 10_500, 0)


def test_a_duplicate_of_a_queued_or_recorded_reading_is_a_conflict(env: SignedLoop, make_relay: MakeRelay) -> None:
    queued = env.sign(prosumer(env), 0, 1, 1)
    recorded = env.sign(consumer(env), 0, 2, 0)
    env.loop.submit([recorded])  # the gateway sent this one itself
    with make_relay(batch_seconds=NEVER) as relay:
        assert post(relay, queued.to_json())[0] == 202
        again = env.sign(prosumer(env), 0, 9, 9)  # another reading for the same interval

        code, body = post(relay, again.to_json())
        assert (code, body["error"].split(" is ")[-1]) == (409, "already queued: nothing to do")
        assert "reason" not in body  # the relay holds it: GET /readings/… tells its fate
        code, body = post(relay, recorded.to_json())
        assert (code, body["reason"]) == (409, "STALE_INTERVAL")  # the chain holds it
        assert "already has interval 0 or a later one on chain" in body["error"]
        assert status(relay)["queue_depth"] == 1
        assert fate(relay, recorded)[0] == 404


def test_a_reading_too_far_ahead_costs_no_gas_and_is_taken_once_settlement_caught_up(
    env: SignedLoop, make_relay: MakeRelay
) -> None:
    early = env.sign(prosumer(env), 5, 1, 1)  # settlement is at interval 0: too far ahead for now
    with make_relay(batch_seconds=0.2, meter_ttl=0.0) as relay:
        code, body = post(relay, early.to_json())
        assert (code, body["reason"]) == (422, "SETTLEMENT_BACKLOG")
        assert "send it again once the loop's keeper has caught up" in body["error"]
        assert status(relay)["queue_depth"] == 0

        for t in range(4):  # every meter reports intervals 0 to 3: they close, and are settled
            env.loop.submit([env.sign(h, t, 0, 0) for h in env.households])
            env.loop.finalize(t)
            env.loop.settle()
        assert post(relay, early.to_json()) == (202, {"queued": 1})
        [settled] = wait_settled(relay, early)
        assert settled["status"] == "accepted"


def test_a_client_refused_too_often_is_refused_unread(env: SignedLoop, make_relay: MakeRelay) -> None:
    unknown = [
        Reading(keccak(text=f"nobody/{i}"), 0, 1, 1).sign(Account.create().key, env.loop.domain) for i in range(5)
    ]
    with make_relay(batch_seconds=NEVER) as relay:
        answers = [post(relay, unknown[i % 5].to_json())[0] for i in range(REFUSALS_PER_MINUTE)]
        code, body = post(relay, env.sign(consumer(env), 0, 10, 0).to_json())  # even a good one, for a minute
        assert set(answers) == {422}
        assert code == 429
        assert body["error"] == (
            f"client 127.0.0.1 had more than {REFUSALS_PER_MINUTE} posts refused in a minute: "
            "fix what the refusals said, then send again later"
        )
        assert status(relay)["queue_depth"] == 0


def test_a_dead_reading_replayed_costs_no_gas(env: SignedLoop, make_relay: MakeRelay) -> None:
    advance_to(env.chain, chain_time(env.chain) + 86_400)  # the grace period of interval 0 is over
    env.loop.finalize(0)  # closed for good
    late = env.sign(prosumer(env), 0, 1, 1)
    w3 = env.chain.w3
    with make_relay(batch_seconds=0.2) as relay:
        payer = relay.loop.sender.address
        sent = w3.eth.get_transaction_count(payer)
        for _ in range(10):
            code, body = post(relay, late.to_json())
            assert (code, body["reason"]) == (422, "INTERVAL_FINALIZED")
        time.sleep(0.5)  # a few batcher rounds
        assert status(relay)["batches"] == 0
        assert w3.eth.get_transaction_count(payer) == sent
        assert "is finalized: too late for it, the meter's next reading carries its energy" in body["error"]


def test_a_meter_over_its_rate_limit_is_told_to_slow_down(env: SignedLoop, make_relay: MakeRelay) -> None:
    house, neighbour = prosumer(env), consumer(env)
    with make_relay(batch_seconds=NEVER, rate_limit=1) as relay:
        assert post(relay, env.sign(house, 0, 1, 1).to_json())[0] == 202

        code, body = post(relay, env.sign(house, 1, 2, 2).to_json())

        assert code == 429
        assert "more than 1 readings in a minute" in body["error"]
        assert post(relay, env.sign(neighbour, 0, 1, 0).to_json())[0] == 202  # a neighbour is not slowed down
        assert status(relay)["queue_depth"] == 2


def test_a_multi_reading_post_is_all_or_nothing(env: SignedLoop, make_relay: MakeRelay) -> None:
    good = [env.sign(consumer(env), 0, 3, 0), env.sign(prosumer(env), 0, 4, 4)]
    with make_relay(batch_seconds=NEVER) as relay:
        code, body = post(relay, {"readings": [r.to_json() for r in (good[0], _forged(env), good[1])]})

        assert code == 422
        assert body["index"] == 1
        assert body["error"].startswith("reading #1: meter 0x")
        assert [fate(relay, r)[0] for r in good] == [404, 404]

        assert post(relay, {"readings": [r.to_json() for r in good]}) == (202, {"queued": 2})
        code, body = post(relay, {"readings": [env.sign(producer(env), 0, 0, 1).to_json(), good[1].to_json()]})
        assert (code, body["index"]) == (409, 1)
        assert status(relay)["queue_depth"] == 2


# ---------------------------------------------------------------- exactly once


def test_duplicate_posts_reach_the_chain_exactly_once(env: SignedLoop, make_relay: MakeRelay) -> None:
    signed = env.sign(prosumer(env), 0, 50, 60)
    with make_relay(batch_seconds=1.0) as relay, ThreadPoolExecutor(8) as pool:
        codes = sorted(pool.map(lambda _: post(relay, signed.to_json())[0], range(8)))
        assert codes == [202] + [409] * 7

        [settled] = wait_settled(relay, signed)
        assert post(relay, signed.to_json())[0] == 409

    assert settled["status"] == "accepted"
    assert accepted_on_chain(env, signed) == [settled["tx"]]
    assert rejections_on_chain(env) == 0


def test_concurrent_posts_are_each_queued_once_in_group_commits(env: SignedLoop, make_relay: MakeRelay) -> None:
    readings = [env.sign(h, t, 10 * (t + 1), 0 if h.kind is MeterKind.CONSUMER else 5 * (t + 1)) for t in (0, 1)
                for h in env.households if h.kind is not MeterKind.PRODUCER]  # fmt: skip
    readings += [env.sign(producer(env), t, 0, 7 * (t + 1)) for t in (0, 1)]
    with make_relay(batch_seconds=NEVER) as relay, ThreadPoolExecutor(len(readings)) as pool:
        codes = list(pool.map(lambda signed: post(relay, signed.to_json())[0], readings))
        assert codes == [202] * len(readings)
        assert status(relay)["queue_depth"] == len(readings)


def test_batches_in_flight_never_split_a_meter_s_readings(env: SignedLoop, make_relay: MakeRelay) -> None:
    """Batches sent at once are estimated each without the others: a meter's later reading waits for the
    next round of batches rather than ride in a later batch of the same round."""
    house = consumer(env)
    first, second = env.sign(house, 0, 100, 0), env.sign(house, 1, 200, 0)
    other = env.sign(prosumer(env), 0, 10, 20)
    with make_relay(batch_size=1, in_flight=3, batch_seconds=NEVER) as relay:
        assert post(relay, {"readings": [first.to_json(), second.to_json(), other.to_json()]}) == (202, {"queued": 3})
        fates = wait_settled(relay, first, second, other)

    assert [f["status"] for f in fates] == ["accepted"] * 3
    assert len({f["tx"] for f in fates}) == 3
    assert rejections_on_chain(env) == 0
    assert env.counter(house) == (2, 200, 0)


def test_the_loop_s_events_keep_the_cached_meters_true(
    env: SignedLoop, make_relay: MakeRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter is read from the chain once, when the relay starts; the readings the loop accepts then move its
    cached counters on, whoever sent them, and a change of the meter makes the relay read it again."""
    house = consumer(env)
    with make_relay(batch_seconds=0.2, meter_ttl=0.0) as relay:
        wait_for("the warm-up", lambda: relay.status()["watch"]["warm"])
        assert relay.meters.get(house.meter_id) == env.loop.meter(house.meter_id)
        reads: list[bytes] = []
        read = relay.loop.meter
        monkeypatch.setattr(relay.loop, "meter", lambda meter_id: reads.append(meter_id) or read(meter_id))
        first = env.sign(house, 0, 100, 0)
        assert post(relay, first.to_json())[0] == 202
        wait_settled(relay, first)
        env.loop.submit([env.sign(house, 1, 150, 0)])  # its gateway sent interval 1 itself
        wait_for("the watch", lambda: relay.meters.get(house.meter_id).next_interval == 2)  # type: ignore[union-attr]
        replayed = post(relay, env.sign(house, 1, 150, 0).to_json())
        assert reads == []  # the warm-up had read it

        env.loop.remove_meter(house.meter_id)
        # the cached meter answers until the watch drops it; then the meter is read as the chain has it
        wait_for("the watch", lambda: relay.meters.get(house.meter_id).active is False)  # type: ignore[union-attr]

    assert replayed[0] == 409
    assert replayed[1]["reason"] == "STALE_INTERVAL"
    assert reads == [house.meter_id]


def test_a_warm_up_the_node_fails_is_retried_at_the_watch_s_pace(
    env: SignedLoop, make_relay: MakeRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading the registered meters once the relay starts is retried once per WATCH_SECONDS while the node
    fails, never in a loop that hammers it; the relay answers meanwhile and warms up once it can."""
    tries: list[float] = []

    def node_down(self: Loop, start: int = 0, stop: int | None = None) -> list[bytes]:
        tries.append(time.monotonic())
        raise OSError("connection refused")

    monkeypatch.setattr(Loop, "meter_ids", node_down)
    with make_relay(batch_seconds=NEVER) as relay:
        wait_for("a failed warm-up", lambda: status(relay)["watch"]["last_error"] is not None)
        time.sleep(2.5 * WATCH_SECONDS)
        report = status(relay)["watch"]
        assert 1 <= len(tries) <= 4
        assert report["warm"] is False
        assert "OSError" in report["last_error"] or "connection refused" in report["last_error"]
        assert post(relay, env.sign(consumer(env), 0, 10, 0).to_json()) == (202, {"queued": 1})

        monkeypatch.undo()
        wait_for("the warm-up", lambda: status(relay)["watch"]["warm"])
        assert status(relay)["watch"]["last_error"] is None


def test_a_restarted_relay_submits_its_queue_exactly_once(env: SignedLoop, make_relay: MakeRelay) -> None:
    readings = [env.sign(producer(env), 0, 0, 100), env.sign(consumer(env), 0, 101, 0)]
    readings += [env.sign(prosumer(env), 0, 102, 0), env.sign(prosumer(env), 1, 200, 0)]
    with make_relay(batch_seconds=NEVER) as first:
        assert post(first, {"readings": [r.to_json() for r in readings]}) == (202, {"queued": 4})
    assert env.counter(prosumer(env))[0] == 0  # nothing sent before the stop

    with make_relay(batch_seconds=0.5) as second:
        fates = wait_settled(second, *readings)
        report = status(second)

    assert [f["status"] for f in fates] == ["accepted"] * 4
    for signed, settled in zip(readings, fates, strict=True):
        assert accepted_on_chain(env, signed) == [settled["tx"]]
    assert rejections_on_chain(env) == 0
    assert env.counter(prosumer(env)) == (2, 200, 0)
    assert (report["submitted"], report["accepted"]) == (4, 4)


def test_a_batch_whose_receipt_was_lost_is_not_sent_again(
    env: SignedLoop, make_relay: MakeRelay, queue_file: Path
) -> None:
    readings = [env.sign(h, 0, 7 + i, 0) for i, h in enumerate(env.households[1:])]
    with make_relay(batch_seconds=NEVER) as first:
        assert post(first, {"readings": [r.to_json() for r in readings]})[0] == 202
    queue = ReadingQueue(queue_file, env.loop.domain)  # a relay that crashed right after sending its batch:
    entries = queue.take(10)
    queue.mark_submitted(entries, env.chain.w3.eth.block_number, time.time())
    result = env.loop.submit([e.signed for e in entries])
    queue.close()

    with make_relay(batch_seconds=0.5) as second:
        fates = wait_settled(second, *readings)
        report = status(second)

    sent = result.receipt["transactionHash"].to_0x_hex()
    assert fates == [{"status": "accepted", "reason": None, "tx": sent}] * 2
    assert (report["submitted"], report["accepted"], report["batches"]) == (0, 2, 0)
    assert rejections_on_chain(env) == 0


def test_a_queue_of_schema_1_is_migrated_and_its_readings_checked_in_full(
    env: SignedLoop, make_relay: MakeRelay, queue_file: Path
) -> None:
    good, forged = env.sign(prosumer(env), 0, 5, 1), env.sign(consumer(env), 0, 9, 0)
    forged = SignedReading(forged.reading, forged.r, good.vs)  # queued by an old relay: no signer kept
    with sqlite3.connect(queue_file) as db:
        db.executescript(SCHEMA_1)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", "1"), *_owner(env)])
        db.executemany(
            "INSERT INTO readings (meter_id, interval, reading, status, received_at, updated_at) "
            "VALUES (?, 0, ?, 'queued', 1, 1)",
            [(signed.reading.meter_id, json.dumps(signed.to_json())) for signed in (good, forged)],
        )
    db.close()

    queue = ReadingQueue(queue_file, env.loop.domain)
    assert [(e.signed, e.signer) for e in queue.take(10)] == [(good, None), (forged, None)]
    queue.close()
    with make_relay(batch_seconds=0.2) as relay:
        accepted, rejected = wait_settled(relay, good, forged)

    assert accepted["status"] == "accepted"
    assert rejected == {"status": "rejected", "reason": "BAD_SIGNATURE", "tx": None}  # recovered, not trusted
    assert accepted_on_chain(env, good) == [accepted["tx"]]


def test_the_queue_keeps_the_signer_each_reading_was_checked_against(
    env: SignedLoop, make_relay: MakeRelay, queue_file: Path
) -> None:
    house = prosumer(env)
    signed = env.sign(house, 0, 4, 2)
    with make_relay(batch_seconds=NEVER) as relay:
        assert post(relay, signed.to_json())[0] == 202
    queue = ReadingQueue(queue_file, env.loop.domain)
    [entry] = queue.take(10)
    queue.close()

    assert (entry.signed, entry.signer) == (signed, house.key.address)


SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE readings (
    id INTEGER PRIMARY KEY, meter_id BLOB NOT NULL, interval INTEGER NOT NULL, reading TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, tx TEXT, sent_block INTEGER, received_at REAL NOT NULL,
    updated_at REAL NOT NULL, UNIQUE (meter_id, interval)
);
CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL);
"""


def _owner(env: SignedLoop) -> list[tuple[str, str]]:
    return [("chain_id", str(env.chain.chain_id)), ("loop", env.loop.domain.loop)]


# ---------------------------------------------------------------- the chain changes under the relay


def test_a_rotated_signer_is_picked_up_at_once(env: SignedLoop, make_relay: MakeRelay) -> None:
    house = prosumer(env)
    old_key_reading = env.sign(house, 0, 1, 1)
    new_key = Account.create()
    with make_relay(batch_seconds=NEVER, batch_size=2, meter_ttl=NEVER) as relay:
        assert post(relay, old_key_reading.to_json())[0] == 202  # the meter is now cached with the old signer
        env.loop.rotate_signer(house.meter_id, new_key.address)
        new_key_reading = Reading(house.meter_id, 1, 2, 2).sign(new_key.key, env.loop.domain)

        assert post(relay, new_key_reading.to_json())[0] == 202
        assert post(relay, Reading(house.meter_id, 1, 3, 3).sign(house.key.key, env.loop.domain).to_json())[0] == 422

        rejected, accepted = wait_settled(relay, old_key_reading, new_key_reading)

    assert rejected == {"status": "rejected", "reason": "BAD_SIGNATURE", "tx": None}  # no gas spent on it
    assert accepted["status"] == "accepted"
    assert env.counter(house) == (2, 2, 2)


def test_a_failing_batch_stays_queued_and_is_retried(env: SignedLoop, make_relay: MakeRelay) -> None:
    signed = env.sign(consumer(env), 0, 11, 0)
    env.loop.pause_readings()
    with make_relay(batch_seconds=0.2) as relay:
        assert post(relay, signed.to_json())[0] == 202
        wait_for("a failed attempt", lambda: status(relay)["last_error"] is not None)
        assert "rejected by the contract" in status(relay)["last_error"]["error"]
        assert fate(relay, signed)[1]["status"] == "queued"

        env.loop.unpause_readings()
        [settled] = wait_settled(relay, signed)

    assert settled["status"] == "accepted"
    assert accepted_on_chain(env, signed) == [settled["tx"]]


def test_a_relay_refuses_a_taken_port_and_another_loop_s_queue(
    env: SignedLoop, make_relay: MakeRelay, tmp_path: Path
) -> None:
    with make_relay() as relay:
        port = int(relay.url.rsplit(":", 1)[1])
        busy = Relay(Loop(env.outsider, env.loop.address), tmp_path / "other.sqlite", RelaySettings(port=port))
        with pytest.raises(DaiseeError, match=f"cannot listen on 127.0.0.1:{port}"):
            busy.start()

    elsewhere = LoopDomain(env.chain.chain_id, "0x" + "11" * 20)
    with pytest.raises(DaiseeError, match="is the queue of loop"):
        ReadingQueue(tmp_path / "relay.sqlite", elsewhere)


# ---------------------------------------------------------------- the command


PASSWORD = "relay-password-never-logged"


@contextmanager
def relay_serve(env: SignedLoop, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """`daisee relay serve` paying with a new keystore account, answering: the process, its URL, the account."""
    payer = create_account("relay", PASSWORD)
    w3 = env.chain.w3
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": env.pmo.address, "to": payer.address, "value": Wei(10**18)})
    )
    (tmp_path / "password").write_text(PASSWORD + "\n")
    port = free_port()
    daisee_bin = str(Path(sys.executable).with_name("daisee"))
    command = [daisee_bin, "relay", "serve", "--chain", env.chain.url or "", "--loop", env.loop.address]
    command += ["--account", "relay", "--password-file", str(tmp_path / "password"), "--port", str(port)]
    command += ["--batch-seconds", "0.5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert process.poll() is None, process.communicate()[1]
            try:
                return call(base + "/health")[0] == 200
            except OSError:
                return False

        wait_for("the relay to answer", healthy)
        yield process, base, payer.address
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_daisee_relay_serve_runs_until_sigint(env: SignedLoop, isolated_home: Path, tmp_path: Path) -> None:
    with relay_serve(env, tmp_path) as (process, base, payer):
        signed = env.sign(consumer(env), 0, 42, 0)
        assert call(base + "/readings", json.dumps(signed.to_json()).encode())[0] == 202
        where = f"{base}/readings/{signed.reading.meter_id.hex()}/0"
        wait_for("the batch", lambda: call(where)[1]["status"] == "accepted")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_SECONDS)

    assert process.returncode == 0, stderr
    assert accepted_on_chain(env, signed)
    assert (isolated_home / f"relay-{env.chain.chain_id}.sqlite").is_file()
    assert "event=relay_started" in stderr
    assert "event=batch_submitted" in stderr  # logged by the batcher's process, through the relay's
    assert "event=relay_stopped queue_depth=0" in stderr
    assert f"account={payer}" in stderr
    assert PASSWORD not in stderr
    assert "Traceback" not in stderr


def _descendants(pid: int) -> list[int]:
    """The live processes below `pid` (Linux /proc)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(c) for c in children if _alive(int(c))] + [d for c in children for d in _descendants(int(c))]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_the_batchers_process_never_outlives_the_relay(env: SignedLoop, isolated_home: Path, tmp_path: Path) -> None:
    with relay_serve(env, tmp_path) as (process, _, _):
        below = _descendants(process.pid)  # multiprocessing's fork server, and the batcher it forked
        assert len(below) >= 2
        process.kill()  # no chance to stop anything
        process.communicate()

    wait_for("the batcher's process to end", lambda: not any(_alive(pid) for pid in below))


def test_the_batcher_runs_in_a_process_of_its_own_on_a_node(make_relay: MakeRelay) -> None:
    relay = make_relay()
    assert isinstance(relay.sending, SendingProcess)
    relay.start()
    assert relay.status()["batches"] == 0
    relay.stop()
    assert relay.sending.exitcode == 0  # it stopped when told, its queue closed


def test_the_batcher_runs_in_a_thread_where_no_other_process_can_rebuild_the_loop(
    env: SignedLoop, tmp_path: Path
) -> None:
    # a sender whose key only this process's web3 middleware holds, on a node that does not unlock it
    local = Account.create()
    sender = Sender(env.chain, local.address)
    assert isinstance(sending(Loop(sender, env.loop.address), *_queue_and_meters(env, tmp_path)), SendingThreads)
    embedded = make_signed_loop(connect("embedded"))
    assert isinstance(sending(embedded.loop, *_queue_and_meters(embedded, tmp_path / "embedded")), SendingThreads)


def _queue_and_meters(env: SignedLoop, folder: Path) -> tuple[ReadingQueue, MeterCache, SendingSettings]:
    queue = ReadingQueue(folder / "relay.sqlite", env.loop.domain)
    return queue, MeterCache(env.loop), SendingSettings(100, 10.0, 1, 60.0, None)


def test_the_load_benchmark_drives_every_reading_through_the_relay(anvil_node: LocalNode) -> None:
    figures = bench_relay(connect(anvil_node.url), meters=12, rounds=1)

    assert [(r.interval, r.readings) for r in figures.rounds] == [(0, 12)]
    assert [(r.interval, r.readings) for r in figures.hostile_rounds] == [(1, 12)]
    for r in (*figures.rounds, *figures.hostile_rounds):
        assert 0 < r.max_backlog <= 12
        assert r.gas_used > 0
        assert (r.lost, r.duplicated) == (0, 0)
        assert len(r.latencies_ms) == 12
        assert r.relay_cpu_seconds > 0
    [attacked] = figures.hostile_rounds
    assert attacked.attacks is not None
    assert set(attacked.attacks) == {"slow", "depth_bomb", "oversize", "garbage", "replay"}
    report = figures.as_json()
    keys = {"intake_per_s", "onchain_per_s", "post_p50_ms", "post_p99_ms", "lost", "duplicated"}
    keys |= {"relay_cpu_us_per_reading"}
    assert keys <= set(report)
    assert keys <= set(report["hostile"])  # type: ignore[arg-type]
    assert report["meters"] == 12
