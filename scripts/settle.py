"""Finalize and settle every interval that has ended, then print who owes whom (daisee's report).

    brownie run scripts/settle.py --network development

When a meter has not reported the last ended interval, the development chain's clock first moves past
that interval's grace period, so that it can be finalized without the missing reading. Receivables that
repaid debts can cover are paid (as anyone may). Works on any recorded loop; the simulated households of
add_members.py are printed by name, other meters by id.
"""

from __future__ import annotations

from rich.console import Console

from daisee.chain.deploy import ZERO_ADDRESS
from daisee.chain.transact import Sender
from daisee.demo import simulated_households
from daisee.loop import RECEIVABLE_CLAIMS, Loop
from daisee.report.data import build_report
from daisee.report.terminal import print_report
from scripts.common import SEED, dev_chain, pmo, recorded_loop, settle_through, travel_to


def main() -> None:
    loop, deployment = recorded_loop()
    last = loop.currentInterval() - 1
    if last >= loop.nextIntervalToFinalize() and loop.intervalTotals(last)["reported"] < loop.activeMeterCount():
        travel_to(loop.genesis() + (last + 1) * loop.intervalSeconds() + loop.graceSeconds())
    settle_through(loop, last)
    recovered, claims = loop.receivablesQueue()
    if recovered and claims:  # debts repaid since: pay the producers' receivables with them, oldest first
        loop.payReceivables(RECEIVABLE_CLAIMS, {"from": pmo()})
    reader = Sender(dev_chain(), ZERO_ADDRESS)  # reads only
    names = {h.meter_id: h.name for h in simulated_households(loop.meterCount(), SEED)}  # others: by id
    print_report(build_report(Loop(reader, loop.address), deployment.block, names), Console())
