"""A simulated neighbourhood run through the real contracts: deploy a loop and admit its households."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from eth_account import Account
from eth_utils import keccak

from daisee.chain.deploy import Deployment, LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import MeterKind
from daisee.loop import Loop

# One household in three has PV only, one in three consumes only, the rest have both.
_KIND_CYCLE = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)


@dataclass(frozen=True)
class Household:
    """A simulated household: its meter, its gateway's signing key and its wallet."""

    name: str
    kind: MeterKind
    meter_id: bytes
    gateway_key: bytes
    signer: str
    payout: str


@dataclass
class Admission:
    """A household admitted on-chain, with the transaction that did it."""

    household: Household
    tx_hash: str
    gas_used: int


def simulated_households(count: int, seed: int) -> list[Household]:
    """`count` households, the same for the same `seed`.

    Their keys are derived from the seed: simulation keys, public by construction, never for real money.
    """
    households = []
    for i in range(count):
        gateway_key = keccak(text=f"daisee-demo/{seed}/gateway/{i}")
        wallet = Account.from_key(keccak(text=f"daisee-demo/{seed}/wallet/{i}"))
        households.append(
            Household(
                name=f"house-{i + 1:02d}",
                kind=_KIND_CYCLE[i % len(_KIND_CYCLE)],
                meter_id=keccak(text=f"daisee-demo/{seed}/meter/{i}"),
                gateway_key=gateway_key,
                signer=Account.from_key(gateway_key).address,
                payout=wallet.address,
            )
        )
    return households


def run_demo(
    sender: Sender,
    households: list[Household],
    params: LoopParameters,
    on_admitted: Callable[[Admission], None] | None = None,
) -> tuple[Deployment, list[Admission]]:
    """Deploy a loop with `sender` as PMO and admit every household; returns what happened on-chain."""
    deployment = deploy_loop(sender, params)
    loop = Loop(sender, deployment.address)
    admissions = []
    for household in households:
        receipt = loop.add_meter(household.meter_id, household.signer, household.payout, household.kind)
        admission = Admission(household, receipt["transactionHash"].to_0x_hex(), int(receipt["gasUsed"]))
        admissions.append(admission)
        if on_admitted:
            on_admitted(admission)
    return deployment, admissions
