from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daisee.errors import DaiseeError
from daisee.regie.calendar import Bucket, Granularity, bucket_of, buckets, iso_duration, steps_in, zone

PARIS = zone("Europe/Paris")
QUARTER = 900


def _day(day: date) -> Bucket:
    return bucket_of(datetime(day.year, day.month, day.day, 12, tzinfo=PARIS), Granularity.DAY, PARIS, QUARTER)


@pytest.mark.parametrize(
    ("day", "quarters", "hours"),
    [(date(2026, 3, 29), 92, 23), (date(2026, 10, 25), 100, 25), (date(2026, 6, 1), 96, 24)],
)
def test_a_paris_day_holds_92_96_or_100_quarter_hours(day: date, quarters: int, hours: int) -> None:
    bucket = _day(day)
    assert steps_in(bucket, QUARTER) == quarters
    assert len(list(buckets(bucket.start, bucket.end, Granularity.HOUR, PARIS, QUARTER))) == hours
    assert len(list(buckets(bucket.start, bucket.end, Granularity.STEP, PARIS, QUARTER))) == quarters


def test_the_hour_repeated_when_summer_time_ends_is_two_buckets_told_apart_by_their_offset() -> None:
    day = _day(date(2026, 10, 25))
    starts = [b.horodate for b in buckets(day.start, day.end, Granularity.HOUR, PARIS, QUARTER)]
    assert starts[1:5] == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_months_and_years_are_local() -> None:
    new_year_utc = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Paris
    assert bucket_of(new_year_utc, Granularity.YEAR, PARIS, QUARTER).horodate == "2027-01-01T00:00:00+01:00"
    month = bucket_of(new_year_utc, Granularity.MONTH, PARIS, QUARTER)
    assert (month.horodate, month.end.astimezone(PARIS).isoformat()) == (
        "2027-01-01T00:00:00+01:00",
        "2027-02-01T00:00:00+01:00",
    )
    march = bucket_of(datetime(2026, 3, 15, tzinfo=UTC), Granularity.MONTH, PARIS, QUARTER)
    assert steps_in(march, QUARTER) == 31 * 96 - 4


def test_a_zone_that_skips_midnight_starts_its_day_at_its_first_hour() -> None:
    havana = zone("America/Havana")  # summer time starts at 00:00 on 8 March 2026
    day = bucket_of(datetime(2026, 3, 8, 12, tzinfo=havana), Granularity.DAY, havana, QUARTER)
    assert day.horodate == "2026-03-08T01:00:00-04:00"
    assert steps_in(day, QUARTER) == 92


@given(
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=st.just(UTC)),
    st.sampled_from(list(Granularity)),
    st.sampled_from(["Europe/Paris", "America/Havana", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]),
    st.sampled_from([300, 900, 1800, 3600]),
)
def test_every_instant_falls_in_exactly_one_bucket_and_buckets_tile_time(
    instant: datetime, granularity: Granularity, name: str, step: int
) -> None:
    tz = zone(name)
    bucket = bucket_of(instant, granularity, tz, step)
    assert bucket.start <= instant < bucket.end
    assert bucket_of(bucket.end, granularity, tz, step).start == bucket.end  # the next one starts where it ends
    assert bucket_of(bucket.start, granularity, tz, step) == bucket
    assert bucket.seconds % step == 0 or name == "Australia/Lord_Howe"  # its summer time is half an hour


def test_an_empty_range_has_no_bucket_even_inside_the_repeated_hour() -> None:
    first = datetime(2026, 10, 25, 0, 40, tzinfo=UTC)  # 02:40+02:00, then 02:10+01:00 is 30 minutes later
    assert list(buckets(first, first, Granularity.HOUR, PARIS, QUARTER)) == []
    later = (first + timedelta(minutes=30)).astimezone(PARIS)
    assert [b.horodate for b in buckets(first, later, Granularity.HOUR, PARIS, QUARTER)] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
    ]


def test_durations_are_iso_8601_and_a_wrong_zone_is_named() -> None:
    assert [iso_duration(g, QUARTER) for g in Granularity] == ["PT15M", "PT1H", "P1D", "P1M", "P1Y"]
    assert iso_duration(Granularity.STEP, 90) == "PT90S"
    with pytest.raises(DaiseeError, match="time zone 'Europe/Pariss' is unknown"):
        zone("Europe/Pariss")
