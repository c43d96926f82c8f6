"""The relay under load: N simulated meters reporting every minute through one relay to a local anvil.

The meters are admitted before interval 0; each round moves the chain's clock to an interval's end, and every
meter posts its signed reading for that interval over HTTP, as gateways do when an interval ends (16
connections at a time, from other processes); the relay verifies, queues and batches the readings;
then the PMO closes and settles the interval so that the next one can be reported. Reported per round: how
fast the relay took the readings in, how fast they reached the chain, and the largest backlog; the relay
keeps up when its throughput is above N readings a minute. Loopback only: the relay listens on 127.0.0.1
and the chain must be a local node. Run it with `python -m daisee.bench_relay --meters 1000`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eth_keys.datatypes import PrivateKey
from eth_typing import HexStr
from eth_utils import keccak

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec
from daisee.readings import Reading, SignedReading
from daisee.relay import Relay, RelaySettings
from daisee.relay.queue import Fate, Status

INTERVAL_SECONDS = 60
CLIENT_PROCESSES = 4  # gateways are simulated in other processes, so that they do not slow the relay down
CLIENT_THREADS = 4  # connections per client process
SAMPLE_SECONDS = 0.05  # how often the backlog is looked at
DRAIN_SECONDS = 600.0  # a round that takes longer is a failure
MAX_METERS = 5_000
MAX_ROUNDS = 10
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class RoundFigures:
    """One interval's readings through the relay."""

    interval: int
    readings: int
    post_seconds: float  # first post sent → last post answered (202)
    chain_seconds: float  # first post sent → last reading accepted on chain
    max_backlog: int  # readings queued or in flight, at worst
    gas_used: int  # the relay's batches

    @property
    def intake_rate(self) -> float:
        return self.readings / self.post_seconds

    @property
    def throughput(self) -> float:
        return self.readings / self.chain_seconds


@dataclass(frozen=True)
class RelayFigures:
    meters: int
    rounds: list[RoundFigures]

    @property
    def needed_rate(self) -> float:
        """Readings per second that N meters at a one-minute interval produce."""
        return self.meters / INTERVAL_SECONDS

    @property
    def headroom(self) -> float:
        """The slowest round's throughput over the needed rate: above 1, the relay keeps up."""
        return min(r.throughput for r in self.rounds) / self.needed_rate

    def as_json(self) -> dict[str, object]:
        return {
            "meters": self.meters,
            "interval_seconds": INTERVAL_SECONDS,
            "needed_readings_per_second": self.needed_rate,
            "headroom": self.headroom,
            "rounds": [
                {
                    "interval": r.interval,
                    "readings": r.readings,
                    "intake_readings_per_second": r.intake_rate,
                    "chain_readings_per_second": r.throughput,
                    "max_backlog": r.max_backlog,
                    "gas_per_reading": r.gas_used / r.readings,
                }
                for r in self.rounds
            ],
        }


def bench_relay(chain: Chain, meters: int, rounds: int, progress: Callable[[str], None] | None = None) -> RelayFigures:
    """Run `rounds` intervals of `meters` meters through a relay on loopback; dev accounts 0 (PMO) and 1 (relay)."""
    say = progress or (lambda _: None)
    if urlsplit(chain.url or "").hostname not in _LOOPBACK_HOSTS:
        raise DaiseeError(f"the relay benchmark runs on a local node only, not {chain.label}")
    if not (1 <= meters <= MAX_METERS and 1 <= rounds <= MAX_ROUNDS):
        raise DaiseeError(f"give 1 to {MAX_METERS:,} meters and 1 to {MAX_ROUNDS} rounds")
    pmo = Sender.dev(chain, 0)
    now = chain_time(chain)
    genesis = now - now % INTERVAL_SECONDS + INTERVAL_SECONDS  # the meters are admitted before interval 0
    params = LoopParameters(INTERVAL_SECONDS, AllocationKey.PRORATA, 100, genesis, token=None, notice_seconds=0)
    loop = Loop(pmo, deploy_loop(pmo, params).address)
    keys = [PrivateKey(keccak(text=f"daisee-bench-relay/{i}")) for i in range(meters)]
    ids = [keccak(text=f"daisee-bench-relay/meter/{i}") for i in range(meters)]
    say(f"admitting {meters} meters")
    loop.add_meters(
        [
            MeterSpec(mid, k.public_key.to_checksum_address(), k.public_key.to_checksum_address(), MeterKind.PROSUMER)
            for mid, k in zip(ids, keys, strict=True)
        ]
    )
    figures = []
    spawn = multiprocessing.get_context("spawn")  # the relay's threads are not forked into the clients
    with (
        tempfile.TemporaryDirectory() as folder,
        ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=spawn) as clients,
    ):
        list(clients.map(_post_all, [""] * CLIENT_PROCESSES, [[]] * CLIENT_PROCESSES))  # start them
        settings = RelaySettings(port=0, batch_seconds=2.0)
        with Relay(Loop(Sender.dev(chain, 1), loop.address), Path(folder) / "relay.sqlite", settings) as relay:
            for t in range(rounds):
                advance_to(chain, genesis + (t + 1) * INTERVAL_SECONDS)  # interval t is over
                readings = [
                    Reading(mid, t, 100 * (t + 1), 50 * (t + 1)).sign(key, loop.domain)
                    for mid, key in zip(ids, keys, strict=True)
                ]
                say(f"interval {t}: {meters} readings through the relay")
                figures.append(_round(relay, clients, t, readings))
                say(f"interval {t}: settling")
                loop.finalize(t)
                loop.settle()
    return RelayFigures(meters, figures)


