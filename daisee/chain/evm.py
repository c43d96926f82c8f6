"""Which EVM level a chain runs, so it gets the shipped bytecode it can execute.

A network profile names its level. Any other chain is asked once per connection: a creation code
that runs PUSH0 (shanghai) is simulated with `eth_call` beside a twin that pushes 0 the London way.
Both succeed: shanghai. Only the twin does: london (geth's Clique, Energy Web's Aura).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from eth_typing import HexStr
from web3.exceptions import Web3Exception

from daisee.chain.connect import Chain
from daisee.chain.networks import find_network
from daisee.errors import DaiseeError

# creation codes returning empty code: PUSH0 PUSH0 RETURN, and PUSH1 0 PUSH1 0 RETURN
PUSH0_CREATION = HexStr("0x5f5ff3")
LONDON_CREATION = HexStr("0x60006000f3")

_levels: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # per connection (a Web3 object)
_levels_lock = threading.Lock()


def evm_version(chain: Chain) -> str:
    """The EVM level of `chain`: its network profile's, else probed (once per connection)."""
    with _levels_lock:
        level = _levels.get(chain.w3)
        if level is None:
            profile = find_network(chain.network) if chain.network else None
            level = _levels[chain.w3] = (profile.evm_version if profile else None) or probe_evm_version(chain)
        return level


def probe_evm_version(chain: Chain) -> str:
    """Ask the node whether it runs PUSH0: `shanghai` if it does, `london` if only the London twin runs."""
    if _runs(chain, PUSH0_CREATION):
        return "shanghai"
    if _runs(chain, LONDON_CREATION):
        return "london"
    raise DaiseeError(
        f"cannot tell which EVM {chain.label} runs (its node simulates no contract creation): "
        'reach it through a network profile that sets evm_version = "london" or "shanghai"'
    )


def _runs(chain: Chain, creation: HexStr) -> bool:
    try:
        chain.w3.eth.call({"data": creation})
    except Web3Exception:  # the node's error answer
        return False
    except OSError as exc:
        raise DaiseeError(
            f"lost the RPC node of {chain.label} while asking which EVM it runs ({type(exc).__name__}): "
            "check the node, then run the same command again"
        ) from None
    return True
