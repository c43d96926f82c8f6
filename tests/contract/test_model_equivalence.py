"""Random loops on the chain give exactly the reference model's results (DESIGN.md invariant 5)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind, RejectReason
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec, SubmitResult
from daisee.model import LoopModel, ModelReading, ModelRevert
from daisee.readings import Reading, SignedReading
from tests.contract.timetravel import now, travel_to

INTERVAL = 600
GRACE = 120
EMBEDDED = connect("embedded")  # one py-evm chain for every example; each example deploys its own loop


@dataclass(frozen=True)
class Member:
    kind: MeterKind
    share: int
    weight: int
    key: LocalAccount
    payout: LocalAccount


@dataclass(frozen=True)
class Step:
    """What each meter does in one interval: report (with energy), skip, report late, or forge."""

    actions: tuple[tuple[str, int, int], ...]
    change_terms: tuple[AllocationKey, int] | None


members_st = st.lists(
    st.tuples(st.sampled_from(list(MeterKind)), st.integers(0, 4000), st.integers(0, 10)), min_size=1, max_size=12
)
action_st = st.tuples(
    st.sampled_from(["report", "report", "report", "skip", "late", "forge"]),
    st.integers(0, 5000),
    st.integers(0, 5000),
)


@st.composite
def loops(draw: st.DrawFn) -> tuple[AllocationKey, list[tuple[MeterKind, int, int]], list[Step]]:
    key = draw(st.sampled_from(list(AllocationKey)))
    specs = draw(members_st)
    total = 0
    capped = []
    for kind, share, weight in specs:  # keep static shares within 100 %
        share = min(share, 10_000 - total)
        total += share
        capped.append((kind, share, weight))
    steps = [
        Step(
            tuple(draw(action_st) for _ in capped),
            draw(st.none() | st.tuples(st.sampled_from(list(AllocationKey)), st.integers(0, 300))),
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    return key, capped, steps


def _reading(member: Member, meter_id: bytes, t: int, imp: int, exp: int, loop: Loop, forged: bool) -> SignedReading:
    signer = Account.create() if forged else member.key
    return Reading(meter_id, t, imp, exp).sign(signer.key, loop.domain)


# Each example is a few dozen transactions on py-evm: no shrinking (it would take minutes); a failure
# prints its whole example and seed.
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(loops())
def test_chain_settles_exactly_as_the_reference_model(case: tuple) -> None:  # type: ignore[type-arg]
    key, specs, steps = case
    chain: Chain = EMBEDDED
    pmo = Sender.dev(chain)
    start = now(chain) + 10
    genesis = start - start % INTERVAL + INTERVAL
    travel_to(chain, genesis)
    loop = Loop(pmo, deploy_loop(pmo, LoopParameters(INTERVAL, key, 7, genesis, GRACE)).address)
    model = LoopModel(genesis, INTERVAL, GRACE, key, 7, pmo.address)

    members = [Member(k, s, w, Account.create(), Account.create()) for k, s, w in specs]
    ids = [bytes([i + 1]) * 32 for i in range(len(members))]
    indices = [[1000 * i, 10 * i] for i in range(len(members))]
    registered = [tuple(idx) for idx in indices]
    loop.add_meters(
        [
            MeterSpec(mid, m.key.address, m.payout.address, m.kind, m.share, m.weight, *idx)
            for mid, m, idx in zip(ids, members, indices, strict=True)
        ]
    )
    for mid, m, idx in zip(ids, members, indices, strict=True):
        model.add_meter(mid, m.key.address, m.payout.address, m.kind, m.share, m.weight, *idx)

    for t, step in enumerate(steps):
        travel_to(chain, genesis + (t + 1) * INTERVAL + 1)
        if step.change_terms:
            new_key, price = step.change_terms
            try:
                model.schedule_terms(new_key, price, t + 2, now(chain))
            except ModelRevert as revert:
                with pytest.raises(DaiseeError, match=rf"rejected by the contract: {revert.name}\("):
                    loop.schedule_terms(new_key, price, t + 2)
            else:
                loop.schedule_terms(new_key, price, t + 2)
        on_time, late = [], []
        for i, (action, d_import, d_export) in enumerate(step.actions):
            if action == "skip":
                continue
            indices[i][0] += d_import if members[i].kind is not MeterKind.PRODUCER else 0
            indices[i][1] += d_export if members[i].kind is not MeterKind.CONSUMER else 0
            reading = _reading(members[i], ids[i], t, *indices[i], loop, forged=action == "forge")
            (late if action == "late" else on_time).append((reading, action != "forge"))
        for batch in (on_time, late):
            if not batch:
                if batch is on_time:
                    _finalize_both(chain, loop, model, t, genesis)
                continue
            result = loop.submit([r for r, _ in batch])
            expected = model.submit([_model_reading(r.reading, ok) for r, ok in batch], now(chain))
            _assert_same_outcomes(result, batch, expected)
            if batch is on_time:
                _finalize_both(chain, loop, model, t, genesis)
        chain_result = loop.results(loop.settle(max_steps=3).receipts).get(t, {})
        model_result = model.settle_next()
        assert {
            m.meter_id: (m.consumed, m.allocated, m.produced, m.sold)
            for m in model_result.members
            if m.consumed or m.produced
        } == {mid: (r.consumed, r.allocated, r.produced, r.sold) for mid, r in chain_result.items()}

    for m in members:
        tokens = model.tokens(m.payout.address)
        assert loop.tokens(m.payout.address) == (tokens.produced, tokens.consumed, tokens.self_consumed)
        assert loop.ledger_balance(m.payout.address) == model.balance(m.payout.address)
    assert sum(loop.ledger_balance(m.payout.address) for m in members) == 0
    for m, mid, (import_0, export_0) in zip(members, ids, registered, strict=True):
        # energy conservation: every accepted Wh was settled once, into the member's tokens
        produced, consumed, _ = loop.tokens(m.payout.address)
        assert (consumed, produced) == (loop.meter(mid).import_wh - import_0, loop.meter(mid).export_wh - export_0)
    for mid in ids:
        chain_meter, model_meter = loop.meter(mid), model.meter(mid)
        assert (chain_meter.import_wh, chain_meter.export_wh, chain_meter.next_interval) == (
            model_meter.import_wh,
            model_meter.export_wh,
            model_meter.next_interval,
        )


def _model_reading(reading: Reading, signature_ok: bool) -> ModelReading:
    return ModelReading(reading.meter_id, reading.interval, reading.import_wh, reading.export_wh, signature_ok)


def _finalize_both(chain: Chain, loop: Loop, model: LoopModel, t: int, genesis: int) -> None:
    """Finalize `t`, after its grace period if a meter is missing (both sides agree on when)."""
    if model.totals(t).reported < model.active_count:
        travel_to(chain, genesis + (t + 1) * INTERVAL + GRACE)
    loop.finalize(t)
    model.finalize(t, now(chain))


def _assert_same_outcomes(
    result: SubmitResult, batch: list[tuple[SignedReading, bool]], expected: list[RejectReason | None]
) -> None:
    pairs = [(r.reading, e) for (r, _), e in zip(batch, expected, strict=True)]
    assert result.accepted == [(r.meter_id, r.interval) for r, e in pairs if e is None]
    assert result.rejected == [(r.meter_id, r.interval, e) for r, e in pairs if e is not None]
