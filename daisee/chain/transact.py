"""Send transactions and deploy contracts, with errors a user can act on.

A transaction is sent with an explicit nonce and fees, then awaited: its receipt, then the network's
number of confirmations. Several can be in flight at once, from several senders of one account (nonces
come from one `NonceBook` per account). One the node lost is sent again; one stuck below the going fee
is replaced with a higher fee. One whose nonce another program's transaction took is never taken for
ours: a call that is safe to repeat is then sent again with a fresh nonce, any other is reported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_typing import ChecksumAddress
from eth_utils import ValidationError
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import BlockData, Nonce, TxParams, TxReceipt, Wei

from daisee.chain.artifacts import linked_bytecode, load_artifact
from daisee.chain.connect import BadAnswerError, Chain
from daisee.chain.evm import evm_version
from daisee.chain.fees import Fees, bumped_fees, current_fees, fees_of, price_ceiling
from daisee.chain.node_errors import Refusal, refusal_in, rpc_message
from daisee.chain.nonces import NonceBook, nonce_book
from daisee.chain.receipts import fetch_receipt
from daisee.chain.reverts import replayed_revert, revert_reason
from daisee.errors import DaiseeError

GAS_MARGIN = 1.2
REPLACED_GRACE_SECONDS = 5.0  # how long a used nonce is given to show our receipt before it is said to be another's


@dataclass(frozen=True)
class EncodedCall:
    """A call to `to` whose calldata is encoded once, for large arguments: web3 encodes a ContractFunction's
    again for the estimate and for the transaction, through formatters that cost ~15x eth_abi's encoding.

    With `gas`, a bound the call never exceeds, it is not estimated (a node estimates by bisection, a dozen
    executions) but run once with eth_call, which raises its revert as an estimate would; unless the bound
    does not fit in a block, where the estimate is the node's.
    """

    w3: Web3
    to: ChecksumAddress
    data: HexBytes
    gas: int | None = None

    def estimate_gas(self, params: TxParams, block_gas_limit: int) -> int:
        """The gas `params` need, given the latest block's gas limit."""
        call: TxParams = {**params, "to": self.to, "data": self.data}
        if self.gas is None or self.gas > block_gas_limit:
            return int(self.w3.eth.estimate_gas(call))
        self.w3.eth.call({**call, "gas": self.gas})
        return self.gas

    def build_transaction(self, tx: TxParams) -> TxParams:
        return {**tx, "to": self.to, "data": self.data, "value": Wei(0)}


Call = ContractFunction | ContractConstructor | EncodedCall


@dataclass
class Pending:
    """A transaction sent and not yet confirmed, with every hash sent for its nonce (re-sent or bumped)."""

    call: Call
    what: str
    tx: TxParams
    hashes: list[HexBytes]
    sent_at: float
    repeatable: bool = False  # sent again with a fresh nonce if another transaction takes this one's

    @property
    def nonce(self) -> int:
        return int(self.tx["nonce"])

    @property
    def hash(self) -> str:
        return self.hashes[-1].to_0x_hex()


