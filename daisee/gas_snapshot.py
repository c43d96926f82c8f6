"""Gas of each contract function in one fixed scenario, kept in `gas-snapshot.json` so that any change in
cost shows in review (as Uniswap v4 keeps its forge snapshots).

The scenario runs on a fresh embedded chain (py-evm), with fixed keys, ids, genesis and amounts, so the
figures are exact and the same on every machine. `python -m daisee.gas_snapshot` prints them beside the
committed ones; `--write` replaces the file; a test fails when they differ.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from eth_keys.datatypes import PrivateKey
from eth_utils import keccak
from web3.types import TxReceipt

from daisee.bench import ENERGY, KINDS
from daisee.chain.clock import advance_to
from daisee.chain.connect import connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.loop import Loop, MeterSpec
from daisee.readings import Reading, SignedReading

SNAPSHOT = Path(__file__).resolve().parent.parent / "gas-snapshot.json"
GENESIS = 2_000_000_000  # a fixed calendar: constructor arguments and signatures are the same every run
INTERVAL = 900
BATCH = 10  # readings per batch in the scenario


def measure() -> dict[str, int]:
    """Gas used by each measured call of the scenario, keyed `function` or `function/case`."""
    chain = connect("embedded")
    pmo, member = Sender.dev(chain, 0), Sender.dev(chain, 1)
    figures: dict[str, int] = {}

    def record(name: str, receipt: TxReceipt) -> None:
        figures[name] = int(receipt["gasUsed"])

    params = LoopParameters(INTERVAL, AllocationKey.PRORATA, 100, GENESIS, price_cap_per_wh=1_000, notice_seconds=0)
    loop = Loop(pmo, deploy_loop(pmo, params).address)
    keys = [PrivateKey(keccak(text=f"daisee-gas/{i}")) for i in range(BATCH)]
    ids = [keccak(text=f"daisee-gas/meter/{i}") for i in range(BATCH)]
    kinds = [KINDS[i % len(KINDS)] for i in range(BATCH)]
    payouts = [str(k.public_key.to_checksum_address()) for k in keys]
    specs = [MeterSpec(i, p, p, kind) for i, p, kind in zip(ids, payouts, kinds, strict=True)]
    record("addMeters/1", loop.add_meters(specs[:1])[0])
    record(f"addMeters/{BATCH - 1}", loop.add_meters(specs[1:])[0])
    euro = loop.settlement_token()
    assert euro is not None
    pmo.transact(euro.functions.mint(pmo.address, 10**9), "minting")
    pmo.transact(euro.functions.approve(loop.address, 10**9), "approving")
    consumers = [p for p, kind in zip(payouts, kinds, strict=True) if kind is not MeterKind.PRODUCER]
    record("depositFor", pmo.transact(loop.contract.functions.depositFor(consumers[0], 10**6), "prepaying"))
    for consumer in consumers[1:]:  # every consumer prepaid: settlement takes its normal path
        pmo.transact(loop.contract.functions.depositFor(consumer, 10**6), "prepaying")
    record("deposit", pmo.transact(loop.contract.functions.deposit(10**6), "depositing"))
    record("withdraw", pmo.transact(loop.contract.functions.withdraw(10**5), "withdrawing"))

    def readings(t: int, meters: range) -> list[SignedReading]:
        def at(i: int) -> Reading:
            imports, exports = ENERGY[kinds[i]]
            return Reading(ids[i], t, imports * (t + 1), exports * (t + 1))

        return [at(i).sign(keys[i], loop.domain) for i in meters]

    for t in range(3):  # interval 0 takes fresh slots; 1 and 2 are the steady state
        advance_to(chain, GENESIS + (t + 1) * INTERVAL)
        label = "first" if t == 0 else "steady"
        if t < 2:
            submitted = loop.submit(readings(t, range(BATCH)))
            record(f"submitReadings/{label}/{BATCH}", submitted.receipt)
        else:
            record("submitReadings/steady/1", loop.submit(readings(t, range(1))).receipt)
            record(f"submitReadings/steady/{BATCH - 1}", loop.submit(readings(t, range(1, BATCH))).receipt)
        record(f"finalize/{label}", loop.finalize(t))
        record(f"settle/{label}/{BATCH}-meters", loop.settle().receipts[0])

    late = 4  # a meter back from an outage: its reading covers intervals 3 and 4
    advance_to(chain, GENESIS + (late + 1) * INTERVAL + 600)
    loop.finalize(3)
    loop.settle()
    record("submitReadings/late/1", loop.submit(readings(late, range(1, 2))).receipt)
    record("submitReadings/rejected/1", loop.submit(readings(late, range(1, 2))).receipt)

    newcomer = PrivateKey(keccak(text="daisee-gas/newcomer")).public_key.to_checksum_address()
    record("rotateSigner", loop.rotate_signer(ids[0], newcomer))
    record("repairMeter", loop.repair_meter(ids[1], newcomer, 10**6, 0))
    record("scheduleTerms", loop.schedule_terms(AllocationKey.STATIC, 200, late + 2))
    record("setCoefficients/1", loop.set_coefficients({ids[1]: (5_000, 1)}))
    record("pauseReadings", loop.pause_readings())
    record("unpauseReadings", loop.unpause_readings())
    record("removeMeter", loop.remove_meter(ids[2]))
    record("transferOwnership", loop.transfer_pmo(member.address))
    record("acceptOwnership", loop.as_sender(member).accept_pmo())
    return dict(sorted(figures.items()))


def compare(measured: dict[str, int], committed: dict[str, int]) -> list[str]:
    """One line per function whose gas changed, appeared or disappeared."""
    lines = []
    for name in sorted(set(measured) | set(committed)):
        before, after = committed.get(name), measured.get(name)
        if before != after:
            change = "" if before is None or after is None else f" ({after - before:+,})"
            lines.append(
                f"{name}: {before if before is not None else '-'} -> {after if after is not None else '-'}{change}"
            )
    return lines


def main(argv: list[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(prog="python -m daisee.gas_snapshot", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"replace {SNAPSHOT.name} with the figures measured")
    args = parser.parse_args(argv)
    measured = measure()
    if args.write:
        SNAPSHOT.write_text(json.dumps(measured, indent=2) + "\n")
        out(f"wrote {len(measured)} figures to {SNAPSHOT}")
        return 0
    committed = json.loads(SNAPSHOT.read_text()) if SNAPSHOT.exists() else {}
    for name, gas in measured.items():
        out(f"{name:40} {gas:>10,}")
    changes = compare(measured, committed)
    for line in changes:
        out(f"changed: {line}")
    return 1 if changes else 0


if __name__ == "__main__":
    sys.exit(main())
