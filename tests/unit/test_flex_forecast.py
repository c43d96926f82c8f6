"""The loop's forecast: consumption by time of day and day type, production from the loop's clear-sky yield
and the sky, the PMO's sky forecast file, and never a look at what settled after `now`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.errors import DaiseeError
from daisee.flex.forecast import Settled, Site, SkyForecast, clear_sky_wh_m2, expect

PARIS = ZoneInfo("Europe/Paris")
GRENOBLE = Site(45.19, 5.72, 212)
STEP = 900
GENESIS = int(datetime(2026, 5, 4, tzinfo=PARIS).timestamp())  # a Monday's midnight
DAY = 86_400


def _consumption(start: int) -> int:
    """A loop that uses 400 Wh a step in the evening on working days, 100 otherwise, 250 all weekend."""
    local = datetime.fromtimestamp(start, PARIS)
    if local.weekday() >= 5:
        return 250
    return 400 if 18 <= local.hour < 21 else 100


def _history(days: int, yield_: float, clearness: float) -> list[Settled]:
    starts = [GENESIS + k * STEP for k in range(days * DAY // STEP)]
    clear = clear_sky_wh_m2(GRENOBLE, [s + STEP // 2 for s in starts], STEP / 3600)
    return [Settled(s, _consumption(s), round(yield_ * c * clearness)) for s, c in zip(starts, clear, strict=True)]


def test_consumption_is_expected_as_it_was_at_that_time_on_days_of_the_same_type() -> None:
    history = _history(14, 20.0, 1.0)
    now = GENESIS + 14 * DAY + 3600  # Monday 01:00
    forecast = expect(history, now, GENESIS, STEP, PARIS, GRENOBLE, hours=48)
    assert forecast.steps[0].start == now
    assert [s.consumption_wh for s in forecast.steps] == [_consumption(s.start) for s in forecast.steps]
    assert forecast.basis.history_steps == len(history)


def test_production_follows_the_clear_sky_scaled_by_the_loop_s_yield_and_the_last_day_s_sky() -> None:
    yield_, clearness = 30.0, 0.6
    history = _history(10, yield_, 1.0)[: -DAY // STEP] + _history(10, yield_, clearness)[-DAY // STEP :]
    now = GENESIS + 10 * DAY + 5 * 3600  # 05:00, before today's sun
    forecast = expect(history, now, GENESIS, STEP, PARIS, GRENOBLE, hours=24)
    assert forecast.basis.clear_sky_yield == pytest.approx(yield_, rel=1e-3)
    assert forecast.basis.persisted_clearness == pytest.approx(clearness, rel=1e-3)
    clear = clear_sky_wh_m2(GRENOBLE, [s.start + STEP // 2 for s in forecast.steps], STEP / 3600)
    for step, irradiation in zip(forecast.steps, clear, strict=True):
        assert step.production_wh == pytest.approx(yield_ * clearness * irradiation, abs=1)
    noon = max(forecast.steps, key=lambda s: s.production_wh)
    assert 12 <= datetime.fromtimestamp(noon.start, PARIS).hour <= 14  # solar noon near 13:40 in summer time


def test_today_s_sky_stands_once_the_sun_has_been_up_a_while() -> None:
    days = 6
    sunny = _history(days + 1, 25.0, 1.0)
    cloudy = _history(days + 1, 25.0, 0.3)
    now = GENESIS + days * DAY + 13 * 3600
    today = [s for s in cloudy if s.start >= GENESIS + days * DAY]
    history = [s for s in sunny if s.start < GENESIS + days * DAY] + today
    basis = expect(history, now, GENESIS, STEP, PARIS, GRENOBLE).basis
    assert basis.persisted_clearness == pytest.approx(0.3, rel=0.01)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 7 * DAY // STEP), st.lists(st.integers(0, 50_000), min_size=1, max_size=40))
def test_a_forecast_never_reads_what_settled_after_now(elapsed_steps: int, later: list[int]) -> None:
    history = _history(8, 22.0, 0.8)
    now = GENESIS + DAY + elapsed_steps * STEP + 300
    past = [s for s in history if s.start + STEP <= now]
    future = [
        Settled(s.start, later[k % len(later)], later[-1 - k % len(later)])
        for k, s in enumerate(h for h in history if h.start + STEP > now)
    ]
    seen = expect(past + future, now, GENESIS, STEP, PARIS, GRENOBLE)
    assert seen == expect(past, now, GENESIS, STEP, PARIS, GRENOBLE)


def test_a_loop_that_never_saw_its_roofs_produce_expects_no_production() -> None:
    history = [Settled(GENESIS + k * STEP, 300, 0) for k in range(2 * DAY // STEP)]
    forecast = expect(history, GENESIS + 2 * DAY, GENESIS, STEP, PARIS, GRENOBLE)
    assert {s.production_wh for s in forecast.steps} == {0}
    assert {s.consumption_wh for s in forecast.steps} == {300}
    assert forecast.basis.persisted_clearness is None


def test_an_empty_history_expects_nothing_at_all() -> None:
    forecast = expect([], GENESIS, GENESIS, STEP, PARIS, GRENOBLE, hours=2)
    assert [(s.consumption_wh, s.production_wh) for s in forecast.steps] == [(0, 0)] * 8


def test_the_pmo_s_sky_forecast_replaces_persistence_for_the_hours_it_covers(tmp_path: Path) -> None:
    history = _history(7, 20.0, 1.0)
    now = GENESIS + 7 * DAY
    file = tmp_path / "sky.csv"
    hours = [datetime.fromtimestamp(now + h * 3600, PARIS).isoformat() for h in range(24)]
    file.write_text("time,clearness\n" + "".join(f"{t},0.5\n" for t in hours))
    sky = SkyForecast.read(file, GRENOBLE)
    persisted = expect(history, now, GENESIS, STEP, PARIS, GRENOBLE, hours=36)
    forecast = expect(history, now, GENESIS, STEP, PARIS, GRENOBLE, hours=36, sky=sky)
    assert forecast.basis.sky_forecast_hours == 24
    for mine, theirs in zip(forecast.steps, persisted.steps, strict=True):
        share = 0.5 if mine.start < now + 24 * 3600 else 1.0
        assert mine.production_wh == pytest.approx(theirs.production_wh * share, abs=1)


def test_a_sky_forecast_of_irradiance_is_read_as_clearness(tmp_path: Path) -> None:
    hour = GENESIS + 12 * 3600
    clear = clear_sky_wh_m2(GRENOBLE, [hour + 1800], 1)[0]
    file = tmp_path / "open-meteo.csv"
    file.write_text(f"time,ghi\n{datetime.fromtimestamp(hour, PARIS).isoformat()},{clear * 0.25}\n")
    assert SkyForecast.read(file, GRENOBLE).at(hour + 600) == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("", "give a header with `time` and `clearness` or `ghi`"),
        ("time,wind\n2026-05-04T12:00+02:00,3\n", "give a header with `time` and `clearness` or `ghi`"),
        ("time,clearness\n2026-05-04T12:00,0.5\n", "line 2: time '2026-05-04T12:00' needs a date, time and offset"),
        ("time,clearness\nnoon,0.5\n", "line 2: time 'noon' needs a date, time and offset"),
        ("time,clearness\n2026-05-04T12:00+02:00,2\n", "line 2: clearness '2' is not a number from 0 to 1.2"),
        ("time,ghi\n2026-05-04T12:00+02:00,-5\n", "line 2: ghi '-5' is not a number from 0 to 1500"),
        ("time,ghi\n2026-05-04T12:00+02:00,nan\n", "line 2: ghi 'nan' is not a number from 0 to 1500"),
    ],
)
def test_a_bad_sky_forecast_is_refused_with_its_line_and_the_fix(tmp_path: Path, text: str, cause: str) -> None:
    file = tmp_path / "sky.csv"
    file.write_text(text)
    with pytest.raises(DaiseeError, match=r"^sky forecast .*sky\.csv") as raised:
        SkyForecast.read(file, GRENOBLE)
    assert cause in str(raised.value)


def test_a_sky_forecast_that_is_not_text_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "sky.csv"
    file.write_bytes(b"\xff\xfe\x00time")
    with pytest.raises(DaiseeError, match="give a readable CSV file"):
        SkyForecast.read(file, GRENOBLE)


def test_a_site_is_read_from_lat_lon_and_an_optional_altitude() -> None:
    assert Site.parse("45.19,5.72") == Site(45.19, 5.72)
    assert Site.parse("45.19,5.72,212") == GRENOBLE
    for bad in ("", "45.19", "north,east", "91,0", "0,181", "1,2,3,4", "nan,2"):
        with pytest.raises(DaiseeError, match=r"e\.g\. 45\.19,5\.72"):
            Site.parse(bad)
