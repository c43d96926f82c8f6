"""The régie's flexibility signal on a played loop: computed from what the chain settled, Wh withheld from
everyone by the publication rule and shown to members, served as Agile rates, a plan for a task, "best times
today" on the pages, a retained MQTT message on a real broker, and `daisee flex plan` against it all."""

from __future__ import annotations

import json
import queue
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from daisee.cli.app import cli
from daisee.demo import DemoRun
from daisee.flex.forecast import Expected, Settled, expect
from daisee.flex.mqtt import Broker, compact, topic
from daisee.flex.planner import Task, plan
from daisee.loop import Loop
from daisee.regie.service import Regie, RegieSettings
from tests.mosquitto import Broker as RunningBroker
from tests.regie.conftest import INTERVAL_SECONDS
from tests.regie.test_web import call, payout_key, sign_in

HORIZON_STEPS = 36 * 3600 // INTERVAL_SECONDS


def _settled(served: Regie, run: DemoRun) -> list[Settled]:
    """The loop's settled steps as the chain's settlement events tell them (not the store)."""
    genesis = served.context.facts.genesis
    return [
        Settled(
            genesis + t * INTERVAL_SECONDS,
            sum(r.consumed for r in results.values()),
            sum(r.produced for r in results.values()),
        )
        for t, results in sorted(run.results.items())
    ]


def _expected_steps(served: Regie, run: DemoRun, now: int) -> list[Expected]:
    facts = served.context.facts
    history = _settled(served, run)
    return expect(history, now, facts.genesis, facts.interval_seconds, served.tz, served.settings.site).steps


def test_a_member_sees_the_signal_the_chain_s_settlements_make(served: Regie, played: tuple[Loop, DemoRun]) -> None:
    _, run = played
    status, _, signal = call(served, "GET", "/api/signal", cookie=sign_in(served, payout_key(1)))
    assert status == 200
    assert signal["interval"] == INTERVAL_SECONDS
    assert len(signal["profile"]) == len(signal["steps"]) == HORIZON_STEPS
    assert signal["end"] - signal["start"] == HORIZON_STEPS * INTERVAL_SECONDS
    assert signal["start"] <= signal["computed_at"] < signal["start"] + INTERVAL_SECONDS
    assert signal["published"] == {"consumption": True, "production": True}
    shown = [(s["start"], s["consumption_wh"], s["production_wh"]) for s in signal["steps"]]
    expected = _expected_steps(served, run, signal["computed_at"])
    assert shown == [(s.start, s.consumption_wh, s.production_wh) for s in expected]
    assert signal["basis"]["history_steps"] == len(run.results)
    assert [s["score"] for s in signal["steps"]] == signal["profile"]
    assert max(signal["profile"]) > 0  # the played days had sun
    assert signal["now"] == signal["steps"][0]
    assert signal["zone"] == "Europe/Paris"


def test_everyone_sees_the_scores_and_not_the_energy_of_a_loop_of_too_few_meters(served: Regie) -> None:
    status, _, signal = call(served, "GET", "/api/signal")
    assert status == 200
    assert signal["published"] == {"consumption": False, "production": False}  # 6 meters, 10 needed
    assert {s["production_wh"] for s in signal["steps"]} == {None}
    assert {s["consumption_wh"] for s in signal["steps"]} == {None}
    assert {s["surplus_wh"] for s in signal["steps"]} == {None}
    member_view = call(served, "GET", "/api/signal", cookie=sign_in(served, payout_key(1)))[2]
    assert signal["profile"] == member_view["profile"]


def test_agile_rates_price_an_extra_kwh_at_the_loop_s_share_of_it(served: Regie) -> None:
    status, _, rates = call(served, "GET", "/api/signal/agile")
    assert status == 200
    signal = call(served, "GET", "/api/signal", cookie=sign_in(served, payout_key(1)))[2]
    assert rates["count"] == len(rates["results"]) == HORIZON_STEPS
    loop_cents, grid_cents = 10.0, 25.0  # the demo's 100 units a Wh, the régie's default 250: 6 decimals
    for row, step in zip(rates["results"], reversed(signal["steps"]), strict=True):
        produced, consumed = step["production_wh"], step["consumption_wh"]
        share = min(1.0, produced / consumed) if consumed else float(produced > 0)
        assert row["value_exc_vat"] == pytest.approx(loop_cents * share + grid_cents * (1 - share), abs=1e-4)
        assert row["value_inc_vat"] == pytest.approx(row["value_exc_vat"] * 1.2, abs=1e-3)
    assert {r["value_exc_vat"] for r in rates["results"]} >= {loop_cents, grid_cents}  # sun, and night
    assert rates["results"][0]["valid_to"].endswith("Z")


def test_the_plan_is_the_planner_s_on_the_members_signal(served: Regie, played: tuple[Loop, DemoRun]) -> None:
    _, run = played
    status, _, answer = call(served, "GET", "/api/plan?duration=4h&deadline=2099-01-01T00:00Z&power=3000")
    assert status == 200
    now = answer["computed_at"]
    steps = _expected_steps(served, run, now)
    expected = plan(steps, Task(4 * 3600, 3000, 4_070_908_800), now).as_json(served.tz)
    assert answer["plan"] == expected
    assert answer["plan"]["local_wh"] > 0


@pytest.mark.parametrize(
    ("query", "cause"),
    [
        ("deadline=18:00", "duration '': give hours and minutes"),
        ("duration=2h", "deadline '': give a local time (18:00)"),
        ("duration=soon&deadline=18:00", "duration 'soon'"),
        ("duration=2h&deadline=18:00&power=-1", "power '-1': give the task's power in W"),
        ("duration=2h&deadline=18:00&power=99999", "from 1 to 36,000"),
        ("duration=2h&deadline=1999-01-01T00:00Z", "cannot be done by the deadline"),
    ],
)
def test_a_bad_plan_request_is_refused_in_one_line(served: Regie, query: str, cause: str) -> None:
    status, _, answer = call(served, "GET", "/api/plan?" + query)
    assert status == 400
    assert cause in answer["error"]
    assert "\n" not in answer["error"]


