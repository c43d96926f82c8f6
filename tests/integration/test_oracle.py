"""The household oracle against a real anvil: direct sending, settlement alongside, and a node outage."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from eth_keys.datatypes import PrivateKey

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, free_port
from daisee.chain.transact import Sender
from daisee.gateways import MeterSample
from daisee.keeper import advance
from daisee.loop import Loop
from daisee.oracle.outbox import CONFIRMED, Outbox
from daisee.oracle.runner import Oracle
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import DirectSender, ReadingSender, RelaySender
from daisee.relay.service import Relay, RelaySettings
from tests.contract.conftest import INTERVAL, Household, SignedLoop, make_signed_loop

INTERVALS = 8


class _Meter:
    """The household's meter: an import index that grows 400 Wh per interval, sampled after each boundary.

    Meter hardware is the one thing that cannot exist here; everything downstream of it is real.
    """

    def __init__(self, genesis: int, start_wh: int, pause: threading.Event | None = None) -> None:
        self.genesis, self.start_wh, self.pause = genesis, start_wh, pause
        self.closed = threading.Event()

    def samples(self) -> Iterator[MeterSample]:
        for t in range(INTERVALS):
            if self.closed.is_set():
                return
            yield MeterSample(self.genesis + (t + 1) * INTERVAL + 1, self.start_wh + 400 * (t + 1), 0)
            time.sleep(0.05)

    def close(self) -> None:
        self.closed.set()


def _oracle(loop: SignedLoop, household: Household, outbox: Path, sender: ReadingSender) -> Oracle:
    sampler = Sampler(household.meter_id, loop.genesis, INTERVAL)
    return Oracle(sampler, PrivateKey(household.key.key), loop.loop.domain, Outbox(outbox), sender)


def _direct(loop: SignedLoop) -> DirectSender:
    """Direct sending, the gas paid by a funded development account."""
    return DirectSender(Loop(Sender.dev(loop.chain, 3), loop.loop.address))


def _lone_consumer_loop(url: str) -> tuple[SignedLoop, Household]:
    """A loop where only the consumer still reports, so an interval closes when its reading arrives."""
    loop = make_signed_loop(connect(url), grace_seconds=86_400)
    producer, consumer, prosumer = loop.households
    loop.loop.remove_meter(producer.meter_id)
    loop.loop.remove_meter(prosumer.meter_id)
    return loop, consumer


def _keep_settling(loop: Loop, stop: threading.Event) -> threading.Thread:
    def keep() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the node may be down for a while: try again
                advance(loop)
            stop.wait(0.3)

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    return thread


def _run_until_confirmed(oracle: Oracle, loop: SignedLoop, timeout: float = 120) -> None:
    """Run the oracle on the meter until everything is confirmed, with a keeper settling alongside."""
    stop = threading.Event()
    _keep_settling(loop.loop, stop)
    try:
        runner = threading.Thread(target=oracle.run, args=(_Meter(loop.genesis, 0), 0.2), daemon=True)
        runner.start()
        runner.join(timeout)
    finally:
        stop.set()
    assert not runner.is_alive(), f"oracle still has {oracle.outbox.backlog()} readings unconfirmed"


def _accepted_intervals(loop: Loop, meter_id: bytes) -> list[int]:
    logs = loop.contract.events.ReadingAccepted().get_logs(from_block=0, argument_filters={"meterId": meter_id})
    return [e["args"]["interval"] for e in logs]


def test_oracle_signs_every_interval_and_the_chain_has_each_once(anvil_node: LocalNode, tmp_path: Path) -> None:
    loop, consumer = _lone_consumer_loop(anvil_node.url)
    oracle = _oracle(loop, consumer, tmp_path / "outbox.sqlite", _direct(loop))
    _run_until_confirmed(oracle, loop)

    assert [r.status for r in oracle.outbox.rows()] == [CONFIRMED] * INTERVALS
    assert _accepted_intervals(loop.loop, consumer.meter_id) == list(range(INTERVALS))
    assert loop.counter(consumer) == (INTERVALS, 400 * INTERVALS, 0)


def test_oracle_rides_out_a_node_outage_without_losing_or_doubling(project_root: Path, tmp_path: Path) -> None:
    node = LocalNode("anvil", port=free_port(), state_file=tmp_path / "anvil-state.json", project_root=project_root)
    node.start()
    try:
        loop, consumer = _lone_consumer_loop(node.url)
        oracle = _oracle(loop, consumer, tmp_path / "outbox.sqlite", _direct(loop))
        # readings for the first intervals are signed and stored while the node is down
        node.stop()
        for t in range(3):
            oracle.handle(MeterSample(loop.genesis + (t + 1) * INTERVAL + 1, 400 * (t + 1), 0))
        assert oracle.flush() == 0
        assert oracle.outbox.backlog() == 3
        for row in oracle.outbox.rows():  # pretend the backoff has elapsed
            oracle.outbox.retry_later(row.signed.reading, 0, "node was down")

        node.start()
        _run_until_confirmed(oracle, loop)
        assert _accepted_intervals(loop.loop, consumer.meter_id) == list(range(INTERVALS))
        assert loop.counter(consumer) == (INTERVALS, 400 * INTERVALS, 0)
    finally:
        node.stop()


def test_oracle_through_the_relay_gets_every_interval_on_chain_once(anvil_node: LocalNode, tmp_path: Path) -> None:
    loop, consumer = _lone_consumer_loop(anvil_node.url)
    settings = RelaySettings(port=0, batch_seconds=0.2)
    with Relay(Loop(loop.outsider, loop.loop.address), tmp_path / "relay.sqlite", settings) as relay:
        oracle = _oracle(loop, consumer, tmp_path / "outbox.sqlite", RelaySender(relay.url))
        _run_until_confirmed(oracle, loop)
    assert [r.status for r in oracle.outbox.rows()] == [CONFIRMED] * INTERVALS
    assert _accepted_intervals(loop.loop, consumer.meter_id) == list(range(INTERVALS))
