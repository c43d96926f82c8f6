"""Curves read from the store: a member's or the loop's settled energy over a period, point by point at a
granularity, in the vocabulary of Enedis' files (CONS, AUTOCONS, COMPLEMENT; PROD, AUTOPROD, SURPLUS).

A point with no settled step is `None`, not zero: nothing was settled there yet. A loop's point also says
how many meters make it and the largest meter's share, which the publication rule reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache, partial
from typing import NamedTuple

from sqlalchemy import BigInteger, Connection, cast, func, select

from daisee.regie.calendar import Bucket, Granularity, LoopCalendar, bucket_of
from daisee.regie.schema import QUANTITIES, loop_sums, meter_sums
from daisee.regie.sums import level


class Energy(NamedTuple):
    """Settled energy in Wh: what was consumed and the part of it allocated from the loop, what was
    produced and the part of it sold in the loop. (Tuples: a year's page makes tens of thousands.)"""

    cons: int
    autocons: int
    prod: int
    autoprod: int

    @property
    def complement(self) -> int:
        """Bought from the grid."""
        return self.cons - self.autocons

    @property
    def surplus(self) -> int:
        """Exported to the grid."""
        return self.prod - self.autoprod

    def __add__(self, other: tuple[int, ...]) -> Energy:  # type: ignore[override]
        assert isinstance(other, Energy)
        return Energy(
            self.cons + other.cons,
            self.autocons + other.autocons,
            self.prod + other.prod,
            self.autoprod + other.autoprod,
        )

    def as_json(self) -> dict[str, int]:
        return {
            "CONS": self.cons,
            "AUTOCONS": self.autocons,
            "COMPLEMENT": self.complement,
            "PROD": self.prod,
            "AUTOPROD": self.autoprod,
            "SURPLUS": self.surplus,
        }


NOTHING = Energy(0, 0, 0, 0)
_energy = partial(tuple.__new__, Energy)  # from an iterable of four, without NamedTuple's Python-level __new__


class Crowd(NamedTuple):
    """Who makes a loop's point: meters that consumed, meters that produced, and the largest of each."""

    consumers: int
    producers: int
    max_cons: int
    max_prod: int


_crowd_of = partial(tuple.__new__, Crowd)


class Point(NamedTuple):
    bucket: Bucket
    energy: Energy | None  # None: nothing settled in this bucket
    crowd: Crowd | None = None  # a loop's point only


@dataclass(frozen=True)
class Curve:
    """Points in columns (a year of hours is 8,760 of them): each bucket, what was settled in it (None:
    nothing), and for a loop's curve who makes it."""

    granularity: Granularity
    buckets: Sequence[Bucket]
    energy: list[Energy | None]
    crowds: list[Crowd | None]

    @property
    def points(self) -> list[Point]:
        return [Point(*point) for point in zip(self.buckets, self.energy, self.crowds, strict=True)]

    @cached_property
    def total(self) -> Energy:
        found = [e for e in self.energy if e is not None]
        return _energy(map(sum, zip(*found, strict=True))) if found else NOTHING


@dataclass(frozen=True)
class Period:
    """The span a page shows, [start, end) in UTC."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, instant: datetime, granularity: Granularity, calendar: LoopCalendar) -> Period:
        """The civil day, month or year (of the calendar's zone) in which `instant` falls."""
        bucket = bucket_of(instant, granularity, calendar.tz, calendar.step_seconds)
        return cls(bucket.start, bucket.end)


def member_curve(
    db: Connection, calendar: LoopCalendar, meter_idxs: Sequence[int], period: Period, granularity: Granularity
) -> Curve:
    """The settled energy of the meters `meter_idxs` (a member's), summed, over `period`."""
    summed = _summed(granularity)
    rows = db.execute(
        select(meter_sums.c.start, *(cast(func.sum(meter_sums.c[q]), BigInteger) for q in QUANTITIES))
        .where(
            meter_sums.c.meter_idx.in_(list(meter_idxs)),
            meter_sums.c.level == level(summed),
            meter_sums.c.start >= _epoch(period.start),
            meter_sums.c.start < _epoch(period.end),
        )
        .group_by(meter_sums.c.start)
    )
    found = {row[0]: _energy(row[1:]) for row in rows.all()}
    if granularity is Granularity.YEAR:
        years: dict[int, Energy] = {}
        for start, energy in found.items():
            year = _year_of(calendar, start)
            years[year] = years.get(year, NOTHING) + energy
        found = years
    return _curve(calendar, period, granularity, found, {})


def loop_curve(db: Connection, calendar: LoopCalendar, period: Period, granularity: Granularity) -> Curve:
    """The loop's settled energy over `period`, each point with the meters that make it."""
    if granularity is Granularity.YEAR:
        return _loop_years(db, calendar, period)
    columns = [loop_sums.c[name] for name in (*QUANTITIES, "consumers", "producers", "max_cons", "max_prod")]
    rows = db.execute(
        select(loop_sums.c.start, *columns).where(
            loop_sums.c.level == level(granularity),
            loop_sums.c.start >= _epoch(period.start),
            loop_sums.c.start < _epoch(period.end),
        )
    )
    energy: dict[int, Energy] = {}
    crowds: dict[int, Crowd] = {}
    for row in rows.all():
        energy[row[0]], crowds[row[0]] = _energy(row[1:5]), _crowd_of(row[5:])
    return _curve(calendar, period, granularity, energy, crowds)


def _loop_years(db: Connection, calendar: LoopCalendar, period: Period) -> Curve:
    """Years, from each meter's months: a year's crowd needs each meter's total of the year."""
    rows = db.execute(
        select(meter_sums.c.meter_idx, meter_sums.c.start, *(meter_sums.c[q] for q in QUANTITIES)).where(
            meter_sums.c.level == level(Granularity.MONTH),
            meter_sums.c.start >= _epoch(period.start),
            meter_sums.c.start < _epoch(period.end),
        )
    )
    by_year: dict[int, dict[int, Energy]] = {}
    for meter_idx, start, *values in rows:
        year = _year_of(calendar, start)
        meters = by_year.setdefault(year, {})
        meters[meter_idx] = meters.get(meter_idx, NOTHING) + Energy(*values)
    energy = {year: sum(meters.values(), NOTHING) for year, meters in by_year.items()}
    crowds = {year: _crowd(meters.values()) for year, meters in by_year.items()}
    return _curve(calendar, period, Granularity.YEAR, energy, crowds)


def _crowd(meters: Iterable[Energy]) -> Crowd:
    found = list(meters)
    return Crowd(
        consumers=sum(e.cons > 0 for e in found),
        producers=sum(e.prod > 0 for e in found),
        max_cons=max((e.cons for e in found), default=0),
        max_prod=max((e.prod for e in found), default=0),
    )


def _curve(
    calendar: LoopCalendar,
    period: Period,
    granularity: Granularity,
    energy: dict[int, Energy],
    crowds: dict[int, Crowd],
) -> Curve:
    """Every bucket of `period` at `granularity`, with what was found for it (keyed by the bucket's start)."""
    buckets = calendar.buckets(period.start, period.end, granularity)
    return Curve(
        granularity,
        buckets,
        [energy.get(b.epoch) for b in buckets],
        [crowds.get(b.epoch) for b in buckets] if crowds else [None] * len(buckets),
    )


def _summed(granularity: Granularity) -> Granularity:
    """The sums a granularity is read from: its own, or months for years."""
    return Granularity.MONTH if granularity is Granularity.YEAR else granularity


@lru_cache(maxsize=4096)
def _year_of(calendar: LoopCalendar, start: int) -> int:
    """The start of the civil year in which the bucket starting at `start` falls."""
    instant = datetime.fromtimestamp(start, UTC)
    return _epoch(bucket_of(instant, Granularity.YEAR, calendar.tz, calendar.step_seconds).start)


def _epoch(instant: datetime) -> int:
    return int(instant.timestamp())
