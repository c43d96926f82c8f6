"""Curves read from the store, and what of them the publication rule lets everyone see, checked against
sums computed the slow way from the same sides, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from daisee.regie.calendar import Granularity, LoopCalendar, zone
from daisee.regie.curves import Energy, Period, loop_curve, member_curve
from daisee.regie.publish import PublicationRule, public_curve
from daisee.regie.schema import metadata
from daisee.regie.sums import Side, record

# the loop starts at midnight in Paris on 2026-10-24: the day after is the one summer time ends (25 hours)
CALENDAR = LoopCalendar(genesis=1_792_792_800, step_seconds=900, tz=zone("Europe/Paris"))
DAY, DST_DAY = range(0, 96), range(96, 196)
RULE = PublicationRule()


def _record(store: Engine, sides: list[Side]) -> None:
    with store.begin() as db:
        record(db, {1: sides}, CALENDAR)


def _day(first_interval: int) -> Period:
    return Period.of(CALENDAR.start(first_interval), Granularity.DAY, CALENDAR)


def test_a_members_day_has_its_steps_and_the_day_summer_time_ends_has_a_hundred(store: Engine) -> None:
    _record(store, [Side(0, i, False, 100 + i, 40) for i in [*DAY, *DST_DAY]] + [Side(1, 5, False, 7, 7)])
    with store.connect() as db:
        day = member_curve(db, CALENDAR, [0], _day(0), Granularity.STEP)
        dst = member_curve(db, CALENDAR, [0], _day(96), Granularity.STEP)
        dst_hours = member_curve(db, CALENDAR, [0], _day(96), Granularity.HOUR)
        both = member_curve(db, CALENDAR, [0, 1], _day(0), Granularity.DAY)
    assert [p.energy for p in day.points] == [Energy(100 + i, 40, 0, 0) for i in DAY]
    assert day.points[0].bucket.horodate == "2026-10-24T00:00:00+02:00"
    assert len(dst.points) == 100
    assert len(dst_hours.points) == 25
    assert [p.bucket.horodate for p in dst_hours.points[2:4]] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]
    assert dst_hours.points[2].energy == Energy(sum(100 + i for i in range(104, 108)), 160, 0, 0)
    assert both.points == [both.points[0]]
    assert both.total == Energy(sum(100 + i for i in DAY) + 7, 96 * 40 + 7, 0, 0)
    assert both.total.complement == both.total.cons - both.total.autocons


def test_a_bucket_with_nothing_settled_has_no_value_not_zero(store: Engine) -> None:
    _record(store, [Side(0, 3, True, 50, 20)])
    with store.connect() as db:
        hours = member_curve(db, CALENDAR, [0], _day(0), Granularity.HOUR)
    assert [p.energy for p in hours.points[:2]] == [Energy(0, 0, 50, 20), None]
    assert hours.total.surplus == 30


def test_a_loop_of_twelve_consumers_and_one_producer_publishes_its_consumption_only(store: Engine) -> None:
    sides = [Side(m, i, False, 200, 50) for m in range(12) for i in DAY]
    _record(store, sides + [Side(12, i, True, 600, 600) for i in DAY])
    with store.connect() as db:
        shown = public_curve(db, CALENDAR, _day(0), Granularity.HOUR, Granularity.DAY, RULE)
    assert (shown.consumption, shown.production, shown.coarsened) == (True, False, False)
    assert shown.curve.points[0].energy == Energy(12 * 4 * 200, 12 * 4 * 50, 0, 0)
    assert shown.curve.points[0].crowd is not None
    assert shown.curve.points[0].crowd.consumers == 12


def test_hours_that_too_few_meters_make_are_shown_as_their_day(store: Engine) -> None:
    morning = [Side(m, i, False, 10, 0) for m in range(6) for i in range(0, 48)]
    evening = [Side(m, i, False, 10, 0) for m in range(6, 12) for i in range(48, 96)]
    _record(store, morning + evening)
    with store.connect() as db:
        shown = public_curve(db, CALENDAR, _day(0), Granularity.HOUR, Granularity.DAY, RULE)
        strict = public_curve(db, CALENDAR, _day(0), Granularity.HOUR, Granularity.DAY, PublicationRule(13))
    assert shown.coarsened
    assert shown.curve.granularity is Granularity.DAY
    assert shown.curve.points[0].energy == Energy(12 * 48 * 10, 0, 0, 0)
    assert not strict.consumption
    assert strict.curve.total == Energy(0, 0, 0, 0)


def test_a_loop_year_is_judged_on_each_meters_year(store: Engine) -> None:
    sides = [Side(m, i, False, 10 if m else 85, 0) for m in range(10) for i in (0, 3000)]  # October, November
    _record(store, sides)
    year = Period.of(CALENDAR.start(0), Granularity.YEAR, CALENDAR)
    with store.connect() as db:
        years = loop_curve(db, CALENDAR, year, Granularity.YEAR)
        shown = public_curve(db, CALENDAR, year, Granularity.MONTH, Granularity.YEAR, RULE)
    assert len(years.points) == 1
    assert years.points[0].energy == Energy(2 * (85 + 90), 0, 0, 0)
    crowd = years.points[0].crowd
    assert crowd is not None
    assert (crowd.consumers, crowd.max_cons) == (10, 170)
    assert shown.consumption
    assert shown.curve.granularity is Granularity.MONTH


cases = st.lists(
    st.tuples(st.integers(0, 14), st.integers(0, 191), st.booleans(), st.integers(0, 1000)),
    min_size=1,
    max_size=120,
    unique_by=lambda c: c[:3],
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases, st.integers(1, 12), st.sampled_from([Fraction(1, 2), Fraction(1, 3)]))
def test_every_point_shown_passes_the_rule_at_the_finest_granularity_that_lets_it(
    store: Engine, found: list[tuple[int, int, bool, int]], min_meters: int, max_share: Fraction
) -> None:
    with store.begin() as db:
        for table in reversed(metadata.sorted_tables):
            if table.name not in ("meta", "alembic_version"):
                db.execute(table.delete())
        record(db, {1: [Side(m, i, p, e, e // 2) for m, i, p, e in found]}, CALENDAR)
    rule = PublicationRule(min_meters, max_share)
    period = Period(datetime.fromtimestamp(CALENDAR.genesis, UTC), CALENDAR.start(196))
    with store.connect() as db:
        shown = public_curve(db, CALENDAR, period, Granularity.HOUR, Granularity.DAY, rule)

    granularity = shown.curve.granularity
    for point in shown.curve.points:
        inside = [f for f in found if point.bucket.start <= CALENDAR.start(f[1]) < point.bucket.end]
        per_meter: dict[tuple[int, bool], int] = {}
        for m, _, production, e in inside:
            per_meter[(m, production)] = per_meter.get((m, production), 0) + e
        for production, shown_side in ((False, shown.consumption), (True, shown.production)):
            values = [v for (m, p), v in per_meter.items() if p is production and v > 0]
            if shown_side:
                assert rule.allows(len(values), max(values, default=0), sum(values))
            energy = point.energy
            got = None if energy is None else (energy.prod if production else energy.cons)
            assert got == (None if not inside else sum(values) if shown_side else 0)
    if granularity is Granularity.DAY and (shown.consumption or shown.production):
        with store.connect() as db:
            hours = loop_curve(db, CALENDAR, period, Granularity.HOUR)
        judged = [rule.sides(p.energy, p.crowd) for p in hours.points]
        assert not all((c or not shown.consumption) and (q or not shown.production) for c, q in judged)
