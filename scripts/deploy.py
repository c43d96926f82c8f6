"""Deploy the brownie-compiled EnergyLoop with daisee's default loop parameters, and record it for daisee.

    brownie run scripts/deploy.py --network development

The PMO is the node's first account; the test euro (EuroToken) is deployed too, as the settlement token.
EnergyLoop links three libraries (MeterAdmin, Ledger, Settlement): they are deployed first, and brownie links
the loop to the ones it deployed last. The loop takes daisee's defaults for a development chain: genesis at
the current interval boundary, no notice period, a price cap of twice the price. The record goes to
deployments/<chain-id>.json (replacing one there), as `daisee deploy` writes it, so that
`daisee member|report|oracle --chain <node URL>` and the other scripts work on this loop.
"""

from __future__ import annotations

import time

from brownie import EnergyLoop, EuroToken, Ledger, MeterAdmin, Settlement, web3

from daisee.chain.deploy import LOOP_LIBRARIES, Deployment, LoopParameters, save_deployment
from scripts.common import dev_chain, pmo

LIBRARIES = {"MeterAdmin": MeterAdmin, "Ledger": Ledger, "Settlement": Settlement}


def main() -> None:
    chain, params, owner = dev_chain(), LoopParameters(), pmo()
    params.check()
    genesis = params.resolved_genesis(web3.eth.get_block("latest")["timestamp"])
    notice = params.resolved_notice(chain.is_dev)
    token = EuroToken.deploy({"from": owner})
    libraries = {name: str(LIBRARIES[name].deploy({"from": owner}).address) for name in LOOP_LIBRARIES}
    args = params.constructor_args(owner.address, genesis, token.address, notice)
    loop = EnergyLoop.deploy(*args, {"from": owner})
    deployment = Deployment(
        chain_id=chain.chain_id,
        network=chain.kind,
        address=loop.address,
        block=loop.tx.block_number,
        tx_hash=loop.tx.txid,
        deployer=owner.address,
        parameters=params.recorded(genesis, owner.address, loop.tx.gas_used, notice),
        deployed_at=int(time.time()),
        token=token.address,
        libraries=libraries,
    )
    print(f"loop {loop.address} recorded in {save_deployment(deployment)}")
