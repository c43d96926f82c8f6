"""A simulated neighbourhood run through the real contracts: deploy, admit, sign, submit, finalize, settle.

Everything the demo reports is read back from the chain (settlement events, token balances, ledger),
never from the simulation that fed it. A development chain's clock is moved through the intervals; on
any other network the demo waits for them, in real time.

A flexible demo adds the households' shiftable appliances (see {daisee.appliances}) and plays whole
appliance days, 07:00 to 07:00: a history day, then the day it compares. When that day starts, the
households that follow the signal read the loop's settled history back from the chain, forecast the
loop's steps from it ({daisee.flex.forecast}) and plan each of the day's uses on that signal in turn,
sharing one set of bookings ({daisee.flex.planner}); the others start their appliances as they always do.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from time import sleep
from zoneinfo import ZoneInfo

from eth_account import Account
from eth_keys.datatypes import PrivateKey
from eth_utils import keccak
from web3.types import TxReceipt

from daisee.appliances import Running, day_start, follow_signal, household_appliances, rigid
from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import Chain
from daisee.chain.deploy import TEST_EURO, Deployment, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import SHARE_DENOMINATOR, AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.flex.forecast import Expected, Settled, Site, expect
from daisee.loop import Loop, MemberResult, MeterSpec
from daisee.readings import Reading
from daisee.simulation import LOCAL_OFFSET_SECONDS, ExtraLoad, MeterTrace, profiles, simulate

# One household in three has PV only, one in three consumes only, the rest have both.
_KIND_CYCLE = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)
_DAY = 86_400
PREPAYMENT = 20_000_000  # what the PMO prepays for each consuming household: 20 test euros
REAL_NETWORK_LEAD = 300  # time to deploy and admit on a network with block times and confirmations
HISTORY_DAYS = 1  # appliance days a flexible demo plays before the one it compares
SIMULATED_ZONE = ZoneInfo("Etc/GMT-1")  # the simulation's local time: UTC+1 all year
SIMULATED_SITE = Site(45.0, 3.0)  # where the simulated sun culminates at 12:48 UTC+1
_ADMISSION_LEAD = 3600  # a flexible demo's first day starts at least this long after the chain's clock


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
    simulated_genesis: int = 0  # the simulated time of the loop's genesis (a flexible demo may replay a day)
    interval_seconds: int = 900
    compared_from: int = 0  # a flexible demo's first interval of the day it compares
    uses: list[list[Running]] = field(default_factory=list)  # per household, the compared day's appliance uses
    registration_gas: int = 0
    reading_gas: int = 0
    settlement_gas: int = 0
    transactions: int = 0

    @property
    def compared_start(self) -> int:
        """The simulated time the compared day starts at (a plain demo: its genesis)."""
        return self.simulated_genesis + self.compared_from * self.interval_seconds


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


def flexible_households(households: Sequence[Household], share: float, seed: int) -> tuple[int, ...]:
    """The positions of the households that follow the signal: `share` of those that consume (rounded to
    the nearest), chosen by the seed, in the order they plan."""
    consuming = [i for i, h in enumerate(households) if h.kind is not MeterKind.PRODUCER]
    random.Random(f"daisee-demo/{seed}/flexible").shuffle(consuming)
    return tuple(consuming[: round(share * len(consuming))])


def run_demo(
    sender: Sender,
    households: list[Household],
    key: AllocationKey,
    intervals: int,
    seed: int,
    interval_seconds: int = 900,
    on_interval: Callable[[int], None] | None = None,
    token: str | None = TEST_EURO,
    sky: float | None = None,
) -> DemoRun:
    """Deploy a loop with `sender` as PMO, settled in `token` (as `daisee deploy --token`), admit the
    households, then play `intervals` simulated intervals (under `sky` if given), settling each.

    With the test euro the PMO prepays the consumers. With any other token it does not: the households'
    keys are public (derived from the seed), so whatever is deposited for them anyone could withdraw.
    """
    genesis = _loop_start(sender.chain, interval_seconds)
    traces = simulate([h.kind for h in households], genesis, interval_seconds, intervals, seed, sky)
    limits = [p.meter_limits() for p in profiles([h.kind for h in households], seed)]
    loop, run = _admitted(sender, households, key, genesis, interval_seconds, traces, limits, token)
    run.simulated_genesis = genesis
    _play(loop, run, traces, range(intervals), genesis, interval_seconds, on_interval)
    return run


def run_flexible_demo(
    sender: Sender,
    households: list[Household],
    key: AllocationKey,
    seed: int,
    flexible: Sequence[int],
    interval_seconds: int = 900,
    on_interval: Callable[[int], None] | None = None,
    token: str | None = TEST_EURO,
    sky: float | None = None,
    simulated_start: int | None = None,
) -> DemoRun:
    """A flexible demo on a development chain: HISTORY_DAYS then the compared day, appliances included, the
    households at positions `flexible` following the signal on the compared day (in that order).

    The loop starts at the chain's next 07:00; the simulation plays from `simulated_start` (a 07:00 local,
    whole days away) if given, else from the loop's start: a second loop replays the first one's days.
    """
    chain = sender.chain
    if not chain.is_dev:
        raise DaiseeError(
            f"a flexible demo plays {HISTORY_DAYS + 1} days on a moved clock, which {chain.label} keeps in real "
            "time: run it on a development chain (--chain embedded, anvil or ganache)"
        )
    if _DAY % interval_seconds:
        raise DaiseeError(
            f"--interval-seconds {interval_seconds} does not divide a day: give one that does, e.g. 900 or 1800"
        )
    genesis = day_start(chain_time(chain) + _ADMISSION_LEAD) + _DAY
    start = genesis if simulated_start is None else simulated_start
    per_day = _DAY // interval_seconds
    compared = HISTORY_DAYS * per_day
    kinds = [h.kind for h in households]
    owned = [household_appliances(kind, seed, i) for i, kind in enumerate(kinds)]
    days = [start + d * _DAY for d in range(HISTORY_DAYS + 1)]
    uses = [[rigid(use) for day in days for use in appliances.uses(day)] for appliances in owned]
    traces = simulate(kinds, start, interval_seconds, compared + per_day, seed, sky, _drawn(uses))
    limits = [p.meter_limits(a.peak_w) for p, a in zip(profiles(kinds, seed), owned, strict=True)]
    loop, run = _admitted(sender, households, key, genesis, interval_seconds, traces, limits, token)
    run.simulated_genesis, run.compared_from = start, compared
    _play(loop, run, traces, range(compared), genesis, interval_seconds, on_interval)
    if flexible:
        today = [(i, use) for i in flexible for use in owned[i].uses(days[-1])]
        for (i, use), planned in zip(today, follow_signal([use for _, use in today], _signal(run)), strict=True):
            uses[i] = [planned if running.use == use else running for running in uses[i]]
        traces = simulate(kinds, start, interval_seconds, compared + per_day, seed, sky, _drawn(uses))
    run.uses = [[r for r in household if r.use.earliest >= days[-1]] for household in uses]
    _play(loop, run, traces, range(compared, compared + per_day), genesis, interval_seconds, on_interval)
    return run


def compare_flexible(
    sender: Sender,
    households: list[Household],
    key: AllocationKey,
    seed: int,
    flexible: Sequence[int],
    interval_seconds: int = 900,
    on_interval: Callable[[int], None] | None = None,
    token: str | None = TEST_EURO,
    sky: float | None = None,
    simulated_start: int | None = None,
) -> tuple[DemoRun, DemoRun]:
    """The same days played twice on one chain, by two loops: nobody following the signal, then the
    `flexible` households. The second loop starts days later on the chain (its clock only moves forward)
    and replays the first one's simulated days, weather and loads."""
    rigid_run = run_flexible_demo(
        sender, households, key, seed, (), interval_seconds, on_interval, token, sky, simulated_start
    )
    flexible_run = run_flexible_demo(
        sender, households, key, seed, flexible, interval_seconds, on_interval, token, sky, rigid_run.simulated_genesis
    )
    return rigid_run, flexible_run


