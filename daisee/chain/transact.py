"""Send transactions and deploy contracts, with errors a user can act on."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted, Web3RPCError
from web3.middleware import SignAndSendRawMiddlewareBuilder
from web3.types import TxParams, TxReceipt

from daisee.chain.artifacts import load_artifact
from daisee.chain.connect import Chain
from daisee.chain.reverts import describe_revert
from daisee.errors import DaiseeError

GAS_MARGIN = 1.2
RECEIPT_TIMEOUT = 180


@dataclass
class Sender:
    """The account that signs and pays: an unlocked development account or a local keystore key."""

    chain: Chain
    address: ChecksumAddress

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
        return cls(chain, account.address)

    def balance(self) -> int:
        return int(self.chain.w3.eth.get_balance(self.address))

    def transact(self, call: ContractFunction | ContractConstructor, what: str) -> TxReceipt:
        """Estimate, check funds, send `call` and wait for its receipt; `what` names it in errors."""
        w3 = self.chain.w3
        params: TxParams = {"from": self.address}
        gas = self._gas_limit(call, params, what)
        cost = gas * int(w3.eth.gas_price)
        if self.balance() < cost:
            raise DaiseeError(
                f"account {self.address} has {w3.from_wei(self.balance(), 'ether')} on {self.chain.label}, "
                f"{what} needs about {w3.from_wei(cost, 'ether')}: fund it and try again"
            )
        try:
            tx_hash = call.transact({**params, "gas": gas})
            receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=RECEIPT_TIMEOUT)
        except TimeExhausted:
            raise DaiseeError(f"{what}: no receipt after {RECEIPT_TIMEOUT} s; check the node and try again") from None
        except Web3RPCError as exc:
            raise DaiseeError(f"{what} refused by the node: {_rpc_message(exc)}") from None
        if receipt["status"] != 1:
            raise DaiseeError(f"{what} rejected by the contract: {self._replayed_reason(call, params, receipt)}")
        return receipt

    def _replayed_reason(
        self, call: ContractFunction | ContractConstructor, params: TxParams, receipt: TxReceipt
    ) -> str:
        """Why a mined transaction reverted: replayed as a call on the state it ran on."""
        tx = HexBytes(receipt["transactionHash"]).to_0x_hex()
        if not isinstance(call, ContractFunction):
            return f"reverted in transaction {tx}"
        try:
            call.call(params, block_identifier=int(receipt["blockNumber"]) - 1)
        except (ContractLogicError, TransactionFailed) as exc:
            return _revert_reason(exc)
        return f"reverted in transaction {tx}"

    def _gas_limit(self, call: ContractFunction | ContractConstructor, params: TxParams, what: str) -> int:
        """Estimated gas with a margin; the call's revert reason if it would fail.

        py-evm estimates by bisection, a dozen executions per transaction: on the embedded chain a
        function call is sent with the block's gas limit instead, and a revert is explained by replay.
        """
        try:
            if self.chain.kind == "embedded" and isinstance(call, ContractFunction):
                return int(self.chain.w3.eth.get_block("latest")["gasLimit"])
            return int(call.estimate_gas(params) * GAS_MARGIN)
        except (ContractLogicError, TransactionFailed) as exc:
            raise DaiseeError(f"{what} rejected by the contract: {_revert_reason(exc)}") from None
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            if "insufficient funds" in message.lower():
                raise DaiseeError(
                    f"account {self.address} cannot pay for {what} on {self.chain.label}: fund it and try again"
                ) from None
            raise DaiseeError(f"{what} refused by the node: {message}") from None

    def deploy(self, name: str, *args: Any) -> tuple[ChecksumAddress, TxReceipt]:
        """Deploy the shipped artifact `name` with constructor `args`; returns its address and receipt."""
        artifact = load_artifact(name)
        factory = self.chain.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = self.transact(factory.constructor(*args), f"deploying {name}")
        address = receipt["contractAddress"]
        if address is None:
            raise DaiseeError(f"deploying {name}: the receipt names no contract address")
        return address, receipt


def _revert_reason(exc: ContractLogicError | TransactionFailed) -> str:
    """The contract's reason, whichever way the node reported it.

    Anvil gives the revert data (a custom error) or the reason string; Ganache puts the data under
    `result`; the embedded chain says `execution reverted: b'<raw data>'`.
    """
    if isinstance(exc, TransactionFailed):
        reason = (str(exc.args[0]) if exc.args else "").removeprefix("execution reverted: ")
        if reason.startswith(("b'", 'b"')):
            return describe_revert(ast.literal_eval(reason))
        return reason or "no reason given"
    data = exc.data.get("result") if isinstance(exc.data, dict) else exc.data
    if isinstance(exc, ContractCustomError) or (isinstance(data, str) and len(data) >= 10):
        return describe_revert(data)
    return str(exc.message or "no reason given").removeprefix("execution reverted: ")


def _rpc_message(exc: Web3RPCError) -> str:
    rpc = exc.rpc_response or {}
    error = rpc.get("error") if isinstance(rpc, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message or exc)
