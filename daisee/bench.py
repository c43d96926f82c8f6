"""The gas benchmark: signed readings and settlement per member as the loop grows, against a naive baseline.

Figures are gas (deterministic for a given bytecode) and ratios; wall times are reported beside them
for the baseline comparison only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from eth_keys.datatypes import PrivateKey
from eth_utils import keccak

from daisee.chain.artifacts import load_artifact
from daisee.chain.clock import advance_to, chain_time
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.transact import Sender
from daisee.demo import prepay
from daisee.domain import AllocationKey, MeterKind
from daisee.loop import Loop, MeterSpec
from daisee.readings import Reading

INTERVAL_SECONDS = 900
MEASURED_INTERVALS = 4  # interval 0 and 1 take each meter's fresh pending slots; 2 and 3 are steady state
_STEADY = (2, 3)
KINDS = (MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)
# Wh per interval for each kind: (import, export); a prosumer both imports and exports.
ENERGY = {MeterKind.PRODUCER: (0, 800), MeterKind.CONSUMER: (500, 0), MeterKind.PROSUMER: (150, 300)}
_START_INDEX = 12_345_678  # meters join with the indices they already show


@dataclass(frozen=True)
class LoopFigures:
    """Mean gas per signed reading and per member settled, for one loop size."""

    members: int
    reading_gas: float  # steady state
    settle_gas: float  # steady state, tokens included
    first_reading_gas: float  # interval 0: fresh storage
    first_settle_gas: float
    registration_gas: float  # per meter
    submit_seconds: float  # signing and submitting one steady interval's readings


@dataclass(frozen=True)
class BaselineFigures:
    """One unsigned transaction per reading, fresh storage each time, as the DAISEE prototypes did,
    beside one steady interval of the same number of signed, batched readings."""

    readings: int
    gas_per_reading: float
    total_gas: int
    wall_seconds: float
    daisee_total_gas: int
    daisee_wall_seconds: float

    @property
    def gas_ratio(self) -> float:
        return self.total_gas / self.daisee_total_gas

    @property
    def wall_ratio(self) -> float:
        return self.wall_seconds / self.daisee_wall_seconds


def bench_loop(sender: Sender, members: int, progress: Callable[[str], None] | None = None) -> LoopFigures:
    """Run MEASURED_INTERVALS intervals of a `members`-meter prorata loop and measure its gas."""
    chain = sender.chain
    now = chain_time(chain)
    genesis = now - now % INTERVAL_SECONDS + INTERVAL_SECONDS  # the meters are admitted before interval 0
    params = LoopParameters(INTERVAL_SECONDS, AllocationKey.PRORATA, 100, genesis, notice_seconds=0)
    loop = Loop(sender, deploy_loop(sender, params).address)
    keys = [PrivateKey(keccak(text=f"daisee-bench/{i}")) for i in range(members)]
    kinds = [KINDS[i % len(KINDS)] for i in range(members)]
    ids = [keccak(text=f"daisee-bench/meter/{i}") for i in range(members)]
    specs = [
        MeterSpec(mid, addr, addr, kind, import_wh=_START_INDEX, export_wh=_START_INDEX)
        for mid, addr, kind in zip(ids, (k.public_key.to_checksum_address() for k in keys), kinds, strict=True)
    ]
    registration = sum(int(r["gasUsed"]) for r in loop.add_meters(specs))
    # consumers pay from a prepaid balance, as on a live loop: the settlement measured is the normal path
    prepay(loop, [s.payout for s in specs if s.kind is not MeterKind.PRODUCER])
    reading_gas, settle_gas, seconds = [], [], []
    for t in range(MEASURED_INTERVALS):
        advance_to(chain, genesis + (t + 1) * INTERVAL_SECONDS)
        if progress:
            progress(f"{members} members: interval {t}")
        started = time.perf_counter()
        readings = [
            Reading(mid, t, _START_INDEX + imp * (t + 1), _START_INDEX + exp * (t + 1)).sign(key, loop.domain)
            for mid, key, (imp, exp) in zip(ids, keys, (ENERGY[k] for k in kinds), strict=True)
        ]
        reading_gas.append(sum(int(s.receipt["gasUsed"]) for s in loop.submit_all(readings)) / members)
        seconds.append(time.perf_counter() - started)
        loop.finalize(t)
        settle_gas.append(loop.settle().gas_used / members)
    return LoopFigures(
        members=members,
        reading_gas=sum(reading_gas[t] for t in _STEADY) / len(_STEADY),
        settle_gas=sum(settle_gas[t] for t in _STEADY) / len(_STEADY),
        first_reading_gas=reading_gas[0],
        first_settle_gas=settle_gas[0],
        registration_gas=registration / members,
        submit_seconds=sum(seconds[t] for t in _STEADY) / len(_STEADY),
    )


def bench_baseline(sender: Sender, daisee: LoopFigures) -> BaselineFigures:
    """Push `daisee.members` readings naively, one transaction each, and compare with the loop's figures."""
    naive = sender.chain.w3.eth.contract(
        address=sender.deploy("NaiveReadings")[0], abi=load_artifact("NaiveReadings")["abi"]
    )
    started = time.perf_counter()
    gas = 0
    for i in range(daisee.members):
        call = naive.functions.declare(keccak(text=f"naive/{i}"), 0, _START_INDEX + 500, _START_INDEX + 800)
        gas += int(sender.transact(call, "declaring a reading")["gasUsed"])
    return BaselineFigures(
        readings=daisee.members,
        gas_per_reading=gas / daisee.members,
        total_gas=gas,
        wall_seconds=time.perf_counter() - started,
        daisee_total_gas=round(daisee.reading_gas * daisee.members),
        daisee_wall_seconds=daisee.submit_seconds,
    )


def marginal(small: LoopFigures, large: LoopFigures) -> dict[str, float]:
    """Gas per added member between two loop sizes: the per-member cost without per-transaction overheads."""
    extra = large.members - small.members
    return {
        "reading_gas": (large.reading_gas * large.members - small.reading_gas * small.members) / extra,
        "settle_gas": (large.settle_gas * large.members - small.settle_gas * small.members) / extra,
    }


def figures_as_json(loops: list[LoopFigures], baseline: BaselineFigures) -> dict[str, object]:
    """The benchmark's JSON: `{"members": {"10": {...}, ...}, "marginal": {...}, "baseline": {...}}`."""
    return {
        "members": {
            str(f.members): {k: round(v, 3) if k == "submit_seconds" else round(v) for k, v in asdict(f).items()}
            for f in loops
        },
        "marginal": {k: round(v) for k, v in marginal(loops[-2], loops[-1]).items()} if len(loops) > 1 else {},
        "baseline": {
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(baseline).items()},
            "gas_ratio": round(baseline.gas_ratio, 2),
            "wall_ratio": round(baseline.wall_ratio, 2),
        },
    }