def test_the_loop_page_shows_the_best_times_today(served: Regie) -> None:
    status, _, page = call(served, "GET", "/")
    assert status == 200
    assert "Best times today to use energy" in page
    loop = call(served, "GET", "/api/loop")[2]
    assert set(loop["flex"]) == {"now", "best_today", "published"}
    for window in loop["flex"]["best_today"]:
        assert f"{window['from'][11:16]}\N{EN DASH}{window['to'][11:16]}" in page


def test_the_signal_is_published_retained_on_the_loop_s_topic(
    played: tuple[Loop, DemoRun], mosquitto: RunningBroker, tmp_path: Path
) -> None:
    loop, run = played
    settings = RegieSettings(
        f"sqlite:///{tmp_path / 'regie.sqlite'}", port=0, poll_seconds=0.2, mqtt=Broker(mosquitto.host, mosquitto.port)
    )
    service = Regie(settings, loop, run.deployment.block)
    service.start()
    base = topic(loop.address)
    try:
        _read(mosquitto, base, 3)  # once the régie has published
        found = _read(mosquitto, base, 3)  # a device that connects later reads it at once, retained
        published = service.signals.current(service._loop_now())
    finally:
        service.stop()
    assert set(found) == {base, base + "/score", base + "/level"}
    assert all(retained for _, retained in found.values())
    message = json.loads(found[base][0])
    assert message == compact(published.signal)
    assert len(found[base][0]) < 1200  # a Tasmota's default MQTT buffer
    assert found[base + "/score"][0] == str(message["now"]["score"]).encode()
    assert found[base + "/level"][0] == message["now"]["level"].encode()


def _read(broker: RunningBroker, base: str, count: int) -> dict[str, tuple[bytes, bool]]:
    """The first `count` messages under `base` a new subscriber receives: (payload, retained) by topic."""
    received: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: received.put((m.topic, bytes(m.payload), m.retain))
    client.on_connect = lambda c, u, f, r, p: c.subscribe(base + "/#", qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    found: dict[str, tuple[bytes, bool]] = {}
    try:
        while len(found) < count:
            name, payload, retained = received.get(timeout=20)
            found[name] = (payload, retained)
    finally:
        client.disconnect()
        client.loop_stop()
    return found


def test_the_regie_says_it_cannot_reach_the_broker(played: tuple[Loop, DemoRun], tmp_path: Path) -> None:
    loop, run = played
    settings = RegieSettings(f"sqlite:///{tmp_path / 'r.sqlite'}", port=0, mqtt=Broker("127.0.0.1", 1))
    service = Regie(settings, loop, run.deployment.block)
    with pytest.raises(Exception, match=r"cannot reach the MQTT broker 127\.0\.0\.1:1 .*check it runs"):
        service.start()
    service.stop()


def test_flex_plan_asks_the_regie_and_plans_on_a_saved_signal_alike(served: Regie, tmp_path: Path) -> None:
    runner = CliRunner()
    deadline = "2099-01-01T00:00+00:00"
    asked = runner.invoke(
        cli, ["flex", "plan", "--duration", "2h", "--deadline", deadline, "--regie", served.url, "--json"]
    )
    assert asked.exit_code == 0, asked.output
    saved = tmp_path / "signal.json"
    signal = call(served, "GET", "/api/signal", cookie=sign_in(served, payout_key(1)))[2]
    saved.write_text(json.dumps(signal))
    on_file = runner.invoke(
        cli, ["flex", "plan", "--duration", "2h", "--deadline", deadline, "--signal", str(saved), "--json"]
    )
    assert on_file.exit_code == 0, on_file.output
    assert json.loads(on_file.output) == json.loads(asked.output)
    told = runner.invoke(cli, ["flex", "plan", "--duration", "2h", "--deadline", deadline, "--regie", served.url])
    assert told.output.startswith("start at ")
    assert "kWh from the loop's sun to spare" in told.output


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"[1, 2]", "is not a signal (a JSON object)"),
        (b'{"steps": [{"start": 1}]}', "is not a régie's signal with its energy"),
        (b"[" * 100_000, "give a signal saved from the régie's /api/signal"),
        (b"\xff", "give a signal saved from the régie's /api/signal"),
    ],
)
def test_flex_plan_refuses_a_file_that_is_no_signal(tmp_path: Path, content: bytes, cause: str) -> None:
    saved = tmp_path / "signal.json"
    saved.write_bytes(content)
    result = CliRunner().invoke(
        cli, ["flex", "plan", "--duration", "2h", "--deadline", "18:00", "--signal", str(saved)]
    )
    assert result.exit_code != 0
    assert cause in result.output
    assert "Traceback" not in result.output


def test_flex_plan_says_the_regie_s_refusal(served: Regie) -> None:
    result = CliRunner().invoke(cli, ["flex", "plan", "--duration", "2h", "--deadline", "noon", "--regie", served.url])
    assert result.exit_code != 0
    assert "the régie refused the plan: deadline 'noon'" in result.output


def test_a_plug_reads_the_step_under_way_alone(served: Regie) -> None:
    status, headers, small = call(served, "GET", "/api/signal/now")
    assert status == 200
    signal = call(served, "GET", "/api/signal")[2]
    assert small == {k: signal[k] for k in ("loop", "computed_at", "zone", "now")}
    assert int(headers["content-length"]) < 512
