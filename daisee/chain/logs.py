"""Read a contract's event logs over any range of blocks, even from providers that cap `eth_getLogs`.

Public RPC providers refuse a range above some thousands of blocks (each its own limit and wording),
so a range the node refuses is split in halves until it answers; the answers are joined in order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractEvent
from web3.exceptions import Web3RPCError
from web3.types import EventData, FilterParams, LogReceipt

_Log = TypeVar("_Log", EventData, LogReceipt)


def event_logs(
    event: type[ContractEvent] | ContractEvent,
    from_block: int,
    to_block: int,
    argument_filters: Mapping[str, Any] | None = None,
) -> list[EventData]:
    """Logs of `event` from `from_block` to `to_block` inclusive, asked in ranges the node accepts."""
    filters = dict(argument_filters or {})
    return _in_ranges(
        lambda start, end: event.get_logs(from_block=start, to_block=end, argument_filters=filters),
        from_block,
        to_block,
    )


def raw_logs(
    w3: Web3, addresses: Sequence[str], topics: Sequence[HexBytes], from_block: int, to_block: int
) -> list[LogReceipt]:
    """The undecoded logs of the contracts at `addresses` whose first topic is one of `topics`, from
    `from_block` to `to_block` inclusive, in chain order, asked in ranges the node accepts."""
    query: FilterParams = {
        "address": [Web3.to_checksum_address(a) for a in addresses],
        "topics": [[t.to_0x_hex() for t in topics]],
    }
    return _in_ranges(
        lambda start, end: w3.eth.get_logs({**query, "fromBlock": start, "toBlock": end}), from_block, to_block
    )


def _in_ranges(fetch: Callable[[int, int], Sequence[_Log]], from_block: int, to_block: int) -> list[_Log]:
    """`fetch` over `from_block`..`to_block`, a range the node refuses split in halves until it answers."""
    logs: list[_Log] = []
    start, span = from_block, to_block - from_block + 1
    while start <= to_block:
        end = min(start + span - 1, to_block)
        try:
            logs.extend(fetch(start, end))
        except Web3RPCError:
            if span == 1:
                raise  # not a range limit: the node refuses even one block
            span = (span + 1) // 2
            continue
        start = end + 1
    return logs


def event_topic(event: type[ContractEvent] | ContractEvent) -> HexBytes:
    """The first topic of `event`'s logs, the hash of its signature: to pick its logs out of many undecoded."""
    return HexBytes(event_abi_to_log_topic(event.abi))
