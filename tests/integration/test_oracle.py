"""The household oracle against a real anvil: direct sending, settlement alongside, and a node outage."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak

from daisee.chain.clock import chain_time
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode, free_port
from daisee.chain.transact import Sender
from daisee.domain import MeterKind
from daisee.gateways import MeterSample
from daisee.keeper import advance
from daisee.loop import Loop, MeterSpec
from daisee.oracle.outbox import CONFIRMED, COVERED, Outbox
from daisee.oracle.runner import Oracle
from daisee.oracle.sampler import Sampler
from daisee.oracle.senders import DirectSender, ReadingSender, RelaySender
from daisee.relay.service import Relay, RelaySettings
from tests.contract.conftest import INTERVAL, Household, SignedLoop, make_signed_loop

INTERVALS = 8


class _Meter:
    """The household's meter: an import index that grows 400 Wh per interval (and `spikes[t]` more in interval
    t), sampled after each of the first `intervals` boundaries.

    Meter hardware is the one thing that cannot exist here; everything downstream of it is real.
    """

    def __init__(
        self, genesis: int, start_wh: int, *, intervals: int = INTERVALS, spikes: dict[int, int] | None = None
    ) -> None:
        self.genesis, self.start_wh, self.intervals, self.spikes = genesis, start_wh, intervals, spikes or {}
        self.closed = threading.Event()

    def index(self, t: int) -> int:
        """The import index at the end of interval t."""
        return self.start_wh + 400 * (t + 1) + sum(wh for k, wh in self.spikes.items() if k <= t)

    def samples(self) -> Iterator[MeterSample]:
        for t in range(self.intervals):
            if self.closed.is_set():
                return
            yield MeterSample(self.genesis + (t + 1) * INTERVAL + 1, self.index(t), 0)
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
    loop = make_signed_loop(connect(url), intervals_over=INTERVALS)  # admitted in interval 0, 0..7 over
    producer, consumer, prosumer = loop.households
    loop.loop.remove_meter(producer.meter_id)
    loop.loop.remove_meter(prosumer.meter_id)
    return loop, consumer


def _clock_back_past_the_last_block(loop: SignedLoop) -> None:
    """A restarted anvil keeps its blocks but not the time it was moved forward by: it would mine the next
    block at the wall clock's time, before the last one. Move its clock forward again."""
    ahead = chain_time(loop.chain) - int(time.time())
    loop.chain.w3.provider.make_request("evm_increaseTime", [max(ahead, 0) + 1])  # type: ignore[arg-type]
    loop.chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    assert loop.loop.current_interval() >= INTERVALS


def _keep_settling(loop: Loop, stop: threading.Event) -> threading.Thread:
    def keep() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # the node may be down for a while: try again
                advance(loop)
            stop.wait(0.3)

    thread = threading.Thread(target=keep, daemon=True)
    thread.start()
    return thread


def _run_until_confirmed(oracle: Oracle, loop: SignedLoop, meter: _Meter | None = None, timeout: float = 120) -> None:
    """Run the oracle on the meter until nothing is left to send, with a keeper settling alongside."""
    stop = threading.Event()
    _keep_settling(loop.loop, stop)
    try:
        runner = threading.Thread(target=oracle.run, args=(meter or _Meter(loop.genesis, 0), 0.2), daemon=True)
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
        _clock_back_past_the_last_block(loop)
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


@contextlib.contextmanager
def _sender(via: str, loop: SignedLoop, tmp_path: Path) -> Iterator[ReadingSender]:
    """A direct sender, or one through a relay that runs meanwhile."""
    if via == "direct":
        yield _direct(loop)
        return
    settings = RelaySettings(port=0, batch_seconds=0.2)
    with Relay(Loop(loop.outsider, loop.loop.address), tmp_path / "relay.sqlite", settings) as relay:
        yield RelaySender(relay.url)


@pytest.mark.parametrize("via", ["direct", "relay"])
def test_a_reading_above_the_meter_s_limit_is_held_the_pmo_told_and_the_next_one_carries_it(
    anvil_node: LocalNode, tmp_path: Path, via: str
) -> None:
    loop, consumer = _lone_consumer_loop(anvil_node.url)
    meter = _Meter(loop.genesis, 0, intervals=2, spikes={0: 2_700})  # 3,100 Wh in 15 minutes: above 12 kVA
    with _sender(via, loop, tmp_path) as sender:
        oracle = _oracle(loop, consumer, tmp_path / "outbox.sqlite", sender)
        _run_until_confirmed(oracle, loop, meter)

    rows = [(r.signed.reading.interval, r.status, r.reason) for r in oracle.outbox.rows()]
    assert rows == [(0, COVERED, "carried by interval 1"), (1, CONFIRMED, None)]
    assert _accepted_intervals(loop.loop, consumer.meter_id) == [1]  # 3,500 Wh in 30 minutes: within 12 kVA
    assert loop.counter(consumer) == (2, meter.index(1), 0)
    assert [(kind, message.split(":")[:2]) for _, kind, message in oracle.outbox.alerts()] == [
        ("meter-limits", ["interval 0", " ABOVE_METER_LIMIT"])
    ]


@pytest.mark.parametrize("via", ["direct", "relay"])
def test_an_oracle_started_before_its_meter_s_admission_waits_for_it(
    anvil_node: LocalNode, tmp_path: Path, via: str
) -> None:
    loop = make_signed_loop(connect(anvil_node.url), intervals_over=4)
    for household in loop.households:
        loop.loop.remove_meter(household.meter_id)
    meter = _Meter(loop.genesis, 0)
    late = Household(keccak(text="late"), Account.create(), MeterKind.CONSUMER, loop.outsider)
    loop.loop.add_meters([MeterSpec(late.meter_id, late.key.address, late.payout, late.kind, import_wh=meter.index(3))])
    loop.end(INTERVALS - 1)
    with _sender(via, loop, tmp_path) as sender:
        oracle = _oracle(loop, late, tmp_path / "outbox.sqlite", sender)
        _run_until_confirmed(oracle, loop, meter)

    rows = [(r.signed.reading.interval, r.status, r.reason) for r in oracle.outbox.rows()]
    assert rows == [(t, COVERED, "carried by interval 4") for t in range(4)] + [
        (t, CONFIRMED, None) for t in range(4, INTERVALS)
    ]
    assert _accepted_intervals(loop.loop, late.meter_id) == list(range(4, INTERVALS))
    assert loop.counter(late) == (INTERVALS, meter.index(INTERVALS - 1), 0)
    assert oracle.outbox.alerts() == []  # the notice of an admission is nothing to alert about
