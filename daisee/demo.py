"""A simulated neighbourhood run through the real contracts: deploy, admit, sign, submit, finalize, settle.

Everything the demo reports is read back from the chain (settlement events, token balances, ledger),
never from the simulation that fed it. A development chain's clock is moved through the intervals; on
any other network the demo waits for them, in real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from time import sleep

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak
from web3.types import TxReceipt

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import Chain
from daisee.chain.deploy import TEST_EURO, Deployment, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import SHARE_DENOMINATOR, AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MemberResult, MeterSpec
from daisee.readings import Reading
from daisee.simulation import LOCAL_OFFSET_SECONDS, profiles, simulate

# One household in three has PV only, one in three consumes only, the rest have both.
_KIND_CYCLE = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)
_DAY = 86_400
PREPAYMENT = 20_000_000  # what the PMO prepays for each consuming household: 20 test euros
REAL_NETWORK_LEAD = 300  # time to deploy and admit on a network with block times and confirmations


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
            payout=Account.from_key(key).address,
        )
        for i, key in enumerate(simulated_payout_keys(count, seed))
    ]


def simulated_payout_keys(count: int, seed: int) -> list[bytes]:
    """The simulated households' wallet keys: derived from the seed, public by construction."""
    return [keccak(text=f"daisee-demo/{seed}/wallet/{i}") for i in range(count)]


def demo_genesis(now: int) -> int:
    """The next local midnight: the demo admits its households, then plays whole days from there."""
    return now - (now + LOCAL_OFFSET_SECONDS) % _DAY + _DAY


def _loop_start(chain: Chain, interval_seconds: int) -> int:
    """The demo's genesis: {demo_genesis} on a development chain, else the first interval boundary
    REAL_NETWORK_LEAD from now (real time cannot be skipped to midnight)."""
    now = chain_time(chain)
    if chain.is_dev:
        return demo_genesis(now)
    start = now + REAL_NETWORK_LEAD
    return start - start % interval_seconds + interval_seconds


def reach(chain: Chain, timestamp: int) -> None:
    """Move a development chain's clock to `timestamp`; on another network, wait until its blocks get there."""
    if chain.is_dev:
        advance_to(chain, timestamp)
        return
    while (now := chain_time(chain)) < timestamp:
        sleep(min(chain.policy.poll_seconds * 5, timestamp - now))


def prepay(loop: Loop, accounts: list[str], amount: int = PREPAYMENT) -> list[TxReceipt]:
    """The PMO mints test euros and prepays each account's energy (a loop settled in test euros only)."""
    token = loop.settlement_token()
    if token is None or not accounts:
        return []
    pmo, total = loop.sender, amount * len(accounts)
    deposits = [(loop.contract.functions.depositFor(a, amount), f"prepaying {a}") for a in accounts]
    funded = pmo.transact_all(  # mined before the deposits are estimated, on chains with block times too
        [
            (token.functions.mint(pmo.address, total), "minting test euros"),
            (token.functions.approve(loop.address, total), "approving the prepayments"),
        ]
    )
    return funded + pmo.transact_all(deposits)


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
    token: str | None = TEST_EURO,
) -> DemoRun:
    """Deploy a loop with `sender` as PMO, settled in `token` (as `daisee deploy --token`), admit the
    households, then play `intervals` simulated intervals, settling each.

    With the test euro the PMO prepays the consumers. With any other token it does not: the households'
    keys are public (derived from the seed), so whatever is deposited for them anyone could withdraw.
    """
    chain = sender.chain
    genesis = _loop_start(chain, interval_seconds)
    kinds = [h.kind for h in households]
    traces = simulate(kinds, genesis, interval_seconds, intervals, seed)
    params = LoopParameters(interval_seconds, key, 100, genesis, token=token, notice_seconds=0)
    deployment = deploy_loop(sender, params)
    loop = Loop(sender, deployment.address)
    run = DemoRun(deployment, households, intervals)

    specs = [
        MeterSpec(h.meter_id, h.signer, h.payout, h.kind, share, weight, trace.imports[0], trace.exports[0], *limits)
        for h, trace, (share, weight), limits in zip(
            households, traces, coefficients(households), [p.meter_limits() for p in profiles(kinds, seed)], strict=True
        )
    ]
    receipts = loop.add_meters(specs)
    if token == TEST_EURO:
        receipts += prepay(loop, [h.payout for h in households if h.kind is not MeterKind.PRODUCER])
    run.registration_gas = sum(int(r["gasUsed"]) for r in receipts)
    run.transactions += len(receipts)
    if chain_time(chain) >= genesis:  # a meter admitted after genesis reports from a later interval
        raise DaiseeError(
            f"admitting the households on {chain.label} took past the loop's start: "
            "run the demo again with fewer --households or a longer --interval-seconds"
        )

    for t in range(intervals):
        reach(chain, genesis + (t + 1) * interval_seconds)
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
