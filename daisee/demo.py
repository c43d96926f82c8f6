"""A simulated neighbourhood run through the real contracts: deploy, admit, sign, submit, finalize, settle.

Everything the demo reports is read back from the chain (settlement events, token balances, ledger),
never from the simulation that fed it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak

from daisee.chain.deploy import Deployment, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import SHARE_DENOMINATOR, AllocationKey, MeterKind
from daisee.loop import Loop, MemberResult, MeterSpec
from daisee.readings import Reading
from daisee.simulation import LOCAL_OFFSET_SECONDS, simulate

# One household in three has PV only, one in three consumes only, the rest have both.
_KIND_CYCLE = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)
_DAY = 86_400


@dataclass(frozen=True)
class Household:
    """A simulated household: its meter, its gateway's signing key and its wallet."""

    name: str
    kind: MeterKind
    meter_id: bytes
    gateway_key: PrivateKey
    payout: str

    @property
    def signer(self) -> str:
        return str(self.gateway_key.public_key.to_checksum_address())


@dataclass
class DemoRun:
    """What happened on-chain."""

    deployment: Deployment
    households: list[Household]
    intervals: int
    results: dict[int, dict[bytes, MemberResult]] = field(default_factory=dict)
    registration_gas: int = 0
    reading_gas: int = 0
    settlement_gas: int = 0
    transactions: int = 0


def simulated_households(count: int, seed: int) -> list[Household]:
    """`count` households, the same for the same `seed`.

    Their keys are derived from the seed: simulation keys, public by construction, never for real money.
    """
    return [
        Household(
            name=f"house-{i + 1:02d}",
            kind=_KIND_CYCLE[i % len(_KIND_CYCLE)],
            meter_id=keccak(text=f"daisee-demo/{seed}/meter/{i}"),
            gateway_key=PrivateKey(keccak(text=f"daisee-demo/{seed}/gateway/{i}")),
            payout=Account.from_key(keccak(text=f"daisee-demo/{seed}/wallet/{i}")).address,
        )
        for i in range(count)
    ]


def demo_genesis(now: int, interval_seconds: int, intervals: int) -> int:
    """A local midnight far enough back that all `intervals` are over: the demo replays whole days."""
    midnight = now - (now + LOCAL_OFFSET_SECONDS) % _DAY
    genesis = midnight - _DAY
    while genesis + intervals * interval_seconds > now:
        genesis -= _DAY
    return genesis


def coefficients(households: list[Household]) -> list[tuple[int, int]]:
    """(static share, weight) per household: equal shares among consumers, weights 1, 2, 3 in turn."""
    consumers = [h for h in households if h.kind is not MeterKind.PRODUCER]
    share = SHARE_DENOMINATOR // max(1, len(consumers))
    return [(0 if h.kind is MeterKind.PRODUCER else share, 1 + i % 3) for i, h in enumerate(households)]


def run_demo(
    sender: Sender,
    households: list[Household],
    key: AllocationKey,
    intervals: int,
    seed: int,
    interval_seconds: int = 900,
    on_interval: Callable[[int], None] | None = None,
) -> DemoRun:
    """Deploy a loop with `sender` as PMO, admit the households, and settle `intervals` simulated intervals."""
    now = int(sender.chain.w3.eth.get_block("latest")["timestamp"])
    genesis = demo_genesis(now, interval_seconds, intervals)
    traces = simulate([h.kind for h in households], genesis, interval_seconds, intervals, seed)
    deployment = deploy_loop(sender, LoopParameters(interval_seconds, key, 100, genesis))
    loop = Loop(sender, deployment.address)
    run = DemoRun(deployment, households, intervals)

    specs = [
        MeterSpec(h.meter_id, h.signer, h.payout, h.kind, share, weight, trace.imports[0], trace.exports[0])
        for h, trace, (share, weight) in zip(households, traces, coefficients(households), strict=True)
    ]
    receipts = loop.add_meters(specs)
    run.registration_gas = sum(int(r["gasUsed"]) for r in receipts)
    run.transactions += len(receipts)

    for t in range(intervals):
        readings = [
            Reading(h.meter_id, t, trace.imports[t + 1], trace.exports[t + 1]).sign(h.gateway_key, loop.domain)
            for h, trace in zip(households, traces, strict=True)
        ]
        submitted = loop.submit_all(readings)
        loop.finalize(t)
        settled = loop.settle()
        run.reading_gas += sum(int(s.receipt["gasUsed"]) for s in submitted)
        run.settlement_gas += settled.gas_used
        run.transactions += len(submitted) + 1 + len(settled.receipts)
        run.results.update(loop.results(settled.receipts))
        if on_interval:
            on_interval(t)
    return run
