from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from daisee.regie.calendar import LoopCalendar, zone
from daisee.regie.postgres import local_postgres
from daisee.regie.schema import QUANTITIES, loop_sums, metadata, meter_sums, sides
from daisee.regie.store import open_store
from daisee.regie.sums import SUMMED, Side, forget_before, record, undo_from

# 2026-10-24 22:00 UTC, midnight in Paris, the day summer time ends: 25 hours, 100 quarter-hours
CALENDAR = LoopCalendar(genesis=1_792_879_200, step_seconds=900, tz=zone("Europe/Paris"))

MeterSums = dict[tuple[int, int, int], tuple[int, ...]]
LoopSums = dict[tuple[int, int], tuple[int, ...]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('sums') / 'regie.sqlite'}")
        yield engine
        engine.dispose()
        return
    with local_postgres() as cluster:
        engine = open_store(cluster.url)
        yield engine
        engine.dispose()


def _empty(engine: Engine) -> None:
    with engine.begin() as db:
        for table in reversed(metadata.sorted_tables):
            db.execute(table.delete())


def _expected(kept: list[Side]) -> tuple[MeterSums, LoopSums]:
    """The sums, computed the slow way: every side added to every bucket it starts in."""
    meters: dict[tuple[int, int, int], Counter[str]] = {}
    for side in kept:
        for level, granularity in enumerate(SUMMED):
            start = int(CALENDAR.bucket(side.interval, granularity).start.timestamp())
            amounts = dict(zip(QUANTITIES, side.quantities, strict=True))
            meters.setdefault((side.meter_idx, level, start), Counter()).update(amounts)
    loop: dict[tuple[int, int], list[int]] = {}
    for (_, level, start), amounts in meters.items():
        sums = [amounts[q] for q in QUANTITIES]
        total = loop.setdefault((level, start), [0] * 8)
        total[:4] = [a + b for a, b in zip(total[:4], sums, strict=True)]
        total[4] += sums[0] > 0
        total[5] += sums[2] > 0
        total[6], total[7] = max(total[6], sums[0]), max(total[7], sums[2])
    return (
        _nonzero({key: tuple(c[q] for q in QUANTITIES) for key, c in meters.items()}),
        _nonzero({key: tuple(v) for key, v in loop.items()}),
    )


def _nonzero(sums: dict) -> dict:
    """Without the buckets whose sums are all zero: a bucket emptied by a reorganisation stays, at zero."""
    return {key: value for key, value in sums.items() if any(value)}


def _stored(engine: Engine) -> tuple[MeterSums, LoopSums]:
    with engine.connect() as db:
        meters = {(r[0], r[1], r[2]): tuple(r[3:]) for r in db.execute(select(meter_sums))}
        loop = {(r[0], r[1]): tuple(int(v) for v in r[2:]) for r in db.execute(select(loop_sums))}
    return _nonzero(meters), _nonzero(loop)


energy = st.integers(0, 2**40)
sides_by_block = st.lists(
    st.dictionaries(
        st.tuples(st.integers(0, 5), st.integers(0, 200), st.booleans()),  # meter, interval, production
        st.tuples(energy, energy),
        max_size=12,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sides_by_block, st.integers(0, 4))
def test_the_sums_are_those_of_the_sides_kept_after_a_reorganisation(
    store: Engine, blocks: list[dict[tuple[int, int, bool], tuple[int, int]]], fork: int
) -> None:
    _empty(store)
    seen: set[tuple[int, int, bool]] = set()
    recorded: list[tuple[int, Side]] = []
    with store.begin() as db:
        for block, found in enumerate(blocks):
            fresh = [
                Side(m, i, p, e, min(local, e)) for (m, i, p), (e, local) in found.items() if (m, i, p) not in seen
            ]
            seen.update((s.meter_idx, s.interval, s.production) for s in fresh)
            record(db, {block: fresh}, CALENDAR)
            recorded += [(block, s) for s in fresh]
    with store.begin() as db:
        assert undo_from(db, fork, CALENDAR) == sum(block >= fork for block, _ in recorded)

    assert _stored(store) == _expected([s for block, s in recorded if block < fork])


def test_a_prosumer_settled_over_two_blocks_has_one_step_of_both_sides(store: Engine) -> None:
    _empty(store)
    with store.begin() as db:
        record(db, {10: [Side(3, 7, False, 500, 200)]}, CALENDAR)
        record(db, {11: [Side(3, 7, True, 900, 300)]}, CALENDAR)
    step = int(CALENDAR.start(7).timestamp())
    assert _stored(store)[0][(3, 0, step)] == (500, 200, 900, 300)
    with store.begin() as db:
        assert undo_from(db, 11, CALENDAR) == 1
    assert _stored(store)[0][(3, 0, step)] == (500, 200, 0, 0)


def test_the_day_summer_time_ends_sums_its_hundred_steps(store: Engine) -> None:
    _empty(store)
    with store.begin() as db:  # from genesis, the first moment of 2026-10-25 in Paris
        record(db, {1: [Side(0, i, False, 10, 4) for i in range(0, 300)]}, CALENDAR)
    day = CALENDAR.genesis
    assert int(CALENDAR.bucket(99, SUMMED[2]).start.timestamp()) == day
    assert int(CALENDAR.bucket(100, SUMMED[2]).start.timestamp()) == day + 25 * 3600
    assert _stored(store)[1][(2, day)] == (1000, 400, 0, 0, 1, 0, 1000, 0)


def test_the_journal_forgets_old_blocks_and_keeps_the_sums(store: Engine) -> None:
    _empty(store)
    with store.begin() as db:
        record(db, {5: [Side(0, 1, False, 10, 4)]}, CALENDAR)
        record(db, {9: [Side(0, 2, False, 20, 8)]}, CALENDAR)
        forget_before(db, 9)
        assert [row.block for row in db.execute(select(sides.c.block))] == [9]
        assert undo_from(db, 0, CALENDAR) == 1  # only what the journal still holds
    assert _stored(store)[1][(3, int(CALENDAR.bucket(1, SUMMED[3]).start.timestamp()))][:4] == (10, 4, 0, 0)
