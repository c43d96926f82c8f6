"""The régie under load, on SQLite and on PostgreSQL (a throwaway cluster on loopback).

Indexing: a loop of `index_meters` simulated households played on a fresh anvil for `index_days` days at
15 minutes, then indexed from its real events; reported as events and settled sides a second.

Pages: a store holding a loop of `meters` meters over `days` days at 15 minutes (1,000 meters over a
year is about 35 million member-steps), loaded through the store's own write path one day a transaction,
as the indexer writes a long history (no journal for blocks too deep to be undone); then the p50 and p95
of a member's year page at hourly resolution (its curve, the loop's to compare with, and its twelve
monthly bills) and of the loop's year page at hourly resolution (the publication rule's coarsening ladder
included), each the view's data built and serialised to JSON, as the API answers it, after one page of
each to warm up (a served régie keeps a year's buckets after its first page), in a process whose heap is
settled as `regie serve` settles its own.

Run it with `daisee regie bench --json OUT` (minutes: most of it is loading the store).
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select

from daisee.chain.connect import connect
from daisee.chain.nodes import LocalNode
from daisee.chain.transact import Sender
from daisee.demo import run_demo, simulated_households
from daisee.domain import AllocationKey, MeterKind
from daisee.http_service import settle_heap
from daisee.loop import Loop
from daisee.regie import sums
from daisee.regie.calendar import DEFAULT_ZONE, Granularity, LoopCalendar, zone
from daisee.regie.indexer import Indexer, loop_facts
from daisee.regie.postgres import local_postgres
from daisee.regie.publish import PublicationRule
from daisee.regie.schema import intervals, meta, meter_sums, meters
from daisee.regie.store import open_store
from daisee.regie.views import Context, Member, View, loop_view, member_of, member_view, parse_view

STEP_SECONDS = 900
GENESIS = 1_767_222_000  # 2026-01-01 00:00 in Paris
PRICE_PER_WH = 100
SAMPLES = 30  # page loads timed for each figure
Say = Callable[[str], None]


@dataclass(frozen=True)
class StoreFigures:
    index_events_per_s: float
    index_sides_per_s: float
    load_sides_per_s: float
    member_year_p50_ms: float
    member_year_p95_ms: float
    loop_year_p50_ms: float
    loop_year_p95_ms: float

    def as_json(self) -> dict[str, float]:
        return {name: round(value, 1) for name, value in self.__dict__.items()}


def bench_regie(
    meters_count: int, days: int, index_meters: int, index_days: int, say: Say
) -> dict[str, dict[str, float]]:
    """The figures of each store, keyed `sqlite` and `postgresql`."""
    say(f"playing {index_meters} households over {index_days} days on anvil")
    with LocalNode("anvil") as node:
        sender = Sender.dev(connect(node.url))
        intervals = index_days * 86_400 // STEP_SECONDS
        run = run_demo(sender, simulated_households(index_meters, 7), AllocationKey.PRORATA, intervals, seed=7)
        loop = Loop(sender, run.deployment.address)
        found: dict[str, dict[str, float]] = {}
        with tempfile.TemporaryDirectory(prefix="daisee-regie-bench-") as folder, local_postgres() as cluster:
            urls = {"sqlite": lambda name: f"sqlite:///{Path(folder) / name}.sqlite", "postgresql": None}
            for kind in ("sqlite", "postgresql"):
                url_of = urls[kind] or (lambda name: cluster.new_database())
                say(f"{kind}: indexing the played loop")
                events, sides, seconds = _index(open_store(url_of("indexed")), loop, run.deployment.block)
                say(f"{kind}: loading {meters_count} meters over {days} days")
                engine = open_store(url_of("loaded"))
                loaded = _load(engine, meters_count, days, say)
                _vacuum(engine)
                say(f"{kind}: timing the year pages")
                member, whole = _time_pages(engine)
                engine.dispose()
                found[kind] = StoreFigures(
                    events / seconds,
                    sides / seconds,
                    loaded,
                    _percentile(member, 50),
                    _percentile(member, 95),
                    _percentile(whole, 50),
                    _percentile(whole, 95),
                ).as_json()
    return found


def _index(engine: Engine, loop: Loop, from_block: int) -> tuple[int, int, float]:
    indexer = Indexer(engine, loop, from_block, zone(DEFAULT_ZONE))
    started = time.perf_counter()
    events = indexer.catch_up()
    seconds = time.perf_counter() - started
    with engine.connect() as db:
        sides = int(
            db.execute(select(func.count()).where(meter_sums.c.level == sums.level(Granularity.STEP))).scalar() or 0
        )
    engine.dispose()
    return events, sides, seconds


def _load(engine: Engine, count: int, days: int, say: Say) -> float:
    """Write `count` meters' settled sides over `days` days, a day a transaction; sides written a second."""
    calendar = LoopCalendar(GENESIS, STEP_SECONDS, zone(DEFAULT_ZONE))
    kinds = [(MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER)[i % 3] for i in range(count)]
    with engine.begin() as db:
        db.execute(meta.insert(), [{"key": k, "value": v} for k, v in _facts(calendar).items()])
        db.execute(
            meters.insert(),
            [
                {
                    "idx": i,
                    "meter_id": i.to_bytes(32, "big"),
                    "kind": kind.value,
                    "payout": _payout(i),
                    "active_from": 0,
                    "block": 0,
                }
                for i, kind in enumerate(kinds)
            ],
        )
    steps_a_day = 86_400 // STEP_SECONDS
    written, writing = 0, 0.0
    for day in range(days):
        first = day * steps_a_day
        settled = list(_sides(kinds, range(first, first + steps_a_day), random.Random(day)))
        started = time.perf_counter()
        with engine.begin() as db:
            db.execute(
                intervals.insert(),
                [
                    {"interval": t, "price_per_wh": PRICE_PER_WH, "block": day + 1}
                    for t in range(first, first + steps_a_day)
                ],
            )
            sums.record(db, {day + 1: settled}, calendar, journal=False)  # history: no reorganisation undoes it
        writing += time.perf_counter() - started
        written += len(settled)
        if day % 30 == 29:
            say(f"  {day + 1} days, {written:,} sides, {written / writing:,.0f} a second")
    return written / writing


