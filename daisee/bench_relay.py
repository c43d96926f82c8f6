"""The relay under load: N simulated meters reporting every minute through one relay to a local anvil.

The meters are admitted before interval 0, and the relay has read them (as one in service has) before it
ends; each round moves the chain's clock to an interval's end, and every meter posts its signed reading for
that interval over HTTP, as gateways do when an interval ends (16 keep-alive connections at a time, from
other processes, each process from its own loopback address as households' gateways come from theirs); the
relay verifies, queues and batches the readings; then the PMO closes and settles the interval so that the
next one can be reported. Then the same rounds again with hostile clients mixed in, from other loopback
addresses: clients that trickle their requests, depth bombs, oversize and garbage bodies, and replays of the
readings of the round before.

Reported: how fast the relay took the readings in (`intake_per_s`) and how fast they reached the chain
(`onchain_per_s`), the latency of a post (`post_p50_ms`, `post_p99_ms`), honest readings that did not land
(`lost`) or landed twice (`duplicated`), and the same under attack (`hostile`); also the CPU time the
relay's process spent a reading while taking the round in (`relay_cpu_us_per_reading`: its batcher runs in
a process of its own, not counted), steadier than the rates on a machine whose speed varies from run to
run. Loopback only: the relay listens on 127.0.0.1 and the chain must be a local node. Run it with
`python -m daisee.bench_relay --meters 1000 --json OUT`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_keys.datatypes import PrivateKey
from eth_typing import HexStr
from eth_utils import keccak

from daisee.chain.clock import advance_to, chain_time
from daisee.chain.connect import Chain, connect
from daisee.chain.deploy import LoopParameters, deploy_loop
from daisee.chain.logs import event_logs
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.domain import AllocationKey, MeterKind
from daisee.errors import DaiseeError
from daisee.loop import Loop, MeterSpec
from daisee.loopback import is_loopback_url
from daisee.readings import Reading, SignedReading
from daisee.relay import Relay, RelaySettings
from daisee.relay.queue import Status

INTERVAL_SECONDS = 60
CLIENT_PROCESSES = 4  # gateways are simulated in other processes, so that they do not slow the relay down
CLIENT_THREADS = 4  # keep-alive connections per client process
HOSTILE_THREADS = 2  # per kind of attack
SLOW_CLIENTS = 20  # connections that trickle their requests
SAMPLE_SECONDS = 0.05  # how often the backlog is looked at
DRAIN_SECONDS = 600.0  # a round that takes longer is a failure
MAX_METERS = 5_000
MAX_ROUNDS = 10
HONEST_ADDRESS = "127.0.1.{}"  # one per client process
HOSTILE_ADDRESS = "127.0.2.{}"  # one per kind of attack


@dataclass(frozen=True)
class RoundFigures:
    """One interval's readings through the relay."""

    interval: int
    readings: int
    post_seconds: float  # first post sent → last post answered
    chain_seconds: float  # first post sent → last reading accepted on chain
    latencies_ms: list[float] = field(repr=False)  # of each post
    max_backlog: int  # readings queued or in flight, at worst
    relay_cpu_seconds: float  # of the relay's process (this one), first post sent → last post answered
    gas_used: int  # the relay's batches
    lost: int  # readings not accepted on chain
    duplicated: int  # readings accepted more than once
    attacks: dict[str, int] | None = None  # hostile requests sent during the round, by kind

    @property
    def intake_rate(self) -> float:
        return self.readings / self.post_seconds

    @property
    def relay_cpu_us_per_reading(self) -> float:
        return self.relay_cpu_seconds / self.readings * 1e6

    @property
    def throughput(self) -> float:
        return self.readings / self.chain_seconds


@dataclass(frozen=True)
class RelayFigures:
    meters: int
    rounds: list[RoundFigures]
    hostile_rounds: list[RoundFigures]

    @property
    def needed_rate(self) -> float:
        """Readings per second that N meters at a one-minute interval produce."""
        return self.meters / INTERVAL_SECONDS

    def as_json(self) -> dict[str, object]:
        return {
            "meters": self.meters,
            "interval_seconds": INTERVAL_SECONDS,
            "needed_readings_per_second": self.needed_rate,
            **_summary(self.rounds),
            "hostile": _summary(self.hostile_rounds),
        }


