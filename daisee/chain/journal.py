"""A deployment that survives its RPC node going away: each contract creation is noted before it is sent.

A creation's address follows from the deployer and the nonce, so the note names it before the
transaction leaves. Run again, the deployment picks each creation up where it was: found on chain,
still pending, or never sent (then sent again with the same nonce). Nothing is ever created twice,
and the deployment record is written only once every creation has its receipt.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import rlp
from eth_utils import keccak, to_canonical_address, to_checksum_address
from hexbytes import HexBytes
from web3.contract.contract import ContractConstructor
from web3.exceptions import TransactionNotFound
from web3.types import TxReceipt

from daisee.chain.fees import fees_of
from daisee.chain.transact import Pending, Sender
from daisee.errors import DaiseeError

SCAN_LIMIT = 10_000  # blocks searched for a creation whose transaction hash was never learnt


@dataclass
class Creation:
    """One contract creation: the nonce it uses, the address it makes, the block before it was sent."""

    nonce: int
    address: str
    after_block: int
    tx_hash: str | None = None


@dataclass
class DeploymentJournal:
    """The creations of an unfinished deployment, kept in `path` (written before each is sent)."""

    path: Path
    deployer: str
    asked: dict[str, Any]  # the parameters as given: a resumed deployment must be asked for the same
    resolved: dict[str, Any] = field(default_factory=dict)  # what was decided from them (e.g. the genesis)
    creations: dict[str, Creation] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path, deployer: str, asked: dict[str, Any]) -> DeploymentJournal:
        """The journal at `path` if one is there (for the same deployer and parameters), else a new one."""
        if not path.exists():
            return cls(path, deployer, asked)
        try:
            data = json.loads(path.read_text())
            creations = {name: Creation(**noted) for name, noted in data["creations"].items()}
            journal = cls(path, data["deployer"], data["asked"], data["resolved"], creations)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise DaiseeError(f"{path} is not a deployment journal: remove it and deploy again") from None
        if journal.deployer != deployer or journal.asked != asked:
            raise DaiseeError(
                f"an unfinished deployment by {journal.deployer} with other parameters is in {path}: "
                "run the same command as then to finish it, or remove the file to start over"
            )
        return journal

    def create(self, sender: Sender, name: str, call: ContractConstructor) -> TxReceipt:
        """Create contract `name` with `call`, or pick up the creation this journal noted earlier."""
        noted = self.creations.get(name)
        if noted:
            found = self._pick_up(sender, name, call, noted)
            if isinstance(found, Pending):
                return self._await(sender, name, found)
            if found is not None:
                return found
            nonce = noted.nonce
        else:
            nonce = sender.next_nonce()
            address = create_address(sender.address, nonce)
            self._note(name, Creation(nonce, address, int(sender.chain.w3.eth.block_number)))
        return self._await(sender, name, sender.send(call, f"deploying {name}", nonce=nonce))

    def _await(self, sender: Sender, name: str, pending: Pending) -> TxReceipt:
        self._note(name, replace(self.creations[name], tx_hash=pending.hash))
        return sender.wait(pending)

    def _note(self, name: str, creation: Creation) -> None:
        self.creations[name] = creation
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        creations = {name: asdict(noted) for name, noted in self.creations.items()}
        data = {"deployer": self.deployer, "asked": self.asked, "resolved": self.resolved, "creations": creations}
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.path)

    def _pick_up(
        self, sender: Sender, name: str, call: ContractConstructor, noted: Creation
    ) -> TxReceipt | Pending | None:
        """The receipt if the creation is on chain, a Pending if the node still holds it, None if never sent."""
        w3 = sender.chain.w3
        if len(w3.eth.get_code(to_checksum_address(noted.address))) > 0:
            return self._receipt_of(sender, noted)
        if noted.tx_hash:
            try:
                tx = w3.eth.get_transaction(HexBytes(noted.tx_hash))
            except TransactionNotFound:
                tx = None
            if tx is not None and tx.get("blockNumber") is None:
                params = {"from": sender.address, "nonce": noted.nonce, "gas": tx["gas"], **fees_of(tx)}
                sent = call.build_transaction({**params, "chainId": sender.chain.chain_id})
                return Pending(call, f"deploying {name}", sent, [HexBytes(noted.tx_hash)], time.monotonic())
        if int(w3.eth.get_transaction_count(sender.address, "latest")) > noted.nonce:
            raise DaiseeError(
                f"deploying {name}: nonce {noted.nonce} of {sender.address} was used without creating the contract "
                f"(failed or replaced): remove {self.path} and deploy again"
            )
        return None

    def _receipt_of(self, sender: Sender, noted: Creation) -> TxReceipt:
        """The creation's receipt: by its hash, else by finding its transaction after `after_block`."""
        w3 = sender.chain.w3
        if noted.tx_hash:
            try:
                return w3.eth.get_transaction_receipt(HexBytes(noted.tx_hash))
            except TransactionNotFound:
                pass  # replaced by a bumped copy whose hash never reached the journal
        head = int(w3.eth.block_number)
        for number in range(noted.after_block, min(head, noted.after_block + SCAN_LIMIT) + 1):
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
                if not isinstance(tx, bytes) and tx["from"] == sender.address and tx["nonce"] == noted.nonce:
                    return w3.eth.get_transaction_receipt(tx["hash"])
        raise DaiseeError(f"the contract at {noted.address} has no creation transaction from {sender.address} in sight")


def create_address(deployer: str, nonce: int) -> str:
    """The address of the contract `deployer` creates with transaction `nonce`."""
    return str(to_checksum_address(keccak(rlp.encode([to_canonical_address(deployer), nonce]))[12:]))
