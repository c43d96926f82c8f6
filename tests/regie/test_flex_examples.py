"""The examples of examples/flex/ against a loop played on anvil, its real régie and a real mosquitto: the
Home Assistant package's templates rendered on the real /api/signal, the Tasmota rule run as Tasmota's rule
engine would on the régie's real retained message, and the Shelly script run in node (with a stub of a
Shelly's script API) against the real /api/signal and the real broker. Each switches on at a score of 7 or
more and off below 5, as the examples' README says; the score is whatever the régie computes at the time
of the test, and the thresholds are checked for every score besides."""

from __future__ import annotations

import http.server
import json
import queue
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from daisee.demo import DemoRun
from daisee.flex.mqtt import Broker, topic
from daisee.loop import Loop
from daisee.regie.service import Regie, RegieSettings
from tests.mosquitto import Broker as RunningBroker

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "flex"
STUB = Path(__file__).with_name("shelly_stub.js")
ON_AT, OFF_BELOW = 7, 5  # what the README promises
SCORES = range(11)
LOOP_PLACEHOLDER = "<LOOP>"
REGIE_PLACEHOLDER = "http://REGIE_HOST:8547/api/signal/now"


def _wanted(score: int, before: bool | None) -> bool | None:
    """The relay's state after `score` for a switch that was `before` (None: never switched)."""
    if score >= ON_AT:
        return True
    if score < OFF_BELOW:
        return False
    return before


def _signal_body(served: Regie) -> str:
    """The body of GET /api/signal, as anyone (a plug, Home Assistant) reads it."""
    with urllib.request.urlopen(served.url + "/api/signal", timeout=30) as answer:
        assert answer.status == 200
        return answer.read().decode()


@pytest.fixture(scope="module")
def publishing(
    played: tuple[Loop, DemoRun], mosquitto: RunningBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Regie]:
    """The played loop's régie publishing its signal to the real broker, once it has published; its retained
    messages cleared at the end, so that no other test reads them for its own régie's."""
    loop, run = played
    store = tmp_path_factory.mktemp("regie-mqtt") / "regie.sqlite"
    settings = RegieSettings(
        f"sqlite:///{store}", port=0, poll_seconds=0.2, mqtt=Broker(mosquitto.host, mosquitto.port)
    )
    service = Regie(settings, loop, run.deployment.block)
    service.start()
    try:
        _retained(mosquitto, topic(loop.address) + "/score")
        yield service
    finally:
        service.stop()
        _clear(mosquitto, [topic(loop.address) + suffix for suffix in ("", "/score", "/level")])


def _clear(broker: RunningBroker, topics: list[str]) -> None:
    """Remove the retained messages of `topics` (an empty retained message does)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for name in topics:
            client.publish(name, b"", qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _retained(broker: RunningBroker, subscription: str) -> list[tuple[str, bytes, bool]]:
    """The messages a new subscriber to `subscription` gets within a second of the first: (topic, payload,
    retained)."""
    received: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda c, u, m: received.put((m.topic, bytes(m.payload), m.retain))
    client.on_connect = lambda c, u, f, r, p: c.subscribe(subscription, qos=0)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        found = [received.get(timeout=20)]
        while True:
            try:
                found.append(received.get(timeout=1))
            except queue.Empty:
                return found
    finally:
        client.disconnect()
        client.loop_stop()


# Home Assistant ----------------------------------------------------------------------------------------

# The keys of Home Assistant's RESTful integration (homeassistant/components/rest/schema.py) and of the
# sensors' template base schema.
REST_KEYS = {
    "resource", "resource_template", "authentication", "headers", "params", "method", "username", "password",
    "payload", "verify_ssl", "ssl_cipher_list", "timeout", "encoding", "scan_interval", "sensor", "binary_sensor",
}  # fmt: skip
SENSOR_KEYS = {
    "name", "unique_id", "icon", "picture", "device_class", "state_class", "unit_of_measurement",
    "json_attributes", "json_attributes_path", "value_template", "force_update",
}  # fmt: skip
AUTOMATION_KEYS = {"id", "alias", "description", "mode", "triggers", "conditions", "actions"}


def _package() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "home-assistant.yaml").read_text())


def _render(template: str, body: str) -> str:
    """`template` as the RESTful integration renders it: sandboxed, the body as `value` and parsed as
    `value_json`; strictly, so that a key the signal lacks fails here (Home Assistant would show nothing)."""
    environment = ImmutableSandboxedEnvironment(undefined=StrictUndefined)
    return environment.from_string(template).render(value=body, value_json=json.loads(body))


def _attributes(sensor: dict[str, Any], body: str) -> dict[str, Any]:
    """The sensor's attributes as the RESTful integration takes them: the `json_attributes` keys of the
    object at `json_attributes_path` (a plain $.a.b path here), or of the body's."""
    found = json.loads(body)
    path = sensor.get("json_attributes_path", "$")
    assert re.fullmatch(r"\$(\.\w+)*", path), path
    for name in path.split(".")[1:]:
        found = found[name]
    return {name: found[name] for name in sensor["json_attributes"] if name in found}


