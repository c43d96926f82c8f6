"""Client for a loop's ConsentRegistry: record signed grants and revocations, or send them as the member, and
read the consents back from the registry's events.

A message is checked off-chain before it is sent (the registry's rules, the meter in the loop, the signature
by its payout account), so no gas is spent on one the registry would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_typing import ChecksumAddress
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD
from web3.types import TxReceipt

from daisee.chain.artifacts import load_artifact
from daisee.chain.clock import chain_time
from daisee.chain.deploy import CONSENT_CONTRACT
from daisee.chain.logs import event_logs
from daisee.chain.transact import Sender
from daisee.consent.model import GRANT_FIELDS, GRANULARITIES, Grant, Status, revocation_typed_data, typed_digest
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterInfo
from daisee.readings import SECP256K1_N

# `status(id)`'s answer, by the contract's enum: None (no consent), Pending, Active, Revoked, Expired
STATUSES = (None, Status.PENDING, Status.ACTIVE, Status.REVOKED, Status.EXPIRED)
_HALF_N = SECP256K1_N // 2  # the largest s OpenZeppelin's ECDSA accepts
ERC1271_MAGIC = bytes.fromhex("1626ba7e")  # isValidSignature(bytes32,bytes)'s selector: "valid"
_ERC1271_ABI = [
    {
        "type": "function",
        "name": "isValidSignature",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "", "type": "bytes4"}],
    }
]


@dataclass(frozen=True)
class RecordedConsent:
    """A consent as the registry's events tell it: the grant, who granted it, when, and whether it was revoked."""

    consent_id: bytes
    grant: Grant
    grantor: ChecksumAddress
    block: int
    revoked: bool

    def status(self, now: int) -> Status:
        return self.grant.status(now, self.revoked)


def sign_grant(grant: Grant, account: LocalAccount, chain_id: int, registry: str) -> bytes:
    """`account`'s EIP-712 signature (65 bytes) of `grant` for `registry` on chain `chain_id`."""
    return _sign(account, grant.typed_data(chain_id, registry))


def sign_revocation(consent_id: bytes, account: LocalAccount, chain_id: int, registry: str) -> bytes:
    """`account`'s EIP-712 signature (65 bytes) revoking consent `consent_id` of `registry` on chain `chain_id`."""
    return _sign(account, revocation_typed_data(consent_id, chain_id, registry))


def _sign(account: LocalAccount, typed: dict[str, Any]) -> bytes:
    return bytes(account.sign_message(encode_typed_data(full_message=typed)).signature)