def _summary(rounds: Sequence[RoundFigures]) -> dict[str, Any]:
    """The rounds' median rates, the latency percentiles of all their posts, and what was lost or duplicated."""
    if not rounds:
        return {}
    latencies = sorted(ms for r in rounds for ms in r.latencies_ms)
    summary: dict[str, Any] = {
        "intake_per_s": statistics.median(r.intake_rate for r in rounds),
        "onchain_per_s": statistics.median(r.throughput for r in rounds),
        "post_p50_ms": _percentile(latencies, 50),
        "post_p99_ms": _percentile(latencies, 99),
        "lost": sum(r.lost for r in rounds),
        "duplicated": sum(r.duplicated for r in rounds),
        "relay_cpu_us_per_reading": statistics.median(r.relay_cpu_us_per_reading for r in rounds),
        "gas_per_reading": sum(r.gas_used for r in rounds) / sum(r.readings for r in rounds),
        "max_backlog": max(r.max_backlog for r in rounds),
    }
    attacks = Counter[str]()
    for r in rounds:
        attacks.update(r.attacks or {})
    if attacks:
        summary["attacks"] = dict(sorted(attacks.items()))
    return summary


def _percentile(ordered: Sequence[float], percent: int) -> float:
    return ordered[min(len(ordered) - 1, len(ordered) * percent // 100)]


def bench_relay(
    chain: Chain, meters: int, rounds: int, progress: Callable[[str], None] | None = None, *, hostile: bool = True
) -> RelayFigures:
    """Run `rounds` intervals of `meters` meters through a relay on loopback, then (if `hostile`) as many
    under attack; dev accounts 0 (PMO) and 1 (relay)."""
    say = progress or (lambda _: None)
    if not is_loopback_url(chain.url):
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
    quiet: list[RoundFigures] = []
    attacked: list[RoundFigures] = []
    spawn = multiprocessing.get_context("spawn")  # the relay's threads are not forked into the clients
    with (
        tempfile.TemporaryDirectory() as folder,
        ProcessPoolExecutor(CLIENT_PROCESSES, mp_context=spawn) as clients,
    ):
        list(clients.map(_post_all, [""] * CLIENT_PROCESSES, range(CLIENT_PROCESSES), [[]] * CLIENT_PROCESSES))
        settings = RelaySettings(port=0, batch_seconds=1.0)
        with Relay(Loop(Sender.dev(chain, 1), loop.address), Path(folder) / "relay.sqlite", settings) as relay:
            say("waiting for the relay to read the registered meters")
            _wait_warm(relay)
            previous: list[bytes] = []
            for t in range(2 * rounds if hostile else rounds):
                under_attack = t >= rounds
                advance_to(chain, genesis + (t + 1) * INTERVAL_SECONDS)  # interval t is over
                readings = [
                    Reading(mid, t, 100 * (t + 1), 50 * (t + 1)).sign(key, loop.domain)
                    for mid, key in zip(ids, keys, strict=True)
                ]
                say(f"interval {t}: {meters} readings through the relay" + (" under attack" if under_attack else ""))
                bodies = [json.dumps(signed.to_json()).encode() for signed in readings]
                with _attackers(relay.url, previous, spawn) if under_attack else _no_attack() as attacks:
                    figures = _round(relay, clients, t, readings, bodies)
                (attacked if under_attack else quiet).append(replace(figures, attacks=attacks or None))
                previous = bodies
                say(f"interval {t}: settling")
                loop.finalize(t)
                loop.settle()
    return RelayFigures(meters, quiet, attacked)


def _round(
    relay: Relay,
    clients: Executor,
    interval: int,
    readings: list[SignedReading],
    bodies: list[bytes],
) -> RoundFigures:
    backlog = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            backlog[0] = max(backlog[0], relay.queue.backlog())

    shares = [bodies[i::CLIENT_PROCESSES] for i in range(CLIENT_PROCESSES)]
    sampler = threading.Thread(target=sample, name="bench-sampler")
    first_block = int(relay.loop.sender.chain.w3.eth.block_number) + 1
    sampler.start()
    start, cpu_at_start = time.perf_counter(), _cpu_seconds()
    try:
        answers = [
            answer
            for process_answers in clients.map(_post_all, [relay.url] * len(shares), range(len(shares)), shares)
            for answer in process_answers
        ]
        posted, relay_cpu = time.perf_counter() - start, _cpu_seconds() - cpu_at_start
        refused = [code for code, _ in answers if code != 202]
        if refused:
            raise DaiseeError(f"the relay refused {len(refused)} readings of interval {interval}: {Counter(refused)}")
        _wait_drained(relay)
        settled = time.perf_counter() - start
    finally:
        done.set()
        sampler.join()
    fates = [relay.fate(s.reading.meter_id, s.reading.interval) for s in readings]
    lost = sum(f is None or f.status is not Status.ACCEPTED for f in fates)
    w3 = relay.loop.sender.chain.w3
    logs = event_logs(relay.loop.contract.events.ReadingAccepted, first_block, int(w3.eth.block_number))
    landed = Counter(bytes(log["args"]["meterId"]) for log in logs if log["args"]["interval"] == interval)
    duplicated = sum(n - 1 for n in landed.values() if n > 1)
    batches = {HexStr(f.tx) for f in fates if f is not None and f.tx}
    gas = sum(int(w3.eth.get_transaction_receipt(tx)["gasUsed"]) for tx in batches)
    latencies = [ms for _, ms in answers]
    return RoundFigures(
        interval, len(readings), posted, settled, latencies, backlog[0], relay_cpu, gas, lost, duplicated
    )


def _cpu_seconds() -> float:
    """CPU time of this process, all its threads (the relay's), user and system."""
    times = os.times()
    return times.user + times.system


def _post_all(url: str, process: int, bodies: list[bytes]) -> list[tuple[int, float]]:
    """In a client process: post each body over CLIENT_THREADS keep-alive connections; statuses and latencies."""
    if not bodies:
        return []
    shares = [bodies[i::CLIENT_THREADS] for i in range(CLIENT_THREADS)]
    source = HONEST_ADDRESS.format(process + 1)
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return [
            answer for answers in pool.map(lambda share: _post_over(url, source, share), shares) for answer in answers
        ]


def _post_over(url: str, source: str, bodies: list[bytes]) -> list[tuple[int, float]]:
    """Post each body on one keep-alive connection, as a lean HTTP/1.1 client: http.client costs a post a
    third of a millisecond, taken on this machine from the relay under test (this costs 50 µs)."""
    parts = urlsplit(url)
    head = f"POST /readings HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\nContent-Length: "
    head_bytes = head.encode()  # once, not a post
    answers = []
    address = (parts.hostname or "", parts.port or 80)
    with socket.create_connection(address, timeout=DRAIN_SECONDS, source_address=(source, 0)) as connection:
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answer = connection.makefile("rb")
        for body in bodies:
            sent = time.perf_counter()
            connection.sendall(b"%s%d\r\n\r\n%s" % (head_bytes, len(body), body))
            answers.append((_read_answer(answer), (time.perf_counter() - sent) * 1000))
    return answers


def _read_answer(answer: Any) -> int:
    """The status of the HTTP/1.1 answer next on `answer` (a binary file), read to its end."""
    status_line = answer.readline()
    if not status_line.startswith(b"HTTP/1.1 "):
        raise DaiseeError(f"the relay answered {status_line[:40]!r}, not HTTP/1.1")
    length = 0
    while (line := answer.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    answer.read(length)
    return int(status_line[9:12])


def _wait_warm(relay: Relay) -> None:
    """Once the relay has read every registered meter, as a relay in service has before an interval ends."""
    _wait(lambda: relay.status()["watch"]["warm"], "read the loop's meters")


def _wait_drained(relay: Relay) -> None:
    """Once the relay has nothing queued or in flight."""
    _wait(lambda: not relay.queue.backlog(), "drain its queue")


def _wait(done: Callable[[], bool], what: str) -> None:
    """Until `done()`, DRAIN_SECONDS at most (then an error: the relay did not `what`)."""
    deadline = time.monotonic() + DRAIN_SECONDS
    while not done():
        if time.monotonic() > deadline:
            raise DaiseeError(f"the relay did not {what} within {DRAIN_SECONDS:g} s")
        time.sleep(SAMPLE_SECONDS)


# ---------------------------------------------------------------- the attackers


@contextmanager
def _no_attack() -> Iterator[dict[str, int]]:
    yield {}


@contextmanager
def _attackers(url: str, replays: list[bytes], context: Any) -> Iterator[dict[str, int]]:
    """Hostile clients in another process while the block runs; the requests each kind sent, once it ends."""
    ready, stop = context.Event(), context.Event()
    counts = context.Queue()
    process = context.Process(target=_attack, args=(url, replays, ready, stop, counts), name="bench-attackers")
    process.start()
    attacks: dict[str, int] = {}
    try:
        if not ready.wait(DRAIN_SECONDS):
            raise DaiseeError("the attackers' process did not start")
        yield attacks
    finally:
        stop.set()
        process.join(DRAIN_SECONDS)
        if process.exitcode != 0:
            raise DaiseeError(f"the attackers' process failed (exit code {process.exitcode})")
        attacks.update(counts.get(timeout=SAMPLE_SECONDS * 100))


ATTACKS = ("slow", "depth_bomb", "oversize", "garbage", "replay")


def _attack(url: str, replays: list[bytes], ready: Any, stop: Any, counts: Any) -> None:
    """In the attackers' process: every kind of attack, each from its own address, until `stop` is set."""
    parts = urlsplit(url)
    target = (parts.hostname or "", parts.port or 80)
    sent: Counter[str] = Counter()
    lock = threading.Lock()
    bodies = {
        "depth_bomb": [b"[" * 100_000 + b"]" * 100_000],
        "oversize": [b" " * (2 << 20)],
        "garbage": [os.urandom(512) for _ in range(16)],
        "replay": replays or [b"{}"],
    }

    def count(kind: str) -> None:
        with lock:
            sent[kind] += 1

    def flood(kind: str, source: str) -> None:
        connection: http.client.HTTPConnection | None = None
        n = 0
        while not stop.is_set():
            body = bodies[kind][n % len(bodies[kind])]
            n += 1
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(*target, timeout=10, source_address=(source, 0))
                connection.request("POST", "/readings", body, {"Content-Type": "application/json"})
                connection.getresponse().read()
            except (OSError, http.client.HTTPException):
                if connection is not None:
                    connection.close()
                connection = None
            count(kind)

    def trickle(source: str) -> None:
        head = b"POST /readings HTTP/1.1\r\nHost: relay\r\nContent-Length: 100\r\n\r\n"
        while not stop.is_set():
            try:
                with socket.create_connection(target, timeout=10, source_address=(source, 0)) as sock:
                    count("slow")
                    for byte in head:
                        if stop.wait(0.5):
                            return
                        sock.sendall(bytes([byte]))
            except OSError:
                continue  # dropped by the relay's deadline: come back

    threads = [
        threading.Thread(target=trickle, args=(HOSTILE_ADDRESS.format(1),), daemon=True) for _ in range(SLOW_CLIENTS)
    ]
    for number, kind in enumerate(ATTACKS[1:], start=2):
        threads += [
            threading.Thread(target=flood, args=(kind, HOSTILE_ADDRESS.format(number)), daemon=True)
            for _ in range(HOSTILE_THREADS)
        ]
    for thread in threads:
        thread.start()
    ready.set()
    stop.wait()
    for thread in threads:
        thread.join(15)
    counts.put(dict(sent))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m daisee.bench_relay", description=__doc__.split("\n")[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds without, then as many with, hostile clients")
    parser.add_argument("--chain", help="a local anvil URL; by default a fresh anvil is started on loopback")
    parser.add_argument("--no-hostile", action="store_true", help="skip the rounds under attack")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.chain:
        figures = bench_relay(connect(args.chain), args.meters, args.rounds, print, hostile=not args.no_hostile)
    else:
        with LocalNode("anvil") as node:
            figures = bench_relay(connect(node.url), args.meters, args.rounds, print, hostile=not args.no_hostile)
    for r in [*figures.rounds, *figures.hostile_rounds]:
        print(
            f"interval {r.interval}{' (under attack)' if r.attacks else ''}: {r.readings} readings, intake "
            f"{r.intake_rate:,.0f}/s ({r.relay_cpu_us_per_reading:,.0f} µs of relay CPU a reading), "
            f"on chain {r.throughput:,.0f}/s, max backlog {r.max_backlog}, "
            f"{r.gas_used / r.readings:,.0f} gas/reading, lost {r.lost}, duplicated {r.duplicated}"
        )
    print(json.dumps(figures.as_json(), indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures.as_json(), indent=2) + "\n")


if __name__ == "__main__":
    main()
