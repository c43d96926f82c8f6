"""Move a development chain's clock forward, the way each node allows."""

from __future__ import annotations

from daisee.chain.connect import Chain


def travel_to(chain: Chain, timestamp: int) -> None:
    """Mine a block at `timestamp` (or later), so the next transaction sees that time."""
    w3 = chain.w3
    if chain.kind == "embedded":
        w3.provider.ethereum_tester.time_travel(timestamp)  # type: ignore[attr-defined]
        return
    latest = int(w3.eth.get_block("latest")["timestamp"])
    if timestamp > latest:
        w3.provider.make_request("evm_increaseTime", [timestamp - latest])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def now(chain: Chain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])