class ConsentRegistry:
    """A loop's deployed ConsentRegistry, driven by `sender` (anyone records signed messages; the member sends
    its own grants and revocations)."""

    def __init__(self, sender: Sender, address: str) -> None:
        self.sender = sender
        w3 = sender.chain.w3
        self.contract: Contract = w3.eth.contract(
            address=w3.to_checksum_address(address), abi=load_artifact(CONSENT_CONTRACT)["abi"]
        )
        self._loop: Loop | None = None

    @property
    def address(self) -> ChecksumAddress:
        return self.contract.address

    @property
    def chain_id(self) -> int:
        return self.sender.chain.chain_id

    def as_sender(self, sender: Sender) -> ConsentRegistry:
        """The same registry, driven by another account."""
        return ConsentRegistry(sender, self.address)

    def loop(self) -> Loop:
        """The loop whose meters' payout accounts grant consents here."""
        if self._loop is None:
            self._loop = Loop(self.sender, self.contract.functions.loop().call())
        return self._loop

    def max_duration(self) -> int:
        """The longest consent this registry records, in seconds."""
        return int(self.contract.functions.maxDurationSeconds().call())

    # ---------------------------------------------------------------- grants

    def record_grant(self, grant: Grant, signature: bytes) -> bytes:
        """Record `grant`, signed by its meter's payout account; returns the consent id."""
        payout = self.check_grant(grant).payout
        if not self.signed_by(payout, grant.typed_data(self.chain_id, self.address), signature):
            raise DaiseeError(
                f"the grant is not signed by meter 0x{grant.meter_id.hex()}'s payout account {payout} for registry "
                f"{self.address} on chain {self.chain_id}: have that account sign it again"
            )
        call = self.contract.functions.recordGrant(_grant_arg(grant), signature)
        return self._granted(self.sender.transact(call, f"recording a consent on meter 0x{grant.meter_id.hex()}"))

    def grant(self, grant: Grant) -> bytes:
        """Record `grant` sent by its meter's payout account (the sender) itself; returns the consent id."""
        payout = self.check_grant(grant).payout
        if self.sender.address != payout:
            raise DaiseeError(
                f"only meter 0x{grant.meter_id.hex()}'s payout account {payout} may grant a consent on it, not "
                f"{self.sender.address}: pass --account with the payout account's key"
            )
        call = self.contract.functions.grant(_grant_arg(grant))
        return self._granted(self.sender.transact(call, f"granting consent on meter 0x{grant.meter_id.hex()}"))

    def check_grant(self, grant: Grant) -> MeterInfo:
        """Refuse, before any gas is spent, what the registry would refuse but the signature; returns the
        meter it names."""
        grant.check(chain_time(self.sender.chain), self.max_duration())
        consent_id = grant.consent_id(self.chain_id, self.address)
        if self.status(consent_id) is not None:
            raise DaiseeError(f"consent 0x{consent_id.hex()} is recorded already: see `daisee consent list`")
        return self.meter(grant.meter_id)

    def meter(self, meter_id: bytes) -> MeterInfo:
        """Meter `meter_id` of the loop, or a one-line error if it has none."""
        loop = self.loop()
        try:
            return loop.meter(meter_id)
        except (ContractLogicError, TransactionFailed):  # a node's revert, or py-evm's
            raise DaiseeError(
                f"no meter 0x{meter_id.hex()} in the loop {loop.address}: check the id with `daisee member list`"
            ) from None

    def _granted(self, receipt: TxReceipt) -> bytes:
        (event,) = self.contract.events.ConsentGranted().process_receipt(receipt, errors=DISCARD)
        return bytes(event["args"]["consentId"])

    # ---------------------------------------------------------------- revocations

    def record_revocation(self, consent_id: bytes, signature: bytes) -> TxReceipt:
        """Revoke consent `consent_id` with a revocation signed by its grantor."""
        grantor = self.check_revocation(consent_id)
        if not self.signed_by(grantor, revocation_typed_data(consent_id, self.chain_id, self.address), signature):
            raise DaiseeError(
                f"the revocation is not signed by consent 0x{consent_id.hex()}'s grantor {grantor} for registry "
                f"{self.address} on chain {self.chain_id}: have that account sign it again"
            )
        call = self.contract.functions.recordRevocation(consent_id, signature)
        return self.sender.transact(call, f"revoking consent 0x{consent_id.hex()}")

    def revoke(self, consent_id: bytes) -> TxReceipt:
        """Revoke consent `consent_id`, sent by its grantor (the sender) itself."""
        grantor = self.check_revocation(consent_id)
        if self.sender.address != grantor:
            raise DaiseeError(
                f"only consent 0x{consent_id.hex()}'s grantor {grantor} may revoke it, not {self.sender.address}: "
                "pass --account with the grantor's key"
            )
        return self.sender.transact(
            self.contract.functions.revoke(consent_id), f"revoking consent 0x{consent_id.hex()}"
        )

    def check_revocation(self, consent_id: bytes) -> ChecksumAddress:
        """Refuse, before any gas is spent, the revocation of an unknown or revoked consent; returns its grantor."""
        status = self.status(consent_id)
        if status is None:
            raise DaiseeError(
                f"no consent 0x{consent_id.hex()} in the registry {self.address}: see `daisee consent list`"
            )
        if status is Status.REVOKED:
            raise DaiseeError(f"consent 0x{consent_id.hex()} is revoked already: nothing to do")
        return self.grantor(consent_id)

    # ---------------------------------------------------------------- access log

    def anchor_access_log(self, head: bytes, entries: int) -> TxReceipt:
        """Publish the running hash `head` of an access log of `entries` entries, as the sender (the régie)."""
        call = self.contract.functions.anchorAccessLog(head, entries)
        return self.sender.transact(call, f"anchoring the access log at entry {entries}")

    # ---------------------------------------------------------------- reads

    def status(self, consent_id: bytes) -> Status | None:
        """The consent's status at the latest block, None if the registry has no consent under this id."""
        return STATUSES[self.contract.functions.status(consent_id).call()]

    def grantor(self, consent_id: bytes) -> ChecksumAddress:
        """Who granted consent `consent_id` (the zero address: nobody)."""
        return to_checksum_address(self.contract.functions.consent(consent_id).call()[1])

    def consents(self, meter_id: bytes | None = None, from_block: int = 0) -> list[RecordedConsent]:
        """The consents recorded from `from_block` on (on meter `meter_id` only, if given), in the order they
        were, each with whether it was revoked since."""
        events = self.contract.events
        head = int(self.sender.chain.w3.eth.block_number)
        filters = {"meterId": meter_id} if meter_id is not None else None
        revoked = {bytes(e["args"]["consentId"]) for e in event_logs(events.ConsentRevoked, from_block, head, filters)}
        return [
            RecordedConsent(
                consent_id=bytes(e["args"]["consentId"]),
                grant=granted(e["args"]),
                grantor=to_checksum_address(e["args"]["grantor"]),
                block=int(e["blockNumber"]),
                revoked=bytes(e["args"]["consentId"]) in revoked,
            )
            for e in event_logs(events.ConsentGranted, from_block, head, filters)
        ]

    def signed_by(self, account: str, typed: dict[str, Any], signature: bytes) -> bool:
        """True if `signature` is `account`'s over the EIP-712 document `typed`, as the registry checks it: by
        ECDSA for an account without code (65 bytes, v 27 or 28, s in the lower half), by ERC-1271 for a wallet."""
        w3 = self.sender.chain.w3
        account = to_checksum_address(account)
        if len(w3.eth.get_code(account)) == 0:
            if len(signature) != 65 or signature[64] not in (27, 28) or int.from_bytes(signature[32:64]) > _HALF_N:
                return False
            try:
                return bool(
                    Account.recover_message(encode_typed_data(full_message=typed), signature=signature) == account
                )
            except (ValueError, TypeError):  # no key signs so
                return False
        wallet = w3.eth.contract(address=account, abi=_ERC1271_ABI)
        try:
            return bytes(wallet.functions.isValidSignature(typed_digest(typed), signature).call()) == ERC1271_MAGIC
        except (ContractLogicError, TransactionFailed):
            return False


def granted(args: Any) -> Grant:
    """The grant a `ConsentGranted` event's arguments describe."""
    message = {name: args[name] for name, _ in GRANT_FIELDS}
    return Grant.from_message({**message, "meterId": HexBytes(args["meterId"]).to_0x_hex()})


def _grant_arg(grant: Grant) -> tuple[Any, ...]:
    """`grant` as the contract's Grant struct."""
    return (
        grant.meter_id,
        int(grant.audience),
        to_checksum_address(grant.grantee),
        int(grant.purpose),
        int(grant.kinds),
        GRANULARITIES.index(grant.granularity),
        grant.history_days,
        grant.valid_from,
        grant.valid_until,
        grant.nonce,
    )