def _vacuum(engine: Engine) -> None:
    """On PostgreSQL, what autovacuum leaves of a store that has been indexing for a while: its statistics,
    and pages marked all-visible, which the member's curve reads from the sums' key alone."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql("VACUUM (ANALYZE) meter_sums")


def _sides(kinds: list[MeterKind], intervals: range, rng: random.Random) -> Iterator[sums.Side]:
    """A plausible day: households consume all day, produce around noon, share what is produced."""
    for interval in intervals:
        hour = (interval % 96) / 4
        sun = max(0.0, 1 - abs(hour - 13) / 6)
        for idx, kind in enumerate(kinds):
            if kind is not MeterKind.PRODUCER:
                consumed = rng.randrange(50, 400)
                yield sums.Side(idx, interval, False, consumed, int(consumed * sun * 0.6))
            if kind is not MeterKind.CONSUMER and sun:
                produced = int(rng.randrange(200, 900) * sun)
                yield sums.Side(idx, interval, True, produced, produced // 2)


def _facts(calendar: LoopCalendar) -> dict[str, str]:
    return {
        "chain_id": "31337",
        "loop": "0x" + "00" * 19 + "01",
        "zone": calendar.tz.key,
        "genesis": str(calendar.genesis),
        "interval_seconds": str(calendar.step_seconds),
        "grace_seconds": "600",
        "notice_seconds": "604800",
        "price_cap_per_wh": "1000",
        "treasury": "0x" + "00" * 19 + "02",
        "settlement_token": "0x" + "00" * 19 + "03",
        "next_block": "0",
    }


def _payout(index: int) -> str:
    return "0x" + index.to_bytes(20, "big").hex()


def _time_pages(engine: Engine) -> tuple[list[float], list[float]]:
    """Milliseconds to build and serialise a member's and the loop's year page, SAMPLES times each."""
    with engine.connect() as db:
        facts = loop_facts(db)  # as _load wrote them
        assert facts is not None
        context = Context(facts, PublicationRule(), 250)
        day = datetime.fromtimestamp(GENESIS, UTC).astimezone(context.calendar.tz).date()
        view = parse_view({"period": "year", "date": day.isoformat(), "granularity": "hour"}, context.calendar, day)
        rng = random.Random(1)
        count = int(db.execute(select(func.count()).select_from(meters)).scalar() or 0)
        member_times, loop_times = [], []
        settle_heap()  # as `regie serve` does once started
        warm = member_of(db, _payout(0))
        assert warm is not None
        _member_page(db, context, warm, view)  # a served régie has the year's buckets at hand after its first page
        json.dumps(loop_view(db, context, view, member=False))
        for _ in range(SAMPLES):
            member = member_of(db, _payout(rng.randrange(count)))
            assert member is not None
            member_times.append(_timed(partial(_member_page, db, context, member, view)))
            loop_times.append(_timed(lambda: json.dumps(loop_view(db, context, view, member=False))))
    return member_times, loop_times


def _member_page(db: Connection, context: Context, member: Member, view: View) -> str:
    return json.dumps(member_view(db, context, member, view))


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def _percentile(samples: list[float], percent: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[percent - 1]
