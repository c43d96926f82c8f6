"""Transaction receipts read from the node and typed field by field, as web3 types them.

web3 formats a receipt through generic formatters and then rebuilds it as nested AttributeDicts: for a
relay batch's receipt of 100 logs that is a third of the batch's CPU time in the sender's process. The same
types (ints, HexBytes, checksum addresses, AttributeDicts) are built here directly, so everything that
reads a receipt, web3's `process_receipt` included, sees what it would have seen.
"""

from __future__ import annotations

from typing import Any, cast

from eth_utils import is_address, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.datastructures import AttributeDict
from web3.exceptions import TransactionNotFound
from web3.providers import JSONBaseProvider
from web3.types import RPCEndpoint, TxReceipt

from daisee.chain.connect import BadAnswerError

_INTEGERS = frozenset(
    {
        "blockNumber",
        "transactionIndex",
        "cumulativeGasUsed",
        "status",
        "gasUsed",
        "effectiveGasPrice",
        "type",
        "blobGasPrice",
        "blobGasUsed",
    }
)
_LOG_INTEGERS = frozenset({"blockNumber", "transactionIndex", "logIndex"})
_BYTES = frozenset({"blockHash", "transactionHash", "logsBloom", "data"})
_ADDRESSES = frozenset({"contractAddress", "from", "to", "address"})


def fetch_receipt(w3: Web3, tx_hash: bytes) -> TxReceipt | None:
    """The receipt of `tx_hash`, None while it is not mined; a node's error raises as web3 raises it.

    A provider that does not speak JSON-RPC (the embedded chain's, whose answers web3's middleware
    translates) goes through web3."""
    if not isinstance(w3.provider, JSONBaseProvider):
        try:
            return w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
    method = RPCEndpoint("eth_getTransactionReceipt")
    params = [HexBytes(tx_hash).to_0x_hex()]
    raw = w3.manager.formatted_response(w3.provider.make_request(method, params), params)
    return None if raw is None else cast(TxReceipt, _typed(raw, _INTEGERS))


def _typed(fields: dict[str, Any], integers: frozenset[str]) -> AttributeDict[str, Any]:
    """A receipt or log entry of the node's JSON with web3's types; fields daisee does not know stay as sent.

    Raises BadAnswerError, naming the field, for a value that is not of its field's JSON type."""
    typed: dict[str, Any] = {}
    name, value = "the receipt", fields  # what is named if `fields` is not an object
    try:
        for name, value in fields.items():
            if value is None:
                typed[name] = None
            elif name in integers:
                typed[name] = int(value, 16) if isinstance(value, str) else _integer(value)
            elif name in _BYTES:
                typed[name] = HexBytes(_text(value))
            elif name in _ADDRESSES:  # a creation's `to` is empty on some chains
                typed[name] = to_checksum_address(value) if is_address(_text(value)) else value
            elif name == "topics":
                typed[name] = [HexBytes(_text(topic)) for topic in _list(value)]
            elif name == "logs":
                typed[name] = [_typed(_object(log), _LOG_INTEGERS) for log in _list(value)]
            else:
                typed[name] = value
    except (ValueError, TypeError, AttributeError):
        raise BadAnswerError(
            f"answered a receipt daisee refuses ({name} is {_shown(value)}): check that the URL is a JSON-RPC node"
        ) from None
    return AttributeDict(typed)


def _integer(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(value)
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(value)
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(value)
    return value


def _shown(value: Any) -> str:
    """A value as the node sent it, cut short: a hostile node's answer may be long."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
