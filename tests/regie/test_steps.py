from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from daisee.regie.postgres import local_postgres
from daisee.regie.schema import loop_hours, metadata, meter_hours
from daisee.regie.steps import QUANTITIES, Step, record, undo_from
from daisee.regie.store import open_store

GENESIS = 1_796_000_400  # a quarter-hour boundary


def hour_of(interval: int) -> int:
    return (GENESIS + interval * 900) // 3600


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = open_store(f"sqlite:///{tmp_path_factory.mktemp('steps') / 'regie.sqlite'}")
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


def _expected(kept: list[Step]) -> tuple[dict[tuple[int, int], tuple[int, ...]], dict[int, tuple[int, ...]]]:
    meters: dict[tuple[int, int], Counter[str]] = {}
    loop: dict[int, Counter[str]] = {}
    for step in kept:
        amounts = Counter(dict(zip(QUANTITIES, step.quantities, strict=True)))
        meters.setdefault((step.meter_idx, hour_of(step.interval)), Counter()).update(amounts)
        loop.setdefault(hour_of(step.interval), Counter()).update(amounts)
    return _nonzero({k: _sums(c) for k, c in meters.items()}), _nonzero({k: _sums(c) for k, c in loop.items()})


def _sums(amounts: Counter[str]) -> tuple[int, ...]:
    return tuple(amounts[q] for q in QUANTITIES)


def _nonzero(sums: dict) -> dict:  # type: ignore[type-arg]
    """Without the hours whose sums are all zero: an hour emptied by a reorganisation stays, at zero."""
    return {key: value for key, value in sums.items() if any(value)}


def _stored(engine: Engine) -> tuple[dict[tuple[int, int], tuple[int, ...]], dict[int, tuple[int, ...]]]:
    with engine.connect() as db:
        meters = {(r[0], r[1]): tuple(r[2:]) for r in db.execute(select(meter_hours))}
        loop = {r[0]: tuple(r[1:]) for r in db.execute(select(loop_hours))}
    return _nonzero(meters), _nonzero(loop)


energy = st.integers(0, 2**47)
steps_by_block = st.lists(
    st.dictionaries(
        st.tuples(st.integers(0, 5), st.integers(0, 40)),
        st.tuples(energy, energy, energy, energy),
        max_size=12,
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps_by_block, st.integers(0, 4))
def test_the_hourly_sums_are_the_sums_of_the_steps_kept_after_a_reorganisation(
    store: Engine, blocks: list[dict[tuple[int, int], tuple[int, int, int, int]]], fork: int
) -> None:
    _empty(store)
    seen: set[tuple[int, int]] = set()
    recorded: list[tuple[int, Step]] = []
    with store.begin() as db:
        for block, found in enumerate(blocks):
            fresh = [Step(m, i, *q) for (m, i), q in found.items() if (m, i) not in seen]
            seen.update((s.meter_idx, s.interval) for s in fresh)
            record(db, fresh, block, hour_of)
            recorded += [(block, s) for s in fresh]
    with store.begin() as db:
        assert undo_from(db, fork, hour_of) == sum(block >= fork for block, _ in recorded)

    assert _stored(store) == _expected([s for block, s in recorded if block < fork])


def test_a_step_settles_once(store: Engine) -> None:
    _empty(store)
    step = Step(1, 7, 100, 40, 0, 0)
    with store.begin() as db:
        record(db, [step], 10, hour_of)
    with pytest.raises(IntegrityError), store.begin() as db:
        record(db, [step], 11, hour_of)
    assert _stored(store) == ({(1, hour_of(7)): (100, 40, 0, 0)}, {hour_of(7): (100, 40, 0, 0)})
