"""A development chain's clock: read it, and move it forward the way each node allows.

Loops count time in intervals from their genesis, and a meter reports only from its admission, so a
simulated day (the demo, the tutorial, the benchmark, the tests) admits its meters first and then moves
the clock through the intervals it replays. Only development chains let anyone move their clock.
"""

from __future__ import annotations

from daisee.chain.connect import Chain
from daisee.errors import DaiseeError


def chain_time(chain: Chain) -> int:
    """The latest block's timestamp."""
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def advance_to(chain: Chain, timestamp: int) -> None:
    """Mine a block at `timestamp` or later, so the next transaction sees that time (development chains only)."""
    if not chain.is_dev:
        raise DaiseeError(f"{chain.label} keeps real time: only a development chain's clock can be moved")
    w3 = chain.w3
    if chain.kind == "embedded":
        tester = w3.provider.ethereum_tester  # type: ignore[attr-defined]
        if timestamp > chain_time(chain):
            tester.time_travel(timestamp)  # mines a block just before `timestamp`
            tester.mine_blocks()  # and one at it, so the latest block tells the time
        return
    latest = chain_time(chain)
    if timestamp > latest:
        w3.provider.make_request("evm_increaseTime", [timestamp - latest])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
