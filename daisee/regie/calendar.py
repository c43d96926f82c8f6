"""Time as people read it: the loop's settlement steps grouped into the hours, days, months and years of a
civil time zone (Europe/Paris by default), DST days included.

A step belongs to the bucket in which it starts. Buckets are told apart by their start instant, not by the
wall clock: on the night summer time ends, 02:00+02:00 and 02:00+01:00 are two hours. A day is the local
calendar day, so a Paris day holds 92, 96 or 100 quarter-hours; months and years are local too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from daisee.errors import DaiseeError

DEFAULT_ZONE = "Europe/Paris"


class Granularity(StrEnum):
    """How finely a curve is cut: the loop's own step, or a civil hour, day, month or year."""

    STEP = "step"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    YEAR = "year"

    def at_least(self, floor: Granularity) -> Granularity:
        """This granularity, or `floor` if that is coarser."""
        return max(self, floor, key=FINER_TO_COARSER.index)


FINER_TO_COARSER = tuple(Granularity)


@dataclass(frozen=True)
class Bucket:
    """One period of a curve, from `start` to `end` (excluded), both in UTC: Python compares and subtracts
    two datetimes of one zone by their wall clocks, which is wrong across a change of offset."""

    start: datetime
    end: datetime
    tz: ZoneInfo

    @cached_property
    def horodate(self) -> str:
        """The start in local time, ISO 8601 with its offset, as Enedis' files write it."""
        return self.start.astimezone(self.tz).isoformat()

    @cached_property
    def epoch(self) -> int:
        """The start, in seconds since the epoch."""
        return int(self.start.timestamp())

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (DaiseeError naming it if unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DaiseeError(f"time zone {name!r} is unknown: give an IANA name such as {DEFAULT_ZONE}") from None


def bucket_of(instant: datetime, granularity: Granularity, tz: ZoneInfo, step_seconds: int) -> Bucket:
    """The bucket of `granularity` in which `instant` (aware) falls, in `tz`."""
    local = instant.astimezone(tz)
    if granularity is Granularity.STEP:
        epoch = int(instant.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % step_seconds, UTC)
        return Bucket(start, start + timedelta(seconds=step_seconds), tz)
    if granularity is Granularity.HOUR:
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)  # the fold tells the hour
        return Bucket(start, start + timedelta(hours=1), tz)
    day = local.date()
    if granularity is Granularity.DAY:
        return Bucket(_midnight(day, tz), _midnight(day + timedelta(days=1), tz), tz)
    if granularity is Granularity.MONTH:
        first = day.replace(day=1)
        following = (first + timedelta(days=31)).replace(day=1)
        return Bucket(_midnight(first, tz), _midnight(following, tz), tz)
    return Bucket(_midnight(date(day.year, 1, 1), tz), _midnight(date(day.year + 1, 1, 1), tz), tz)


def buckets(
    start: datetime, end: datetime, granularity: Granularity, tz: ZoneInfo, step_seconds: int
) -> Iterator[Bucket]:
    """Every bucket that meets [start, end), in order."""
    if end <= start:
        return
    bucket = bucket_of(start, granularity, tz, step_seconds)
    while bucket.start < end:
        yield bucket
        bucket = bucket_of(bucket.end, granularity, tz, step_seconds)


def steps_in(bucket: Bucket, step_seconds: int) -> int:
    """How many of the loop's steps a bucket holds."""
    return bucket.seconds // step_seconds


def iso_duration(granularity: Granularity, step_seconds: int) -> str:
    """The `pas` of a curve, in ISO 8601: PT15M, PT1H, P1D, P1M, P1Y."""
    if granularity is Granularity.STEP:
        if step_seconds % 3600 == 0:
            return f"PT{step_seconds // 3600}H"
        return f"PT{step_seconds // 60}M" if step_seconds % 60 == 0 else f"PT{step_seconds}S"
    return {Granularity.HOUR: "PT1H", Granularity.DAY: "P1D", Granularity.MONTH: "P1M", Granularity.YEAR: "P1Y"}[
        granularity
    ]


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of local `day`, in UTC (a zone that skips midnight starts its day at its first hour)."""
    naive = datetime(day.year, day.month, day.day)
    for hours in range(3):
        wall = naive + timedelta(hours=hours)
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) == wall:  # this wall time exists
            return instant
    raise DaiseeError(f"day {day} has no first hour in {tz.key}")  # no zone skips three hours


@dataclass(frozen=True)
class LoopCalendar:
    """The loop's intervals on the civil calendar of `tz`: interval i starts at genesis + i * step."""

    genesis: int  # epoch seconds
    step_seconds: int
    tz: ZoneInfo

    def start(self, interval: int) -> datetime:
        return datetime.fromtimestamp(self.genesis + interval * self.step_seconds, UTC)

    def interval_at(self, instant: datetime) -> int:
        """The interval in which `instant` falls (negative before genesis)."""
        return (int(instant.timestamp()) - self.genesis) // self.step_seconds

    def bucket(self, interval: int, granularity: Granularity) -> Bucket:
        """The bucket of `granularity` in which `interval` starts."""
        return _bucket_of_interval(self, interval, granularity)

    def buckets(self, start: datetime, end: datetime, granularity: Granularity) -> tuple[Bucket, ...]:
        """Every bucket that meets [start, end); steps are the loop's own, those that start in it. Kept for
        the next page that shows the same period (a year of hours is 8,760 of them)."""
        return _buckets_of_period(self, start, end, granularity)


@lru_cache(maxsize=64)
def _buckets_of_period(
    calendar: LoopCalendar, start: datetime, end: datetime, granularity: Granularity
) -> tuple[Bucket, ...]:
    if granularity is not Granularity.STEP:
        return tuple(buckets(start, end, granularity, calendar.tz, calendar.step_seconds))
    first = -((calendar.genesis - int(start.timestamp())) // calendar.step_seconds)  # the first to start at or after
    last = calendar.interval_at(end - timedelta(microseconds=1))
    return tuple(calendar.bucket(interval, granularity) for interval in range(first, last + 1))


@lru_cache(maxsize=1 << 16)
def _bucket_of_interval(calendar: LoopCalendar, interval: int, granularity: Granularity) -> Bucket:
    if granularity is Granularity.STEP:  # the loop's own step, even if it is not aligned on the epoch
        start = calendar.start(interval)
        return Bucket(start, start + timedelta(seconds=calendar.step_seconds), calendar.tz)
    return bucket_of(calendar.start(interval), granularity, calendar.tz, calendar.step_seconds)
