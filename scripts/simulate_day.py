"""Simulate the households' meters for a day (or INTERVALS intervals): sign each reading, submit, move time.

    brownie run scripts/simulate_day.py --network development           # 96 intervals of 15 min
    brownie run scripts/simulate_day.py main 8 --network development    # 8 intervals

Starts at the loop's current interval (a meter reports only from the interval of its admission, so run
add_members.py first); for each one it moves the development chain's clock to the interval's end, then
submits every household's EIP-712 signed reading (daisee's simulation and signing).
A meter may report at most SETTLEMENT_LAG intervals ahead of settlement, so older intervals are finalized
and settled on the way; settle.py settles the rest.
"""

from __future__ import annotations

from daisee.domain import SETTLEMENT_LAG, RejectReason
from daisee.errors import DaiseeError
from daisee.loop import READING_BATCH
from daisee.readings import LoopDomain, Reading
from daisee.simulation import simulate
from scripts.common import SEED, households, pmo, recorded_loop, settle_through, travel_to


def main(intervals: str = "96") -> None:
    loop, deployment = recorded_loop()
    members = households(loop)
    genesis, seconds, first = loop.genesis(), loop.intervalSeconds(), loop.currentInterval()
    last = first + int(intervals) - 1
    traces = simulate([h.kind for h in members], genesis, seconds, last + 1, SEED)
    domain = LoopDomain(deployment.chain_id, loop.address)
    for t in range(first, last + 1):
        travel_to(genesis + (t + 1) * seconds)
        settle_through(loop, t - SETTLEMENT_LAG)
        readings = [
            Reading(h.meter_id, t, trace.imports[t + 1], trace.exports[t + 1]).sign(h.gateway_key, domain).as_call_arg()
            for h, trace in zip(members, traces, strict=True)
        ]
        for start in range(0, len(readings), READING_BATCH):
            tx = loop.submitReadings(readings[start : start + READING_BATCH], {"from": pmo()})
            if "ReadingRejected" in tx.events:
                reasons = {RejectReason(e["reason"]).name.lower() for e in tx.events["ReadingRejected"]}
                raise DaiseeError(f"interval {t}: readings rejected ({', '.join(sorted(reasons))})")
    settled = loop.nextIntervalToSettle()
    print(f"intervals {first}-{last} read for {len(members)} meters; {settled} settled; settle.py settles the rest")