def _round(relay: Relay, clients: Executor, interval: int, readings: list[SignedReading]) -> RoundFigures:
    backlog = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            backlog[0] = max(backlog[0], relay.queue.backlog())

    bodies = [json.dumps(signed.to_json()).encode() for signed in readings]
    shares = [bodies[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    sampler = threading.Thread(target=sample, name="bench-sampler")
    sampler.start()
    start = time.perf_counter()
    try:
        answers = [code for codes in clients.map(_post_all, [relay.url] * len(shares), shares) for code in codes]
        posted = time.perf_counter() - start
        if any(code != 202 for code in answers):
            raise DaiseeError(f"the relay refused {sum(c != 202 for c in answers)} readings of interval {interval}")
        fates = _wait_settled(relay, readings)
        settled = time.perf_counter() - start
    finally:
        done.set()
        sampler.join()
    if len(fates) != len(readings) or any(f.status is not Status.ACCEPTED for f in fates):
        raise DaiseeError(f"the loop did not accept every reading of interval {interval}")
    w3 = relay.loop.sender.chain.w3
    batches = {HexStr(f.tx) for f in fates if f.tx}
    gas = sum(int(w3.eth.get_transaction_receipt(tx)["gasUsed"]) for tx in batches)
    return RoundFigures(interval, len(readings), posted, settled, backlog[0], gas)


def _post_all(url: str, bodies: list[bytes]) -> list[int]:
    """In a client process: post each body, CLIENT_THREADS at a time; the HTTP statuses."""
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return list(pool.map(lambda body: _post(url, body), bodies))


def _post(base: str, body: bytes) -> int:
    request = urllib.request.Request(base + "/readings", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=DRAIN_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def _wait_settled(relay: Relay, readings: list[SignedReading]) -> list[Fate]:
    """Each reading's fate once the relay has nothing queued or in flight (DRAIN_SECONDS at most)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while relay.queue.backlog():
        if time.monotonic() > deadline:
            raise DaiseeError(f"the relay did not drain its queue within {DRAIN_SECONDS:g} s")
        time.sleep(SAMPLE_SECONDS)
    fates = [relay.fate(s.reading.meter_id, s.reading.interval) for s in readings]
    return [f for f in fates if f is not None]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m daisee.bench_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--chain", help="a local anvil URL; by default a fresh anvil is started on loopback")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.chain:
        figures = bench_relay(connect(args.chain), args.meters, args.rounds, print)
    else:
        with LocalNode("anvil") as node:
            figures = bench_relay(connect(node.url), args.meters, args.rounds, print)
    for r in figures.rounds:
        print(
            f"interval {r.interval}: {r.readings} readings, intake {r.intake_rate:,.0f}/s, "
            f"on chain {r.throughput:,.1f}/s, max backlog {r.max_backlog}, {r.gas_used / r.readings:,.0f} gas/reading"
        )
    print(
        f"{figures.meters} meters at one reading a minute need {figures.needed_rate:,.1f} readings/s: "
        f"headroom x{figures.headroom:,.1f}"
    )
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2) + "\n")


if __name__ == "__main__":
    main()
