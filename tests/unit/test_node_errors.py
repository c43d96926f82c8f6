"""Each client's words for the refusals daisee acts on, as the nodes write them."""

from __future__ import annotations

import pytest

from daisee.chain.node_errors import Refusal, refusal_in

SAID = [
    # the nonce is held: mined, in the pool, or by a pending transaction with a higher fee
    ("already known", Refusal.NONCE_TAKEN),
    ("known transaction: 0x3d4e5f", Refusal.NONCE_TAKEN),
    ("AlreadyKnown", Refusal.NONCE_TAKEN),
    ("Known transaction", Refusal.NONCE_TAKEN),
    ("Transaction with the same hash was already imported.", Refusal.NONCE_TAKEN),
    ("transaction already imported", Refusal.NONCE_TAKEN),
    ("ALREADY_EXISTS", Refusal.NONCE_TAKEN),
    ("INTERNAL_ERROR: existing tx with same hash", Refusal.NONCE_TAKEN),
    ("nonce too low: address 0xabc, tx: 2 state: 3", Refusal.NONCE_TAKEN),
    ("OldNonce, Current nonce: 3, nonce of rejected tx: 2", Refusal.NONCE_TAKEN),
    ("Nonce too low", Refusal.NONCE_TAKEN),
    ("Transaction nonce is too low. Try incrementing the nonce.", Refusal.NONCE_TAKEN),
    ("NONCE_TOO_LOW", Refusal.NONCE_TAKEN),
    ("replacement transaction underpriced", Refusal.NONCE_TAKEN),
    ("Replacement transaction underpriced", Refusal.NONCE_TAKEN),
    ("ReplacementNotAllowed", Refusal.NONCE_TAKEN),
    (
        "Transaction gas price is too low. There is another transaction with same nonce in the queue. "
        "Try increasing the gas price or incrementing the nonce.",
        Refusal.NONCE_TAKEN,
    ),
    # the fee
    ("transaction underpriced: tip needed 1, tip permitted 0", Refusal.FEE_TOO_LOW),
    ("max fee per gas less than block base fee", Refusal.FEE_TOO_LOW),
    ("Gas price below current base fee", Refusal.FEE_TOO_LOW),
    ("FeeTooLow, MaxFeePerGas too low", Refusal.FEE_TOO_LOW),
    ("FeeTooLowToCompete", Refusal.FEE_TOO_LOW),
    ("FEE_TOO_LOW", Refusal.FEE_TOO_LOW),
    ("Transaction gas price is too low. It does not satisfy your node's minimal gas price", Refusal.FEE_TOO_LOW),
    ("Gas price below configured minimum gas price", Refusal.FEE_TOO_LOW),
    # funds
    ("insufficient funds for gas * price + value", Refusal.NO_FUNDS),
    ("InsufficientFunds, Account balance: 0", Refusal.NO_FUNDS),
    ("Upfront cost exceeds account balance", Refusal.NO_FUNDS),
    # gas
    ("exceeds block gas limit", Refusal.GAS_LIMIT),
    ("Transaction gas limit exceeds block gas limit", Refusal.GAS_LIMIT),
    ("intrinsic gas too high -- tx.gas_limit > env.block.gas_limit", Refusal.GAS_LIMIT),
    ("gas required exceeds allowance (30000000)", Refusal.GAS_LIMIT),
    ("GasLimitExceeded", Refusal.GAS_LIMIT),
    ("Transaction cost exceeds current gas limit. Limit: 8000000, got: 9600000.", Refusal.GAS_LIMIT),
    ("Requires higher than upper limit of 8000000", Refusal.GAS_LIMIT),
    # none daisee acts on
    ("unknown transaction type", None),
    ("execution reverted", None),
    ("rate limit exceeded: 10 requests per second", None),
    ("nonce too high", None),
]


@pytest.mark.parametrize(("message", "refusal"), SAID, ids=[message[:40] for message, _ in SAID])
def test_each_clients_wording_names_its_refusal(message: str, refusal: Refusal | None) -> None:
    assert refusal_in(message) is refusal
