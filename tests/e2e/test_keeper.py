"""`daisee keeper run`: finalize and settle what is ready, once or until stopped, through a node outage."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, free_port
from daisee.chain.transact import Sender
from daisee.keeper import Keeper
from daisee.loop import Loop
from daisee.relay import Relay, RelaySettings
from tests.e2e.conftest import Daisee
from tests.e2e.loops import INTERVAL, add_household, deploy
from tests.rpc_proxy import RateLimitedProxy


def test_one_pass_settles_every_ready_interval_then_finds_nothing(daisee: Daisee, anvil_node: LocalNode) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    consumer = add_household(daisee, cli_loop, "house-1", "consumer")
    producer = add_household(daisee, cli_loop, "house-2", "producer")
    cli_loop.advance(4)  # intervals 0 to 3 are over, and their grace periods
    for t, (used, made) in enumerate([(500, 300), (900, 1000)]):
        cli_loop.submit(consumer, "house-1", t, used)
        cli_loop.submit(producer, "house-2", t, 0, made)

    first = daisee("keeper", "run", "--chain", anvil_node.url)

    assert first.exit_code == 0, first.stderr
    assert re.fullmatch(r"settled intervals 0 to 3 \(4, gas [\d,]+\); next to settle: 4\n", first.stdout)
    events = re.findall(r"INFO daisee\.keeper event=settled interval=(\d) transactions=1 gas=\d+ tx=0x", first.stderr)
    assert events == ["0", "1", "2", "3"]
    # interval 0: 300 of the 500 Wh consumed were local; interval 1: the consumer's 400 Wh more, all local
    assert cli_loop.loop.tokens(consumer.address) == (0, 900, 700)
    assert cli_loop.loop.tokens(producer.address)[0] == 1000
    assert cli_loop.loop.ledger_balance(consumer.address) == -700 * cli_loop.price_per_wh
    assert cli_loop.loop.ledger_balance(producer.address) == 700 * cli_loop.price_per_wh

    again = daisee("keeper", "run", "--chain", anvil_node.url, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json() == {"settled": [], "next_to_finalize": 4, "next_to_settle": 4, "current_interval": 4}
    assert "event=settled" not in again.stderr


def test_an_interval_waits_for_its_meters_until_the_grace_period_ends(daisee: Daisee, anvil_node: LocalNode) -> None:
    cli_loop = deploy(daisee, anvil_node.url, grace_seconds=86_400)
    consumer = add_household(daisee, cli_loop, "house-1", "consumer")
    add_household(daisee, cli_loop, "house-2", "producer")  # never reports
    cli_loop.advance(3, past_grace=False)
    cli_loop.submit(consumer, "house-1", 0, 500)

    outcome = daisee("keeper", "run", "--chain", anvil_node.url, "--json")

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json() == {"settled": [], "next_to_finalize": 0, "next_to_settle": 0, "current_interval": 3}


def test_one_pass_before_genesis_says_when_the_loop_starts(daisee: Daisee, anvil_node: LocalNode) -> None:
    genesis = chain_time(connect(anvil_node.url)) + 5 * INTERVAL
    assert daisee("deploy", "--chain", anvil_node.url, "--genesis", str(genesis)).exit_code == 0

    outcome = daisee("keeper", "run", "--chain", anvil_node.url)

    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("nothing to settle: the loop's interval 0 starts at ")
    assert "Traceback" not in outcome.stderr


def test_every_without_watch_is_refused(daisee: Daisee) -> None:
    outcome = daisee("keeper", "run", "--every", "5")
    assert outcome.exit_code == 1
    assert (
        outcome.stderr == "error: --every only applies with --watch: add --watch, or drop --every for a single pass\n"
    )


class _Lines:
    """A process's stderr, read line by line in a thread so the test can wait for a given line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stderr is not None
        stream = process.stderr
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n{''.join(self.lines)}")


def _travel(url: str, timestamp: int) -> None:
    """Move a node's clock to `timestamp`, even a node restarted from its state whose clock fell back."""
    chain = connect(url)
    while chain_time(chain) < timestamp:
        advance_to(chain, timestamp)


def test_watch_settles_as_intervals_end_rides_out_an_outage_and_stops_on_sigterm(
    daisee: Daisee, project_root: Path, tmp_path: Path, isolated_home: Path
) -> None:
    state = tmp_path / "anvil-state.json"
    node = LocalNode("anvil", port=free_port(), state_file=state, project_root=project_root)
    node.start()
    process: subprocess.Popen[str] | None = None
    try:
        cli_loop = deploy(daisee, node.url, grace_seconds=86_400)  # an interval closes once reported
        consumer = add_household(daisee, cli_loop, "house-1", "consumer")
        cli_loop.advance(2, past_grace=False)
        cli_loop.submit(consumer, "house-1", 0, 100)
        cli_loop.submit(consumer, "house-1", 1, 300)
        command = [str(Path(sys.executable).with_name("daisee")), "keeper", "run", "--watch", "--every", "0.2"]
        command += ["--json", "--chain", node.url]
        env = {**os.environ, "DAISEE_HOME": str(isolated_home)}
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stderr = _Lines(process)
        stderr.wait_for(r"event=settled interval=1 ")

        node.stop()  # the node goes away; the keeper keeps trying
        stderr.wait_for(r"WARNING daisee\.keeper event=retry error=.* failures=2 retry_in_s=0\.4")
        node.start()  # back, with the chain as it was
        _travel(node.url, cli_loop.genesis + 3 * INTERVAL)  # interval 2 ends
        cli_loop.submit(consumer, "house-1", 2, 640)
        stderr.wait_for(r"event=recovered after_failures=\d+")
        stderr.wait_for(r"event=settled interval=2 ")
        assert cli_loop.loop.tokens(consumer.address) == (0, 640, 0)  # no producer: all from the supplier

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(stderr.lines)  # stderr stays with its reader thread
        assert process.stdout is not None
        stdout = process.stdout.read()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()
        node.stop()

    assert [json.loads(line)["interval"] for line in stdout.splitlines()] == [0, 1, 2]
    stderr.wait_for(r"event=keeper_stopped settled=3")
    assert "Traceback" not in "".join(stderr.lines)