def compared_day(run: DemoRun) -> dict[bytes, MemberResult]:
    """Each meter's settled totals, as the chain gave them, over the compared day (a plain demo: its whole run)."""
    totals = {h.meter_id: MemberResult() for h in run.households}
    for t in range(run.compared_from, run.intervals):
        for meter_id, result in run.results.get(t, {}).items():
            total = totals[meter_id]
            for f in fields(MemberResult):
                setattr(total, f.name, getattr(total, f.name) + getattr(result, f.name))
    return totals


def bill(total: MemberResult, grid_price_per_wh: int) -> int:
    """A household's bill in ledger units: its local energy, less what it sold in the loop, plus what it drew
    from the grid (its complement) at `grid_price_per_wh`; exports to the grid earn nothing here."""
    return total.cost - total.revenue + (total.consumed - total.allocated) * grid_price_per_wh


def _admitted(
    sender: Sender,
    households: list[Household],
    key: AllocationKey,
    genesis: int,
    interval_seconds: int,
    traces: list[MeterTrace],
    limits: list[tuple[int, int]],
    token: str | None,
) -> tuple[Loop, DemoRun]:
    """A loop deployed from `genesis` with the households admitted at their traces' first indices."""
    chain = sender.chain
    params = LoopParameters(interval_seconds, key, 100, genesis, token=token, notice_seconds=0)
    deployment = deploy_loop(sender, params)
    loop = Loop(sender, deployment.address)
    run = DemoRun(deployment, households, len(traces[0].imports) - 1, interval_seconds=interval_seconds)
    specs = [
        MeterSpec(h.meter_id, h.signer, h.payout, h.kind, share, weight, trace.imports[0], trace.exports[0], *limit)
        for h, trace, (share, weight), limit in zip(households, traces, coefficients(households), limits, strict=True)
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
    return loop, run


def _play(
    loop: Loop,
    run: DemoRun,
    traces: list[MeterTrace],
    intervals: range,
    genesis: int,
    interval_seconds: int,
    on_interval: Callable[[int], None] | None,
) -> None:
    """Sign, submit, finalize and settle each of `intervals`, recording what the chain settled."""
    chain = loop.sender.chain
    for t in intervals:
        reach(chain, genesis + (t + 1) * interval_seconds)
        readings = [
            Reading(h.meter_id, t, trace.imports[t + 1], trace.exports[t + 1]).sign(h.gateway_key, loop.domain)
            for h, trace in zip(run.households, traces, strict=True)
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


def _drawn(uses: list[list[Running]]) -> ExtraLoad:
    """Each household's appliance energy over a period, from its uses."""
    return lambda household, start, end: sum(r.energy_wh(start, end) for r in uses[household])


def _signal(run: DemoRun) -> list[Expected]:
    """The loop's expected steps over the compared day, forecast when it starts from the steps settled so far
    (as the chain's settlement events gave them), in simulated time."""
    settled = [
        Settled(
            run.simulated_genesis + t * run.interval_seconds,
            sum(r.consumed for r in results.values()),
            sum(r.produced for r in results.values()),
        )
        for t, results in sorted(run.results.items())
    ]
    genesis, step = run.simulated_genesis, run.interval_seconds
    return expect(settled, run.compared_start, genesis, step, SIMULATED_ZONE, SIMULATED_SITE, _DAY // 3600).steps