@dataclass
class Sender:
    """The account that signs and pays: an unlocked development account or a local keystore key."""

    chain: Chain
    address: ChecksumAddress
    account: LocalAccount | None = field(default=None, repr=False)  # the local key, None for a node's account
    _nonces: NonceBook = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._nonces = nonce_book(self.chain, self.address)

    @classmethod
    def dev(cls, chain: Chain, index: int = 0) -> Sender:
        """The chain's `index`-th unlocked account (development chains only)."""
        return cls(chain, chain.w3.to_checksum_address(chain.dev_accounts()[index]))

    @classmethod
    def local(cls, chain: Chain, account: LocalAccount) -> Sender:
        """Sign locally with `account`; the node only sees raw signed transactions."""
        chain.w3.middleware_onion.inject(
            SignAndSendRawMiddlewareBuilder.build(account), name=f"sign-{account.address}", layer=0
        )
        return cls(chain, account.address, account)

    def balance(self) -> int:
        return int(self.chain.w3.eth.get_balance(self.address))

    def transact(self, call: Call, what: str, *, repeatable: bool = False) -> TxReceipt:
        """Send `call` and wait for its confirmed receipt; `what` names it in errors. A `repeatable` call
        (one whose effect does not depend on having been sent before, such as settling) is sent again if
        another program's transaction takes its nonce."""
        return self.wait(self.send(call, what, repeatable=repeatable))

    def transact_all(self, calls: Sequence[tuple[Call, str]], *, repeatable: bool = False) -> list[TxReceipt]:
        """Send independent calls all at once (consecutive nonces), then wait for each."""
        sent: list[Pending] = []
        try:
            for call, what in calls:
                sent.append(self.send(call, what, repeatable=repeatable))
        except DaiseeError:
            for pending in sent:  # what went out still lands: wait for it before reporting the failure
                with contextlib.suppress(DaiseeError):
                    self._confirmed_receipt(pending)
            raise
        return [self.wait(pending) for pending in sent]

    def next_nonce(self) -> int:
        """The nonce the next transaction will use: the node's count of our transactions, or past our own."""
        with self._nonces.reserved():
            return self._peek_nonce()

    def send(self, call: Call, what: str, *, nonce: int | None = None, repeatable: bool = False) -> Pending:
        """Estimate, price and check funds, then broadcast `call` without waiting for it."""
        built, tx_hash = self._dispatch(call, what, nonce)
        return Pending(call, what, built, [tx_hash], time.monotonic(), repeatable)

    def _dispatch(self, call: Call, what: str, nonce: int | None) -> tuple[TxParams, HexBytes]:
        """Build `call` with fresh gas, fees and nonce (or `nonce`) and broadcast it."""
        w3 = self.chain.w3
        params: TxParams = {"from": self.address}
        latest = self._latest_block(what)  # one read for the gas limit and the base fee
        gas = self._gas_limit(call, params, what, int(latest["gasLimit"]))
        fees = self._fees(what, latest)
        cost = gas * price_ceiling(fees)
        balance = self.balance()
        if balance < cost:
            raise DaiseeError(
                f"account {self.address} has {w3.from_wei(balance, 'ether')} on {self.chain.label}, "
                f"{what} needs up to {w3.from_wei(cost, 'ether')}: fund it and try again"
            )
        tx: TxParams = {**params, "gas": gas, "chainId": self.chain.chain_id, **fees}  # type: ignore[typeddict-item]
        with self._nonces.reserved():
            for attempt in range(3):
                tx["nonce"] = Nonce(nonce if nonce is not None else self._peek_nonce())
                built = call.build_transaction(tx)
                try:
                    tx_hash = self._broadcast(built, what)
                    break
                except _NonceTakenError:
                    self._nonces.taken(int(tx["nonce"]))  # by a sender this process does not coordinate with
                    if nonce is not None or attempt == 2:
                        raise DaiseeError(
                            f"{what}: nonce {tx['nonce']} of {self.address} is already used: "
                            "another program sends from this account; stop it and try again"
                        ) from None
            self._nonces.taken(int(built["nonce"]))
        return built, tx_hash

    def wait(self, pending: Pending) -> TxReceipt:
        """The receipt of `pending` once it has the policy's confirmations; re-sends or bumps it meanwhile."""
        receipt = self._confirmed_receipt(pending)
        failure = self._failure(pending, receipt)
        if failure is not None:
            raise DaiseeError(f"{pending.what} rejected by the contract: {failure}")
        return receipt

    def deploy(self, name: str, *args: Any) -> tuple[ChecksumAddress, TxReceipt]:
        """Deploy the shipped artifact `name` with constructor `args`; returns its address and receipt."""
        receipt = self.transact(self.constructor(name, *args), f"deploying {name}")
        address = receipt["contractAddress"]
        if address is None:
            raise DaiseeError(f"deploying {name}: the receipt names no contract address")
        return address, receipt

    def constructor(self, name: str, *args: Any, libraries: dict[str, str] | None = None) -> ContractConstructor:
        """The creation call of the shipped artifact `name`, linked to `libraries` (name -> address)."""
        artifact = load_artifact(name, evm_version(self.chain))
        bytecode = linked_bytecode(artifact, libraries or {})
        factory = self.chain.w3.eth.contract(abi=artifact["abi"], bytecode=bytecode)
        return factory.constructor(*args)

    # ---------------------------------------------------------------- sending

    def _peek_nonce(self) -> int:
        return self._nonces.next(self.chain, self.address)

    def _latest_block(self, what: str) -> BlockData:
        try:
            return self.chain.w3.eth.get_block("latest")
        except Web3RPCError as exc:
            raise DaiseeError(f"{what}: the node did not tell its latest block ({rpc_message(exc)})") from None

    def _fees(self, what: str, latest: BlockData) -> Fees:
        try:
            return current_fees(self.chain, latest)
        except Web3RPCError as exc:
            raise DaiseeError(f"{what}: the node did not tell its fees ({rpc_message(exc)})") from None

    def _broadcast(self, tx: TxParams, what: str) -> HexBytes:
        """Hand `tx` to the node (signed here for a keystore account); errors become one line."""
        try:
            return HexBytes(self.chain.w3.eth.send_transaction(tx))
        except (Web3RPCError, ValidationError) as exc:
            message = rpc_message(exc) if isinstance(exc, Web3RPCError) else str(exc)
            refusal = refusal_in(message)
            if refusal is Refusal.NONCE_TAKEN:
                raise _NonceTakenError(message) from None
            if refusal is Refusal.FEE_TOO_LOW:
                raise DaiseeError(
                    f"{what}: the node refused the fee as too low ({message}): "
                    "raise max_fee_gwei or gas_price_gwei in the network profile, or try again later"
                ) from None
            if refusal is Refusal.NO_FUNDS:
                raise self._unfunded(what) from None
            if refusal is Refusal.GAS_LIMIT:
                raise self._beyond_a_block(tx, what, message) from None
            raise DaiseeError(f"{what} refused by the node: {message}") from None
        except OSError as exc:
            raise DaiseeError(
                f"{what}: lost the RPC node while sending ({type(exc).__name__}): "
                "check the node, then run the same command again"
            ) from None

    # ---------------------------------------------------------------- waiting

    def _confirmed_receipt(self, pending: Pending) -> TxReceipt:
        policy = self.chain.policy
        deadline = pending.sent_at + policy.receipt_timeout
        last_sent = pending.sent_at
        while True:
            try:
                receipt = self._receipt(pending)
                if receipt is not None and self._confirmed(receipt):
                    return receipt
                if receipt is None and time.monotonic() - last_sent >= policy.replace_after:
                    self._resend(pending)
                    last_sent = time.monotonic()
            except _ReplacedError:
                if not pending.repeatable:
                    raise DaiseeError(
                        f"{pending.what}: transaction {pending.hash} was replaced by another transaction of "
                        f"{self.address} with nonce {pending.nonce}: check what that one did before trying again"
                    ) from None
                pending.tx, sent = self._dispatch(pending.call, pending.what, None)  # none of ours was mined
                pending.hashes, pending.sent_at = [sent], time.monotonic()
                receipt, deadline, last_sent = None, pending.sent_at + policy.receipt_timeout, pending.sent_at
            except BadAnswerError as exc:
                raise DaiseeError(
                    f"{pending.what}: waiting for transaction {pending.hash}, the RPC node {exc}"
                ) from None
            except OSError as exc:
                raise DaiseeError(
                    f"{pending.what}: lost the RPC node while waiting for transaction {pending.hash} "
                    f"({type(exc).__name__}): check the node, then run the same command again"
                ) from None
            if time.monotonic() > deadline:
                waiting_for = f"{policy.confirmations} confirmations" if receipt else "receipt"
                raise DaiseeError(
                    f"{pending.what}: no {waiting_for} after {policy.receipt_timeout:.0f} s (transaction "
                    f"{pending.hash}): check that the chain produces blocks, then run the same command again"
                )
            time.sleep(policy.poll_seconds)

    def _receipt(self, pending: Pending) -> TxReceipt | None:
        """The receipt of whichever of our hashes was mined, None while none is; {_ReplacedError} once
        another transaction holds the nonce and none of ours was mined."""
        w3 = self.chain.w3
        receipt = _first_receipt(w3, pending.hashes)
        if receipt is not None or int(w3.eth.get_transaction_count(self.address, "latest")) <= pending.nonce:
            return receipt
        # The nonce is used. A node may count a mined transaction before it serves its receipt (anvil does,
        # under load): ours it is while the node knows one of our hashes as mined, or a while after.
        if any((_node_has(w3, tx_hash) or {}).get("blockNumber") is not None for tx_hash in pending.hashes):
            return None
        deadline = time.monotonic() + REPLACED_GRACE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.1)
            receipt = _first_receipt(w3, pending.hashes)
            if receipt is not None:
                return receipt
        raise _ReplacedError

    def _confirmed(self, receipt: TxReceipt) -> bool:
        """True once the policy's number of blocks sit on top of `receipt`'s, which is still in the chain."""
        confirmations = self.chain.policy.confirmations
        if confirmations == 0:
            return True
        w3 = self.chain.w3
        if int(w3.eth.block_number) < int(receipt["blockNumber"]) + confirmations:
            return False
        again = fetch_receipt(w3, receipt["transactionHash"])  # its block may have been reorganised away meanwhile
        return again is not None and bool(again["blockHash"] == receipt["blockHash"])

    def _resend(self, pending: Pending) -> None:
        """Broadcast `pending` again: as it was if the node lost it, with higher fees if it is stuck."""
        known = _node_has(self.chain.w3, pending.hashes[-1]) is not None
        sent = fees_of(pending.tx)
        fees = bumped_fees(self.chain, sent) if known else _higher(sent, current_fees(self.chain))
        tx: TxParams = {**pending.tx, **fees}  # type: ignore[typeddict-item]
        if known and tx == pending.tx:
            return  # at the cap and still pending: nothing better to offer
        try:
            pending.hashes.append(self._broadcast(tx, pending.what))
            pending.tx = tx
        except _NonceTakenError:
            pass  # mined meanwhile, or already in the pool: the next look finds out

    def _failure(self, pending: Pending, receipt: TxReceipt) -> str | None:
        """Why the transaction of `receipt` failed, None if it succeeded.

        A receipt's `status` says it, since Byzantium. Some nodes leave it out (pre-Byzantium rules, some
        PoA clients); then the effects a failed transaction never has decide: code at a creation's
        address, or a log. A call that logged nothing is replayed on the state before its block, with its
        gas: it failed if the replay fails. Comparing gas used with the gas limit would not do: a revert
        returns the unused gas. The replay misses only a failure caused by an earlier transaction of the
        same block, hence the effects first.
        """
        w3, block = self.chain.w3, int(receipt["blockNumber"])
        status = receipt.get("status")
        if status is None and receipt.get("contractAddress"):
            status = int(len(w3.eth.get_code(receipt["contractAddress"], block)) > 0)
        elif status is None and receipt["logs"]:
            status = 1
        if status == 1:
            return None
        try:
            reason = replayed_revert(w3, pending.tx, block - 1)
        except Web3RPCError as exc:
            reason = rpc_message(exc)  # the call does not run in its gas: out of gas, most often
        if status is None:
            return reason
        return reason or f"reverted in transaction {HexBytes(receipt['transactionHash']).to_0x_hex()}"

    def _gas_limit(self, call: Call, params: TxParams, what: str, block_gas_limit: int) -> int:
        """Estimated gas with a margin; the call's revert reason if it would fail.

        py-evm estimates by bisection, a dozen executions per transaction: on the embedded chain a
        function call is sent with the block's gas limit instead, and a revert is explained by replay.
        """
        try:
            if self.chain.kind == "embedded" and not isinstance(call, ContractConstructor):
                return block_gas_limit
            if isinstance(call, EncodedCall):
                return int(call.estimate_gas(params, block_gas_limit) * GAS_MARGIN)
            return int(call.estimate_gas(params) * GAS_MARGIN)
        except (ContractLogicError, TransactionFailed) as exc:
            raise DaiseeError(f"{what} rejected by the contract: {revert_reason(exc)}") from None
        except Web3RPCError as exc:
            message = rpc_message(exc)
            refusal = refusal_in(message)
            if refusal is Refusal.NO_FUNDS:
                raise self._unfunded(what) from None
            if refusal is Refusal.GAS_LIMIT:
                tx = call.build_transaction({**params, "gas": 0, "gasPrice": Wei(0)})
                raise self._beyond_a_block(tx, what, message) from None
            raise DaiseeError(f"{what} refused by the node: {message}") from None

    def _beyond_a_block(self, tx: TxParams, what: str, message: str) -> DaiseeError:
        """The error for a node's `exceeds block gas limit` or `gas required exceeds allowance`.

        Most often the call itself fails: some nodes then say so in gas words, others estimate it at a
        whole block, which with the margin no block takes. Run as a call with a block's gas, it tells why.
        """
        block_gas = int(self.chain.w3.eth.get_block("latest")["gasLimit"])
        try:
            reason = replayed_revert(self.chain.w3, {**tx, "gas": block_gas}, "latest")
        except Web3RPCError:
            reason = None  # it does not run in a block's gas either
        if reason is not None:
            return DaiseeError(f"{what} rejected by the contract: {reason}")
        return DaiseeError(
            f"{what} needs about as much gas as a block of {self.chain.label} holds ({block_gas:,}; the node said "
            f"{message!r}): send less in one transaction (fewer readings or settlement steps)"
        )

    def _unfunded(self, what: str) -> DaiseeError:
        return DaiseeError(f"account {self.address} cannot pay for {what} on {self.chain.label}: fund it and try again")


class _NonceTakenError(Exception):
    """The node already has a transaction with this nonce (mined or pending)."""


class _ReplacedError(Exception):
    """Another transaction was mined with the nonce of ours, and none of ours was."""


def _first_receipt(w3: Any, hashes: list[HexBytes]) -> TxReceipt | None:
    """The receipt of the latest of `hashes` that was mined, if any."""
    for tx_hash in reversed(hashes):
        receipt = fetch_receipt(w3, tx_hash)
        if receipt is not None:
            return receipt
    return None


def _higher(sent: Fees, now: Fees) -> Fees:
    return {key: max(value, now.get(key, value)) for key, value in sent.items()}


def _node_has(w3: Any, tx_hash: HexBytes) -> Any:
    """The node's record of the transaction (pending or mined), or None if it does not know it."""
    try:
        return w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return None
