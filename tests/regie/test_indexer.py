"""The indexer on a real anvil of its own (the reorganisation test rewinds it): what the store holds equals
what the chain settled, after restarts, failures mid-way, confirmations and reorganisations."""

from __future__ import annotations

import pytest
from eth_account import Account
from sqlalchemy import Engine, select
from web3.types import RPCEndpoint

from daisee.chain.clock import chain_time
from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.consent.model import DAY, ZERO_ADDRESS, Audience, DataKind, Grant, Purpose
from daisee.consent.registry import ConsentRegistry, sign_grant, sign_revocation
from daisee.demo import DemoRun, run_demo, simulated_households, simulated_payout_keys
from daisee.domain import AllocationKey
from daisee.errors import DaiseeError
from daisee.loop import Loop
from daisee.regie import indexer as indexer_module
from daisee.regie.calendar import Granularity, zone
from daisee.regie.consents import read_consents
from daisee.regie.indexer import Indexer
from daisee.regie.schema import intervals, ledger, loop_sums, meter_sums, meters, terms
from daisee.regie.sums import level

PARIS = zone("Europe/Paris")


def _steps(store: Engine) -> dict[tuple[bytes, int], tuple[int, ...]]:
    """Each meter's stored step sums, by meter id and interval."""
    with store.connect() as db:
        ids = {idx: meter_id for idx, meter_id in db.execute(select(meters.c.idx, meters.c.meter_id))}
        rows = db.execute(select(meter_sums).where(meter_sums.c.level == level(Granularity.STEP))).all()
    return {(ids[row.meter_idx], row.start): tuple(row[3:]) for row in rows if any(row[3:])}


def _expected(loop: Loop, run: DemoRun, settled: range) -> dict[tuple[bytes, int], tuple[int, ...]]:
    """The same, from the settlement events the demo read back from the chain."""
    config = loop.config()
    found: dict[tuple[bytes, int], tuple[int, ...]] = {}
    for interval in settled:
        start = config.genesis + interval * config.interval_seconds
        for meter_id, r in run.results[interval].items():
            if r.consumed or r.allocated or r.produced or r.sold:
                found[(meter_id, start)] = (r.consumed, r.allocated, r.produced, r.sold)
    return found


def test_the_store_holds_what_the_chain_settled(store: Engine, played: tuple[Loop, DemoRun]) -> None:
    loop, run = played
    indexed = Indexer(store, loop, run.deployment.block, PARIS)
    assert indexed.catch_up() > 0

    assert _steps(store) == _expected(loop, run, range(run.intervals))
    with store.connect() as db:
        stored = db.execute(select(meters.c.meter_id, meters.c.kind, meters.c.payout).order_by(meters.c.idx)).all()
        assert stored == [(h.meter_id, h.kind.value, h.payout) for h in run.households]
        prices = db.execute(select(intervals.c.interval, intervals.c.price_per_wh).order_by(intervals.c.interval))
        assert prices.all() == [(t, 100) for t in range(run.intervals)]
        assert db.execute(select(terms.c.epoch, terms.c.price_per_wh)).all() == [(0, 100)]
        deposits = db.execute(select(ledger.c.account).where(ledger.c.entry == "deposit")).scalars().all()
        assert sorted(deposits) == sorted(h.payout for h in run.households if h.kind.name != "PRODUCER")
        day = db.execute(select(loop_sums).where(loop_sums.c.level == level(Granularity.MONTH))).all()
    cons = sum(r.consumed for t in range(run.intervals) for r in run.results[t].values())
    assert sum(row.cons for row in day) == cons


