"""Admit simulated households to the recorded loop: a producer, a consumer and a prosumer in turn.

    brownie run scripts/add_members.py --network development            # 3 households
    brownie run scripts/add_members.py main 6 --network development     # 6 (appended to those already in)

Each household is daisee's simulated one (`daisee.demo.simulated_households`): its meter id, gateway
signer key and payout wallet are derived from DAISEE_SEED, so simulate_day.py signs with the same keys.
A meter is admitted in the loop's current interval and reports from there on: it joins with the indices the
simulation gives it at that interval's start, and with its physical limits (the subscribed power above its
peak load, its PV peak; `Profile.meter_limits`). The PMO then prepays each consuming household's energy in
test euros, so that settlement charges their balances and pays the producers.
"""

from __future__ import annotations

from brownie import EuroToken, web3

from daisee.demo import PREPAYMENT, coefficients, simulated_households
from daisee.domain import MeterKind
from daisee.loop import REGISTRATION_BATCH, MeterSpec
from daisee.simulation import profiles, simulate
from scripts.common import SEED, pmo, recorded_loop


def main(count: str = "3") -> None:
    loop, deployment = recorded_loop()
    known = loop.meterCount()
    everyone = simulated_households(known + int(count), SEED)
    kinds = [h.kind for h in everyone]
    now = loop.currentInterval()  # the meters count from here
    traces = simulate(kinds, loop.genesis(), loop.intervalSeconds(), now, SEED)
    specs = [
        MeterSpec(h.meter_id, h.signer, h.payout, h.kind, share, weight, tr.imports[now], tr.exports[now], *limits)
        for h, tr, (share, weight), limits in zip(
            everyone, traces, coefficients(everyone), [p.meter_limits() for p in profiles(kinds, SEED)], strict=True
        )
    ][known:]
    for start in range(0, len(specs), REGISTRATION_BATCH):
        loop.addMeters([s.as_call_arg() for s in specs[start : start + REGISTRATION_BATCH]], {"from": pmo()})
    consumers = [h.payout for h in everyone[known:] if h.kind is not MeterKind.PRODUCER]
    if deployment.token and consumers:
        token = EuroToken.at(deployment.token)
        token.mint(pmo(), PREPAYMENT * len(consumers), {"from": pmo()})
        token.approve(loop.address, PREPAYMENT * len(consumers), {"from": pmo()})
        for payout in consumers:
            loop.depositFor(payout, PREPAYMENT, {"from": pmo()})
    for h, spec in zip(everyone[known:], specs, strict=True):
        import_limit, export_limit = spec.limits()
        print(
            f"{h.name} {h.kind.name.lower():8} meter 0x{h.meter_id.hex()} signer {h.signer} "
            f"limits {import_limit} W in, {export_limit} W out"
        )
    print(f"{loop.meterCount()} meters in loop {loop.address} on chain {web3.eth.chain_id}, from interval {now}")
