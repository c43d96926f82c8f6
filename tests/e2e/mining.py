"""An anvil that mines only when told to, so a test can act between sending and mining."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from web3 import Web3

from daisee.chain.connect import Chain
from daisee.chain.nodes import LocalNode


@contextmanager
def manual_node(project_root: Path) -> Iterator[LocalNode]:
    """An anvil without automine: blocks come from `mine` or `mining`."""
    with LocalNode("anvil", project_root=project_root) as node:
        Web3(Web3.HTTPProvider(node.url)).provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
        yield node


def mine(chain: Chain, blocks: int = 1) -> None:
    for _ in range(blocks):
        chain.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


@contextmanager
def mining(chain: Chain) -> Iterator[None]:
    """Mine a block every 0.3 s in the background while inside the block."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.3):
            mine(chain)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