def test_a_restart_resumes_where_the_store_stopped_and_counts_nothing_twice(
    store: Engine, played: tuple[Loop, DemoRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, run = played
    monkeypatch.setattr(indexer_module, "SPAN", 3)
    real, calls = indexer_module.raw_logs, []

    def failing_on_the_fourth_span(*args: object) -> object:
        calls.append(args)
        if len(calls) == 4:
            raise ConnectionError("the node went away")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(indexer_module, "raw_logs", failing_on_the_fourth_span)
    with pytest.raises(ConnectionError):
        Indexer(store, loop, run.deployment.block, PARIS).catch_up()
    assert Indexer(store, loop, run.deployment.block, PARIS).next_block == run.deployment.block + 9

    Indexer(store, loop, run.deployment.block, PARIS).catch_up()  # a new process, from where the store is
    assert Indexer(store, loop, run.deployment.block, PARIS).catch_up() == 0
    assert _steps(store) == _expected(loop, run, range(run.intervals))


def test_only_confirmed_blocks_are_indexed(store: Engine, played: tuple[Loop, DemoRun], regie_node: LocalNode) -> None:
    loop, run = played
    indexer = Indexer(store, loop, run.deployment.block, PARIS, confirmations=3)
    indexer.catch_up()
    head = int(loop.sender.chain.w3.eth.block_number)
    assert indexer.next_block == head - 2
    _mine(loop, 3)
    indexer.catch_up()
    assert indexer.next_block == head + 1
    assert _steps(store) == _expected(loop, run, range(run.intervals))


def test_a_store_indexes_one_loop_in_one_time_zone(store: Engine, played: tuple[Loop, DemoRun]) -> None:
    loop, run = played
    Indexer(store, loop, run.deployment.block, PARIS)
    with pytest.raises(DaiseeError, match=r"civil time of Europe/Paris, not Europe/London: use --zone Europe/Paris"):
        Indexer(store, loop, run.deployment.block, zone("Europe/London"))
    other = Loop(loop.sender, "0x" + "11" * 20)
    with pytest.raises(DaiseeError, match=r"give each loop a store of its own \(--db\)"):
        Indexer(store, other, run.deployment.block, PARIS)


def test_a_reorganisation_takes_out_what_the_lost_blocks_wrote(store: Engine, regie_node: LocalNode) -> None:
    sender = Sender.dev(connect(regie_node.url))
    w3 = sender.chain.w3
    snapshots: list[str] = []

    def snapshot_after_interval_1(t: int) -> None:
        if t == 1:
            snapshots.append(w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"])

    run = run_demo(
        sender, simulated_households(4, 9), AllocationKey.PRORATA, 4, seed=9, on_interval=snapshot_after_interval_1
    )
    loop = Loop(sender, run.deployment.address)
    indexer = Indexer(store, loop, run.deployment.block, PARIS)
    indexer.catch_up()
    assert _steps(store) == _expected(loop, run, range(4))

    assert w3.provider.make_request(RPCEndpoint("evm_revert"), [snapshots[0]])["result"] is True
    indexer.catch_up()  # intervals 2 and 3 are no longer settled on this chain
    assert _steps(store) == _expected(loop, run, range(2))
    with store.connect() as db:
        assert db.execute(select(intervals.c.interval)).scalars().all() == [0, 1]

    _mine(loop, 5)  # the new branch grows past where the old one was
    indexer.catch_up()
    assert _steps(store) == _expected(loop, run, range(2))
    assert indexer.next_block == int(w3.eth.block_number) + 1


def _mine(loop: Loop, blocks: int) -> None:
    for _ in range(blocks):
        loop.sender.chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])


def test_a_reorganisation_takes_out_the_consents_and_revocations_it_undid(store: Engine, regie_node: LocalNode) -> None:
    sender = Sender.dev(connect(regie_node.url))
    w3 = sender.chain.w3
    households = simulated_households(3, 11)
    run = run_demo(sender, households, AllocationKey.PRORATA, 2, seed=11)
    assert run.deployment.consent_registry is not None
    registry = ConsentRegistry(sender, run.deployment.consent_registry)
    payout = Account.from_key(simulated_payout_keys(3, 11)[1])
    now = chain_time(sender.chain)

    def granted(nonce: int) -> bytes:
        grant = Grant(households[1].meter_id, Audience.EVERYONE, ZERO_ADDRESS, Purpose.OPEN_DATA,
                      DataKind.CONSUMPTION, Granularity.DAY, 0, now, now + 30 * DAY, nonce)  # fmt: skip
        return registry.record_grant(grant, sign_grant(grant, payout, registry.chain_id, registry.address))

    indexer = Indexer(store, Loop(sender, run.deployment.address), run.deployment.block, PARIS, 0, registry.address)
    kept = granted(1)
    indexer.catch_up()
    fork = w3.provider.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
    registry.record_revocation(kept, sign_revocation(kept, payout, registry.chain_id, registry.address))
    lost = granted(2)
    indexer.catch_up()
    with store.connect() as db:
        assert [(c.consent_id, c.revoked_at is not None) for c in read_consents(db)] == [(kept, True), (lost, False)]

    assert w3.provider.make_request(RPCEndpoint("evm_revert"), [fork])["result"] is True
    _mine(indexer.loop, 3)
    indexer.catch_up()
    with store.connect() as db:
        assert [(c.consent_id, c.revoked_at) for c in read_consents(db)] == [(kept, None)]