def test_a_relay_keeps_the_loop_moving(daisee: Daisee, anvil_node: LocalNode, tmp_path: Path) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    consumer = add_household(daisee, cli_loop, "house-1", "consumer")
    cli_loop.advance(3)
    cli_loop.submit(consumer, "house-1", 0, 250)
    relay_loop = Loop(Sender.dev(connect(anvil_node.url), 4), cli_loop.loop.address)
    settings = RelaySettings(port=0, keeper_seconds=0.2)

    with Relay(relay_loop, tmp_path / "relay.sqlite", settings) as relay:
        # the keeper counts a settlement once it has its receipt, a moment after the chain has it
        _eventually(lambda: relay.status()["keeper"]["settled"] >= 3)
        status = relay.status()

    assert relay_loop.next_to_settle() == 3
    assert status["keeper"] | {"running": None} == {
        "running": None,  # stopping or stopped by now
        "waiting_for_genesis": False,
        "settled": 3,
        "last_settled": 2,
        "failures": 0,
        "last_error": None,
    }
    assert cli_loop.loop.tokens(consumer.address) == (0, 250, 0)
    # the keeper stopped with the relay: an interval that becomes ready now stays unsettled
    cli_loop.advance(4)
    time.sleep(1.0)  # five of its periods
    assert relay_loop.next_to_settle() == 3


def test_a_relay_without_keeper_settles_nothing(daisee: Daisee, anvil_node: LocalNode, tmp_path: Path) -> None:
    cli_loop = deploy(daisee, anvil_node.url)
    cli_loop.advance(3)
    relay_loop = Loop(Sender.dev(connect(anvil_node.url), 4), cli_loop.loop.address)
    with Relay(relay_loop, tmp_path / "relay.sqlite", RelaySettings(port=0)) as relay:
        time.sleep(0.5)
        assert relay.status()["keeper"] is None
    assert relay_loop.next_to_settle() == 0


def _eventually(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the timeout"
        time.sleep(0.05)


def test_a_keeper_started_before_genesis_waits_for_it_then_settles(
    daisee: Daisee, anvil_node: LocalNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "daisee.keeper")
    cli_loop = deploy(daisee, anvil_node.url)  # interval 0 starts at the node's next interval boundary
    keeper = Keeper(Loop(Sender.dev(connect(anvil_node.url), 4), cli_loop.loop.address), every=0.1)
    keeper.start()
    try:
        _eventually(lambda: bool(keeper.status()["waiting_for_genesis"]))
        cli_loop.advance(2)  # genesis passes; intervals 0 and 1 end, with their grace periods
        _eventually(lambda: keeper.status()["last_settled"] == 1)
        assert keeper.status()["running"] is True
    finally:
        assert keeper.close(30)

    assert keeper.status() == {
        "running": False,
        "waiting_for_genesis": False,
        "settled": 2,
        "last_settled": 1,
        "failures": 0,
        "last_error": None,
    }
    assert re.search(rf"event=waiting_for_genesis genesis={cli_loop.genesis} starts_in_s=\d+", caplog.text)
    assert "event=genesis_reached" in caplog.text


def test_a_keeper_rides_out_a_providers_rate_limit(
    daisee: Daisee, anvil_node: LocalNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "daisee.keeper")
    cli_loop = deploy(daisee, anvil_node.url)
    cli_loop.advance(4)
    with RateLimitedProxy(anvil_node.url) as proxy:
        keeper = Keeper(Loop(Sender.dev(connect(proxy.url), 4), cli_loop.loop.address), every=0.1)
        proxy.limited = True  # from the keeper's first request on
        keeper.start()
        try:
            _eventually(lambda: int(str(keeper.status()["failures"])) >= 3)
            limited = keeper.status()
            proxy.limited = False
            _eventually(lambda: keeper.status()["last_settled"] == 0)
        finally:
            assert keeper.close(30)

    assert limited["running"] is True
    assert "rate limit exceeded" in str(limited["last_error"])
    assert keeper.status()["failures"] == 0
    retries = [record for record in caplog.records if "event=retry" in record.getMessage()]
    assert len(retries) >= 3
    assert {record.levelname for record in retries} == {"WARNING"}  # an RPC error, not a bug: no traceback
    assert "Traceback" not in caplog.text