def _entity(sensor: dict[str, Any]) -> str:
    """The entity id Home Assistant gives a sensor of this name."""
    return "sensor." + re.sub(r"[^a-z0-9]+", "_", sensor["name"].lower()).strip("_")


def test_home_assistant_reads_the_score_its_level_and_the_best_times_from_the_real_signal(served: Regie) -> None:
    (rest,) = _package()["rest"]
    assert set(rest) <= REST_KEYS
    assert urlparse(rest["resource"]).path == "/api/signal"
    assert rest["scan_interval"] == 300
    body = _signal_body(served)
    signal = json.loads(body)
    assert signal["now"] is not None
    sensors = {_entity(s): s for s in rest["sensor"]}
    assert set(sensors) == {"sensor.daisee_score", "sensor.daisee_level"}
    for sensor in sensors.values():
        assert set(sensor) <= SENSOR_KEYS
    score, level = sensors["sensor.daisee_score"], sensors["sensor.daisee_level"]
    assert _render(score["value_template"], body) == str(signal["now"]["score"])
    assert _attributes(score, body) == {name: signal["now"][name] for name in ("level", "start", "end")}
    assert _render(level["value_template"], body) == signal["now"]["level"]
    assert _attributes(level, body) == {"best_today": signal["best_today"], "computed_at": signal["computed_at"]}


def test_home_assistant_switches_the_plug_on_at_7_and_off_below_5() -> None:
    package = _package()
    score_sensor = _entity(package["rest"][0]["sensor"][0])
    by_action = {}
    for automation in package["automation"]:
        assert set(automation) <= AUTOMATION_KEYS
        (action,) = automation["actions"]
        by_action[action["action"]] = automation
    assert set(by_action) == {"switch.turn_on", "switch.turn_off"}
    on, off = by_action["switch.turn_on"], by_action["switch.turn_off"]
    assert on["actions"][0]["target"] == off["actions"][0]["target"] == {"entity_id": "switch.washing_machine"}
    (rises,) = on["triggers"]
    (falls,) = off["triggers"]
    for trigger in (rises, falls):
        assert trigger["trigger"] == "numeric_state"
        assert trigger["entity_id"] == score_sensor
    assert "below" not in rises
    assert "above" not in falls
    # numeric_state: `above` is strictly above, `below` strictly below
    assert [s for s in SCORES if s > rises["above"]] == [s for s in SCORES if _wanted(s, None) is True]
    assert [s for s in SCORES if s < falls["below"]] == [s for s in SCORES if _wanted(s, None) is False]


# Tasmota -----------------------------------------------------------------------------------------------

# Tasmota's rule comparison operators (xdrv_10_rules kCompareOperators), looked for from the last: `>=`
# is found before `>`.
TASMOTA_OPERATORS = ("=", ">", "<", "|", "==", "!=", ">=", "<=", "$>", "$<", "$|", "$!", "$^")


