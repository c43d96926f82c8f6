"""Deploy the brownie-compiled EnergyLoop with daisee's default loop parameters, and record it for daisee.

    brownie run scripts/deploy.py --network development

The PMO is the node's first account; the test euro (EuroToken) is deployed too, as the settlement token.
The record goes to deployments/<chain-id>.json (replacing one there), as `daisee deploy` writes it, so that
`daisee member|report|oracle --chain <node URL>` and the other scripts work on this loop.
"""

from __future__ import annotations

import time

from brownie import EnergyLoop, EuroToken, web3

from daisee.chain.deploy import Deployment, LoopParameters, save_deployment
from scripts.common import dev_chain, pmo


def main() -> None:
    chain, params, owner = dev_chain(), LoopParameters(), pmo()
    genesis = params.resolved_genesis(web3.eth.get_block("latest")["timestamp"])
    token = EuroToken.deploy({"from": owner})
    loop = EnergyLoop.deploy(*params.constructor_args(owner.address, genesis, token.address), {"from": owner})
    deployment = Deployment(
        chain_id=chain.chain_id,
        network=chain.kind,
        address=loop.address,
        block=loop.tx.block_number,
        tx_hash=loop.tx.txid,
        deployer=owner.address,
        parameters=params.recorded(genesis, owner.address, loop.tx.gas_used),
        deployed_at=int(time.time()),
        token=token.address,
    )
    print(f"loop {loop.address} recorded in {save_deployment(deployment)}")
