"""Compress a long run of empty intervals (a century of them) into one step, on a development chain.

A reading that covers a century must name an interval a century after the meter's previous one, and
intervals finalize and settle one by one: a century of 1-day intervals is 36,525 of each. Nobody
reporting, each of them only moves the loop's two cursors on by one. `skip_empty_intervals` writes
those cursors directly, as if every skipped interval had been finalized and settled empty; it checks
the storage word it rewrites against the loop's own views first.
"""

from __future__ import annotations

from eth_utils import to_canonical_address

from daisee.chain.connect import Chain
from daisee.loop import Loop

# EnergyLoop's storage: `_s` (LoopStorage.Layout) starts at slot 7 and its `progress` is member 17:
# nextToFinalize (bits 0-31), nextToSettle (32-63), activeMeters (64-95), sharesCurrent, sharesNext.
PROGRESS_SLOT = 7 + 17
_CURSORS = (1 << 64) - 1


def storage_at(chain: Chain, address: str, slot: int) -> int:
    return int.from_bytes(chain.w3.eth.get_storage_at(chain.w3.to_checksum_address(address), slot), "big")


def set_storage(chain: Chain, address: str, slot: int, value: int) -> None:
    """Write one storage word of a contract on a development chain."""
    word = "0x" + value.to_bytes(32, "big").hex()
    provider = chain.w3.provider
    if chain.kind == "anvil":
        provider.make_request("anvil_setStorageAt", [address, hex(slot), word])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    elif chain.kind == "ganache":
        provider.make_request("evm_setAccountStorageAt", [address, hex(slot), word])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    elif chain.kind == "embedded":
        backend = provider.ethereum_tester.backend  # type: ignore[attr-defined]
        state = backend.chain.get_vm().state
        state.set_storage(to_canonical_address(address), slot, value)
        state.persist()
        backend.chain.header = backend.chain.header.copy(state_root=state.state_root)
        backend.mine_blocks()
    else:
        raise AssertionError(f"cannot write the storage of {chain.label}")
    assert storage_at(chain, address, slot) == value


def skip_empty_intervals(loop: Loop, to_interval: int) -> None:
    """Finalize and settle, as empty, every interval from the next to finalize up to `to_interval` - 1.

    Only for a loop that is settled up to date, where nobody reports in the skipped intervals and no
    meter joins during them (their admission would be counted at their first interval's finalization).
    """
    f = loop.contract.functions
    chain = loop.sender.chain
    next_to_finalize, next_to_settle = f.nextIntervalToFinalize().call(), f.nextIntervalToSettle().call()
    assert next_to_finalize == next_to_settle <= to_interval < f.currentInterval().call()
    assert f.settlementCursor().call() == (0, 0, 0, 0, 0, 0, 0)
    word = storage_at(chain, loop.address, PROGRESS_SLOT)
    assert (word & 0xFFFFFFFF, (word >> 32) & 0xFFFFFFFF, (word >> 64) & 0xFFFFFFFF) == (
        next_to_finalize,
        next_to_settle,
        f.activeMeterCount().call(),
    ), "EnergyLoop's storage layout moved: update PROGRESS_SLOT"
    set_storage(chain, loop.address, PROGRESS_SLOT, (word & ~_CURSORS) | to_interval | to_interval << 32)
    assert (f.nextIntervalToFinalize().call(), f.nextIntervalToSettle().call()) == (to_interval, to_interval)