def _char_to_float(text: str) -> float:
    """Tasmota's CharToFloat: the number the text starts with, 0 if none."""
    found = re.match(r"\s*([-+]?(\d+\.?\d*|\.\d+))", text)
    return float(found.group(1)) if found else 0.0


class Tasmota:
    """The part of Tasmota's rule engine (xdrv_10_rules) the example uses: Rule<x>, Subscribe, Power<x>,
    MQTT data turned into Event JSON, rules matched on it. Anything else it does not know fails."""

    def __init__(self) -> None:
        self.rules: dict[int, str] = {}
        self.enabled: set[int] = set()
        self.subscriptions: dict[str, tuple[str, str]] = {}  # event: (topic without "/#", JSON key)
        self.filters: list[str] = []  # what it subscribes to on the broker
        self.power: dict[int, bool] = {}

    def command(self, line: str) -> None:
        name, _, data = line.strip().partition(" ")
        data = data.strip()
        if found := re.fullmatch(r"RULE([123])", name.upper()):
            index = int(found.group(1))
            if data in ("0", "1"):
                (self.enabled.add if data == "1" else self.enabled.discard)(index)
            else:
                self.rules[index] = data
        elif name.upper() == "SUBSCRIBE":
            parts = [p.strip() for p in data.split(",")]
            assert len(parts) in (2, 3), f"Subscribe <event>, <topic>[, <key>]: {data!r}"
            assert all(parts), f"Subscribe <event>, <topic>[, <key>]: {data!r}"
            event, subscribed, key = parts[0].upper(), parts[1], parts[2] if len(parts) == 3 else ""
            if not subscribed.endswith("#"):
                subscribed += "#" if subscribed.endswith("/") else "/#"
            self.filters.append(subscribed)
            self.subscriptions[event] = (subscribed[:-2], key)
        elif found := re.fullmatch(r"POWER(\d?)", name.upper()):
            states = {"1": True, "ON": True, "0": False, "OFF": False}
            assert data.upper() in states, f"this model knows Power<x> 0|1|ON|OFF, not {line!r}"
            self.power[int(found.group(1) or 1)] = states[data.upper()]
        else:
            raise AssertionError(f"this model of Tasmota does not know the command {line!r}")

    def mqtt_data(self, received: str, payload: str) -> None:
        """A message from the broker, as RulesMqttData turns it into an event."""
        for event, (subscribed, key) in self.subscriptions.items():
            if received == subscribed or received.startswith(subscribed + "/"):
                value: str | None = payload
                if key:
                    found: Any = json.loads(payload)
                    for part in key.split(".", 1):
                        found = found.get(part) if isinstance(found, dict) else None
                    value = None if found is None else str(found)
                if value is not None:
                    value = value.strip()
                    shown = value if value.startswith("{") else f'"{value}"'
                    self.event(f'{{"Event":{{"{event}":{shown}}}}}')

    def event(self, json_event: str) -> None:
        """RulesProcessEvent: the event, upper-cased, through each enabled rule set."""
        for index in sorted(self.enabled):
            self._rule_set(self.rules.get(index, ""), json_event.upper())

    def _rule_set(self, rules: str, event: str) -> None:
        """RuleSetProcess: ON <trigger> DO <commands> ENDON|BREAK, the commands in the rule's own case."""
        end = 0
        while True:
            rules = rules[end:].strip()
            if not rules:
                return
            upper = rules.upper()
            assert upper.startswith("ON "), f"a rule starts with ON: {rules!r}"
            do = upper.find(" DO ")
            assert do != -1, f"a rule needs DO: {rules!r}"
            ends = [at for at in (upper.find(" ENDON"), upper.find(" BREAK")) if at != -1]
            assert ends, f"a rule ends with ENDON or BREAK: {rules!r}"
            end = min(ends)
            matched = self._matches(upper[3:do].strip(), event)
            if matched:
                self.command(rules[do + 4 : end])
                if upper[end:].startswith(" BREAK"):
                    return
            end += 6

    @staticmethod
    def _matches(trigger: str, event: str) -> bool:
        """RulesRuleMatch: the trigger's name found in the event's JSON, its value compared."""
        name, operator, parameter = trigger, None, ""
        for candidate in reversed(TASMOTA_OPERATORS):
            at = trigger.find(candidate)
            if at > 0:
                name, operator, parameter = trigger[:at].strip(), candidate, trigger[at + len(candidate) :].strip()
                break
        found: Any = json.loads(event)
        for level in name.split("#"):
            if not isinstance(found, dict) or level not in found:
                return False
            found = found[level]
        text = found if isinstance(found, str) else json.dumps(found)
        if operator is None:
            return True
        assert operator in ("=", ">", "<", "==", "!=", ">=", "<="), f"this model compares numbers, not {operator}"
        if operator == "=":
            return text.lower() == parameter.lower()
        assert re.fullmatch(r"-?\d+(\.\d+)?", parameter), f"this model compares with numbers, not {parameter!r}"
        value, limit = _char_to_float(text), _char_to_float(parameter)
        return {
            ">": value > limit,
            "<": value < limit,
            "==": value == limit,
            "!=": value != limit,
            ">=": value >= limit,
            "<=": value <= limit,
        }[operator]


