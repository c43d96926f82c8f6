"""What the brownie scripts share: the recorded loop, the PMO, the simulated households and the clock.

The scripts drive development networks (anvil, ganache): the PMO is the node's first unlocked account,
and the households' gateway keys are derived from `DAISEE_SEED` (default 1), public by construction.
"""

from __future__ import annotations

import os

from brownie import EnergyLoop, accounts, chain, web3
from brownie.network.account import Account
from brownie.network.contract import ProjectContract

from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import Deployment, load_deployment
from daisee.demo import Household, simulated_households
from daisee.errors import DaiseeError
from daisee.loop import SETTLEMENT_STEPS

SEED = int(os.environ.get("DAISEE_SEED", "1"))


def dev_chain() -> Chain:
    """daisee's view of the node brownie is connected to; only development chains are accepted."""
    found = connect(web3.provider.endpoint_uri)
    if not found.is_dev:
        raise DaiseeError(f"{found.label} is not a development chain: these scripts use public simulation keys")
    return found


def pmo() -> Account:
    return accounts[0]


def recorded_loop() -> tuple[ProjectContract, Deployment]:
    """The loop recorded in deployments/<chain-id>.json (see deploy.py), as a brownie contract."""
    deployment = load_deployment(dev_chain())
    return EnergyLoop.at(deployment.address), deployment


def households(loop: ProjectContract) -> list[Household]:
    """The simulated households registered in `loop`, in registration order."""
    found = simulated_households(loop.meterCount(), SEED)
    if [bytes(loop.meterIdAt(i)) for i in range(len(found))] != [h.meter_id for h in found]:
        raise DaiseeError(
            f"the loop's meters are not the households of DAISEE_SEED={SEED}: use the seed of add_members"
        )
    return found


def travel_to(timestamp: int) -> None:
    """Mine a block at `timestamp` or later (development chains only)."""
    latest = web3.eth.get_block("latest")["timestamp"]
    if timestamp > latest:
        chain.sleep(timestamp - latest)
    chain.mine()


def settle_through(loop: ProjectContract, last: int) -> None:
    """Finalize and settle every interval up to `last`, as any keeper may (see daisee.keeper)."""
    while loop.nextIntervalToSettle() <= last:
        interval = loop.nextIntervalToSettle()
        if loop.nextIntervalToFinalize() == interval:
            loop.finalize(interval, {"from": pmo()})
        while loop.nextIntervalToSettle() == interval:
            loop.settle(SETTLEMENT_STEPS, {"from": pmo()})
