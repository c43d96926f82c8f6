"""What a node means when it refuses a transaction or its gas estimate, whichever client wrote the words.

Each client words the same refusal its own way (geth `nonce too low`, Nethermind `OldNonce`, OpenEthereum
`Transaction nonce is too low`, erigon's gRPC `NONCE_TOO_LOW`). Messages are compared as lower-case words
(`OldNonce` and `OLD_NONCE` both read `old nonce`), so one entry matches every casing and spelling of a
phrase, and whole words only (`known transaction` is not found in `unknown transaction type`). The
first entry found wins: the more specific phrases come first.
"""

from __future__ import annotations

import re
from enum import Enum

from web3.exceptions import Web3RPCError


class Refusal(Enum):
    """The kinds of refusal `Sender` acts on."""

    NONCE_TAKEN = "another transaction of the account holds the nonce: mined, or in the node's pool"
    FEE_TOO_LOW = "the fee offered is below what the node or the block asks"
    NO_FUNDS = "the account cannot pay for the gas and value"
    GAS_LIMIT = "the gas asked or found is more than a block holds"


_WORDINGS: tuple[tuple[str, Refusal], ...] = (
    # the node already holds this very transaction
    ("already known", Refusal.NONCE_TAKEN),  # geth, erigon, Nethermind `AlreadyKnown`
    ("known transaction", Refusal.NONCE_TAKEN),  # old geth, Besu `Known transaction`
    ("already imported", Refusal.NONCE_TAKEN),  # OpenEthereum `Transaction with the same hash was already imported`
    ("already exists", Refusal.NONCE_TAKEN),  # erigon's txpool `ALREADY_EXISTS`
    ("existing tx with same hash", Refusal.NONCE_TAKEN),  # erigon
    # the nonce was mined
    ("nonce too low", Refusal.NONCE_TAKEN),  # geth, anvil, Besu `Nonce too low`, erigon `NONCE_TOO_LOW`
    ("nonce is too low", Refusal.NONCE_TAKEN),  # OpenEthereum `Transaction nonce is too low`
    ("old nonce", Refusal.NONCE_TAKEN),  # Nethermind `OldNonce`
    ("invalid transaction nonce", Refusal.NONCE_TAKEN),  # ganache
    # another pending transaction holds the nonce with a fee ours does not beat
    ("replacement transaction underpriced", Refusal.NONCE_TAKEN),  # geth, Besu, erigon
    ("replacement not allowed", Refusal.NONCE_TAKEN),  # Nethermind `ReplacementNotAllowed`
    ("another transaction with same nonce", Refusal.NONCE_TAKEN),  # OpenEthereum `...gas price is too low. There is
    # another transaction with same nonce in the queue`
    # the fee
    ("underpriced", Refusal.FEE_TOO_LOW),  # geth `transaction underpriced`
    ("less than block base fee", Refusal.FEE_TOO_LOW),  # geth, anvil
    ("below current base fee", Refusal.FEE_TOO_LOW),  # Besu
    ("fee cap less than", Refusal.FEE_TOO_LOW),
    ("fee too low", Refusal.FEE_TOO_LOW),  # Nethermind `FeeTooLow`, `FeeTooLowToCompete`; erigon `FEE_TOO_LOW`
    ("gas price is too low", Refusal.FEE_TOO_LOW),  # OpenEthereum
    ("gas price supplied is too low", Refusal.FEE_TOO_LOW),  # OpenEthereum
    ("gas price below", Refusal.FEE_TOO_LOW),  # Besu `Gas price below configured minimum gas price`
    # funds
    ("insufficient funds", Refusal.NO_FUNDS),  # geth, anvil, erigon, Nethermind `InsufficientFunds`
    ("upfront cost exceeds", Refusal.NO_FUNDS),  # Besu
    # gas
    ("block gas limit", Refusal.GAS_LIMIT),  # geth, Besu `exceeds block gas limit`; anvil `> env.block.gas_limit`
    ("gas required exceeds allowance", Refusal.GAS_LIMIT),  # geth's estimate when the call fails at every limit
    ("gas limit exceeded", Refusal.GAS_LIMIT),  # Nethermind `GasLimitExceeded`
    ("gas limit reached", Refusal.GAS_LIMIT),  # Nethermind
    ("exceeds current gas limit", Refusal.GAS_LIMIT),  # OpenEthereum
    ("requires higher than upper limit", Refusal.GAS_LIMIT),  # OpenEthereum's estimate
)


def _words(text: str) -> str:
    """` old nonce `: CamelCase split, lower case, every run of other characters one space, padded."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text).lower()
    return f" {' '.join(re.findall(r'[a-z0-9]+', spaced))} "


_PHRASES = tuple((_words(words), refusal) for words, refusal in _WORDINGS)


def refusal_in(message: str) -> Refusal | None:
    """The refusal `message` words, None if it is none daisee knows."""
    words = _words(message)
    return next((refusal for phrase, refusal in _PHRASES if phrase in words), None)


def rpc_message(exc: Web3RPCError) -> str:
    """The node's own words in a JSON-RPC error."""
    rpc = exc.rpc_response or {}
    error = rpc.get("error") if isinstance(rpc, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return str(error["message"])
    return str(exc.message or exc)
