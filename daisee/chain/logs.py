"""Read a contract's event logs over any range of blocks, even from providers that cap `eth_getLogs`.

Public RPC providers refuse a range above some thousands of blocks (each its own limit and wording),
so a range the node refuses is split in halves until it answers; the answers are joined in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes
from web3.contract.contract import ContractEvent
from web3.exceptions import Web3RPCError
from web3.types import EventData


def event_logs(
    event: type[ContractEvent] | ContractEvent,
    from_block: int,
    to_block: int,
    argument_filters: Mapping[str, Any] | None = None,
) -> list[EventData]:
    """Logs of `event` from `from_block` to `to_block` inclusive, asked in ranges the node accepts."""
    logs: list[EventData] = []
    start, span = from_block, to_block - from_block + 1
    while start <= to_block:
        end = min(start + span - 1, to_block)
        try:
            logs.extend(event.get_logs(from_block=start, to_block=end, argument_filters=dict(argument_filters or {})))
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
