"""Client for a deployed EnergyLoop: its configuration and its meter registry."""

from __future__ import annotations

from dataclasses import dataclass

from eth_typing import ChecksumAddress
from web3.contract import Contract
from web3.types import TxReceipt

from daisee.chain.artifacts import load_artifact
from daisee.chain.deploy import LOOP_CONTRACT
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind


@dataclass(frozen=True)
class MeterInfo:
    """A meter as the loop contract records it."""

    meter_id: bytes
    signer: ChecksumAddress
    payout: ChecksumAddress
    kind: MeterKind
    active: bool

    def as_json(self) -> dict[str, object]:
        return {
            "meter_id": "0x" + self.meter_id.hex(),
            "signer": self.signer,
            "payout": self.payout,
            "kind": self.kind.name.lower(),
            "active": self.active,
        }


@dataclass(frozen=True)
class LoopConfig:
    """The loop's calendar and pricing."""

    pmo: ChecksumAddress
    genesis: int
    interval_seconds: int
    key: AllocationKey
    price_per_wh: int


class Loop:
    """A deployed loop, driven by `sender` (the PMO for admin calls)."""

    def __init__(self, sender: Sender, address: str) -> None:
        self.sender = sender
        w3 = sender.chain.w3
        self.contract: Contract = w3.eth.contract(
            address=w3.to_checksum_address(address), abi=load_artifact(LOOP_CONTRACT)["abi"]
        )

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    def config(self) -> LoopConfig:
        f = self.contract.functions
        return LoopConfig(
            pmo=f.owner().call(),
            genesis=f.genesis().call(),
            interval_seconds=f.intervalSeconds().call(),
            key=AllocationKey(f.allocationKey().call()),
            price_per_wh=f.pricePerWh().call(),
        )

    def add_meter(self, meter_id: bytes, signer: str, payout: str, kind: MeterKind) -> TxReceipt:
        """Admit a meter (PMO only)."""
        w3 = self.sender.chain.w3
        call = self.contract.functions.addMeter(
            meter_id, w3.to_checksum_address(signer), w3.to_checksum_address(payout), int(kind)
        )
        return self.sender.transact(call, f"adding meter 0x{meter_id.hex()}")

    def remove_meter(self, meter_id: bytes) -> TxReceipt:
        """Remove a meter for good (PMO only)."""
        return self.sender.transact(self.contract.functions.removeMeter(meter_id), f"removing meter 0x{meter_id.hex()}")

    def meter(self, meter_id: bytes) -> MeterInfo:
        signer, kind, active, payout = self.contract.functions.meter(meter_id).call()
        return MeterInfo(meter_id, signer, payout, MeterKind(kind), active)

    def meters(self, *, include_removed: bool = False) -> list[MeterInfo]:
        """Every registered meter in registration order; removed ones only if asked."""
        f = self.contract.functions
        ids = [f.meterIdAt(i).call() for i in range(f.meterCount().call())]
        found = [self.meter(meter_id) for meter_id in ids]
        return [m for m in found if m.active or include_removed]
