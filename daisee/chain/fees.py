"""What to offer per gas: EIP-1559 fees where blocks carry a base fee, a legacy gas price elsewhere.

The network's policy may fix a legacy price (permissioned chains often run with a price of 0) and cap
what is ever offered; a cap below the going base fee is refused before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from web3 import Web3
from web3.exceptions import Web3RPCError
from web3.types import BlockData, Wei

from daisee.chain.connect import Chain
from daisee.errors import DaiseeError

BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8  # +12.5 %: nodes want at least +10 % to replace a pending transaction
FALLBACK_TIP = Web3.to_wei(1, "gwei")

Fees = dict[str, Wei]  # {"gasPrice": …} or {"maxFeePerGas": …, "maxPriorityFeePerGas": …}


def _wei(gwei: Decimal) -> Wei:
    return Wei(int(gwei * 10**9))


def _gwei(wei: int) -> str:
    return f"{Decimal(wei) / 10**9:.9f}".rstrip("0").rstrip(".")


def current_fees(chain: Chain, latest: BlockData | None = None) -> Fees:
    """The fees to offer now, following the chain's policy (`latest`: the latest block, if the caller has it)."""
    policy, w3 = chain.policy, chain.w3
    if policy.gas_price_gwei is not None:
        return {"gasPrice": _wei(policy.gas_price_gwei)}
    base_fee = (latest or w3.eth.get_block("latest")).get("baseFeePerGas")
    if policy.fees == "legacy" or (policy.fees == "auto" and base_fee is None):
        return {"gasPrice": _capped(chain, w3.eth.gas_price, "the gas price")}
    if base_fee is None:
        raise DaiseeError(
            f'{chain.label} has no EIP-1559 base fee: set fees = "legacy" (or "auto") in its network profile'
        )
    _capped(chain, base_fee, "the base fee")
    tip = _priority_fee(w3)
    max_fee = _capped_at_most(chain, Wei(2 * base_fee + tip))
    return {"maxFeePerGas": max_fee, "maxPriorityFeePerGas": Wei(min(tip, max_fee - base_fee))}


def bumped_fees(chain: Chain, sent: Fees) -> Fees:
    """Fees to replace a pending transaction: +12.5 % on each, at least today's, within the cap."""
    now = current_fees(chain)
    raised = {key: Wei(max(_ceil_bump(value), now.get(key, 0))) for key, value in sent.items()}
    if "maxFeePerGas" in raised:
        raised["maxFeePerGas"] = _capped_at_most(chain, raised["maxFeePerGas"])
        raised["maxPriorityFeePerGas"] = Wei(min(raised["maxPriorityFeePerGas"], raised["maxFeePerGas"]))
    elif chain.policy.gas_price_gwei is None:
        raised["gasPrice"] = _capped_at_most(chain, raised["gasPrice"])
    return raised


def fees_of(tx: Mapping[str, Any]) -> Fees:
    """The fee fields of a transaction, as built or as a node returns it (with `gasPrice` beside EIP-1559 fees)."""
    keys = ("maxFeePerGas", "maxPriorityFeePerGas") if tx.get("maxFeePerGas") is not None else ("gasPrice",)
    return {key: Wei(int(tx[key])) for key in keys if tx.get(key) is not None}


def price_ceiling(fees: Fees) -> int:
    """The most one unit of gas can cost with these fees."""
    return int(fees.get("maxFeePerGas", fees.get("gasPrice", 0)))


def _ceil_bump(value: int) -> int:
    return -(-value * BUMP_NUMERATOR // BUMP_DENOMINATOR)


def _priority_fee(w3: Web3) -> Wei:
    try:
        return w3.eth.max_priority_fee
    except (Web3RPCError, ValueError):  # a node without eth_maxPriorityFeePerGas nor eth_feeHistory
        return Wei(FALLBACK_TIP)


def _capped(chain: Chain, price: int, what: str) -> Wei:
    """`price` itself; refused when it is above the policy's cap."""
    cap = chain.policy.max_fee_gwei
    if cap is not None and price > _wei(cap):
        raise DaiseeError(
            f"{what} on {chain.label} is {_gwei(price)} gwei, above your cap of {_gwei(_wei(cap))} gwei: "
            "wait for cheaper blocks or raise max_fee_gwei (--max-fee-gwei)"
        )
    return Wei(price)


def _capped_at_most(chain: Chain, price: int) -> Wei:
    cap = chain.policy.max_fee_gwei
    return Wei(price if cap is None else min(price, _wei(cap)))