def _tasmota_commands(loop: str) -> list[str]:
    """The console lines of the example, `<LOOP>` replaced as the README says."""
    text = (EXAMPLES / "tasmota-rule.txt").read_text()
    assert LOOP_PLACEHOLDER in text
    lines = [line.strip() for line in text.splitlines()]
    return [line.replace(LOOP_PLACEHOLDER, loop) for line in lines if line and not line.startswith("#")]


def _tasmota(loop: str) -> Tasmota:
    """A plug given the example's commands that then connects to its broker."""
    plug = Tasmota()
    for line in _tasmota_commands(loop):
        plug.command(line)
    plug.event('{"MQTT":{"Connected":1}}')
    return plug


def test_the_tasmota_rule_subscribes_to_the_loop_s_score_and_fits_a_rule_set(
    played: tuple[Loop, DemoRun], served: Regie
) -> None:
    loop, _ = played
    assert json.loads(_signal_body(served))["loop"] == loop.address  # where the README says <LOOP> is
    commands = _tasmota_commands(loop.address)
    assert [c.split(" ")[0] for c in commands] == ["Rule1", "Rule1", "Subscribe"]
    assert commands[1] == "Rule1 1"
    assert len(commands[0].removeprefix("Rule1 ")) < 511  # fits a set uncompressed
    plug = _tasmota(loop.address)
    score_topic = topic(loop.address) + "/score"
    assert plug.subscriptions == {"SCORE": (score_topic, "")}  # on connecting as right away, the same
    assert plug.filters == [score_topic + "/#"] * 2
    assert plug.power == {}  # nothing switched before a score


@pytest.mark.parametrize("score", SCORES)
def test_the_tasmota_rule_switches_on_at_7_and_off_below_5(played: tuple[Loop, DemoRun], score: int) -> None:
    loop, _ = played
    for before in (None, False, True):
        plug = _tasmota(loop.address)
        if before is not None:
            plug.power[1] = before
        plug.mqtt_data(topic(loop.address) + "/score", str(score))
        assert plug.power.get(1) is _wanted(score, before)


def test_a_tasmota_plug_switches_as_the_regie_s_retained_score_says(
    publishing: Regie, mosquitto: RunningBroker, played: tuple[Loop, DemoRun]
) -> None:
    loop, _ = played
    plug = _tasmota(loop.address)
    (subscription,) = set(plug.filters)
    messages = _retained(mosquitto, subscription)  # what the plug's own subscription gets
    assert {name for name, _, _ in messages} == {topic(loop.address) + "/score"}
    name, payload, retained = messages[0]
    assert retained
    assert len(payload) < 1200  # a Tasmota's MQTT buffer
    score = int(payload.decode())
    assert score in SCORES
    plug.mqtt_data(name, payload.decode())
    assert plug.power.get(1) is _wanted(score, None)


