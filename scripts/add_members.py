"""Admit simulated households to the recorded loop: a producer, a consumer and a prosumer in turn.

    brownie run scripts/add_members.py --network development            # 3 households
    brownie run scripts/add_members.py main 6 --network development     # 6 (appended to those already in)

Each household is daisee's simulated one (`daisee.demo.simulated_households`): its meter id, gateway
signer key and payout wallet are derived from DAISEE_SEED, so simulate_day.py signs with the same keys.
Meters join with the indices the simulation gives them at the loop's genesis.
"""

from __future__ import annotations

from brownie import web3

from daisee.demo import coefficients, simulated_households
from daisee.loop import REGISTRATION_BATCH, MeterSpec
from daisee.simulation import simulate
from scripts.common import SEED, pmo, recorded_loop


def main(count: str = "3") -> None:
    loop, _ = recorded_loop()
    known = loop.meterCount()
    everyone = simulated_households(known + int(count), SEED)
    traces = simulate([h.kind for h in everyone], loop.genesis(), loop.intervalSeconds(), 0, SEED)
    specs = [
        MeterSpec(h.meter_id, h.signer, h.payout, h.kind, share, weight, trace.imports[0], trace.exports[0])
        for h, trace, (share, weight) in zip(everyone, traces, coefficients(everyone), strict=True)
    ][known:]
    for start in range(0, len(specs), REGISTRATION_BATCH):
        loop.addMeters([s.as_call_arg() for s in specs[start : start + REGISTRATION_BATCH]], {"from": pmo()})
    for h in everyone[known:]:
        print(f"{h.name} {h.kind.name.lower():8} meter 0x{h.meter_id.hex()} signer {h.signer}")
    print(f"{loop.meterCount()} meters in loop {loop.address} on chain {web3.eth.chain_id}")