# Shelly ------------------------------------------------------------------------------------------------


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not found: the Shelly script runs in node (v18 or later)")
    return node


def _shelly(tmp_path: Path, url: str | None = None, mqtt_topic: str | None = None, **env: str) -> list[dict[str, Any]]:
    """The example script, its CONFIG given `url` or `mqtt_topic`, run in the stub: what it did."""
    script = (EXAMPLES / "shelly-signal.js").read_text()
    assert script.count(REGIE_PLACEHOLDER) == 1
    if url is not None:
        script = script.replace(REGIE_PLACEHOLDER, url)
    if mqtt_topic is not None:
        assert script.count("mqtt_topic: null,") == 1
        script = script.replace("mqtt_topic: null,", f"mqtt_topic: {json.dumps(mqtt_topic)},")
    path = tmp_path / "shelly-signal.js"
    path.write_text(script)
    done = subprocess.run(
        [_node(), str(STUB), str(path)], capture_output=True, text=True, timeout=60, env={"PATH": "", **env}
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert records[-1] == {"done": True}
    return records


def _switched(records: list[dict[str, Any]]) -> list[bool]:
    return [r["switch"]["on"] for r in records if "switch" in r]


def test_a_shelly_switches_as_the_real_signal_s_score_says(served: Regie, tmp_path: Path) -> None:
    records = _shelly(tmp_path, url=served.url + "/api/signal/now")
    score = json.loads(_signal_body(served))["now"]["score"]  # the same step: the signal is minutes long
    (asked,) = [r for r in records if "get" in r]
    assert asked["get"] == served.url + "/api/signal/now"
    assert asked["code"] == 200
    assert {"timer": {"period": 300_000, "repeat": True}} in records
    wanted = _wanted(score, None)
    assert _switched(records) == ([] if wanted is None else [wanted])  # between 5 and 7: left as it is


def test_a_shelly_reads_the_real_retained_score_in_mqtt_mode(
    publishing: Regie, mosquitto: RunningBroker, played: tuple[Loop, DemoRun], tmp_path: Path
) -> None:
    loop, _ = played
    score_topic = topic(loop.address) + "/score"
    records = _shelly(tmp_path, mqtt_topic=score_topic, SHELLY_MQTT=f"{mosquitto.host}:{mosquitto.port}")
    assert {"subscribe": score_topic} in records
    (message,) = [r["message"] for r in records if "message" in r]
    assert message["topic"] == score_topic
    assert message["retained"]
    assert not [r for r in records if "get" in r or "timer" in r]  # no polling in MQTT mode
    wanted = _wanted(int(message["payload"]), None)
    assert _switched(records) == ([] if wanted is None else [wanted])


class _Bodies(http.server.BaseHTTPRequestHandler):
    """Answers each GET with the next of `bodies`, as the régie's signal would change between polls."""

    bodies: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        body = self.bodies.pop(0).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_shelly_keeps_its_relay_between_5_and_7_over_a_run_of_polls(served: Regie, tmp_path: Path) -> None:
    signal = json.loads(_signal_body(served))
    scores = [6, 7, 6, 5, 4, 5, 6, 10, 7, 0]

    def body(score: int | None, indent: int | None = None) -> str:
        now = None if score is None else signal["now"] | {"score": score}
        return json.dumps(signal | {"now": now}, indent=indent, separators=None if indent else (",", ":"))

    # the real signal's shape with its score changed; once pretty-printed, once without a present step
    _Bodies.bodies = [body(s) for s in scores] + [body(9, indent=2), body(None)]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Bodies)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/signal/now"
        records = _shelly(tmp_path, url=url, SHELLY_TICKS=str(len(_Bodies.bodies) - 1))
    finally:
        server.shutdown()
    assert not _Bodies.bodies  # each poll read the next
    expected, state = [], None
    for score in [*scores, 9]:
        wanted = _wanted(score, state)
        if wanted is not state:
            expected.append(wanted)
        state = wanted
    assert _switched(records) == expected == [True, False, True, False, True]
    assert records[-2] == {"print": "daisee: the signal has no score for the present"}
