"""The loop's expected consumption and production for the hours ahead, from what it settled before.

Consumption: the mean of the loop's settled consumption at the same local time of day over the last
`HISTORY_DAYS`, on days of the same type (working day or weekend) when there are any, else on every day.

Production: pvlib's clear-sky irradiance at the loop's site (Ineichen, with the site's Linke turbidity)
times the loop's clear-sky yield — the best ratio of a recent day's production to its clear-sky
irradiation, that is, what the loop's roofs make of a clear sky — times the sky expected: the clearness
the PMO's forecast gives for that hour when it supplies one, else persistence (today's clearness so far
once the sun has been up a while, else the last sunny day's).

Only steps that ended by `now` are read: a forecast never sees the future (tested).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from daisee.errors import DaiseeError

HISTORY_DAYS = 28  # how far back the consumption profile and the clear-sky yield look
YIELD_DAYS = 14  # the clear-sky yield is the best day of these
PERSISTENCE_WH_M2 = 1000.0  # of today's clear-sky irradiation (two hours of good sun) before today's sky stands
_SAMPLE_SECONDS = 900  # irradiance is sampled at least every 15 min within a step
_HOUR = 3600
_DAY = 86_400
_NIGHT_WH_M2 = 1.0  # clear-sky irradiation below this in a step: no sun to speak of


@dataclass(frozen=True)
class Site:
    """Where the loop's roofs are: latitude and longitude in degrees (north and east), altitude in metres."""

    latitude: float
    longitude: float
    altitude: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Site:
        """`LAT,LON` or `LAT,LON,ALTITUDE`, e.g. `45.19,5.72,212`."""
        try:
            numbers = [float(part) for part in text.split(",")]
        except ValueError:
            numbers = []
        if len(numbers) not in (2, 3) or not all(math.isfinite(n) for n in numbers):
            raise DaiseeError(f"site {text!r}: give LAT,LON in degrees (and an altitude in metres), e.g. 45.19,5.72")
        latitude, longitude, *rest = numbers
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise DaiseeError(f"site {text!r}: latitude within ±90°, longitude within ±180°, e.g. 45.19,5.72")
        return cls(latitude, longitude, rest[0] if rest else 0.0)

    def __str__(self) -> str:
        return f"{self.latitude:g},{self.longitude:g},{self.altitude:g}"


DEFAULT_SITE = Site(46.6, 2.4)  # the middle of mainland France, for a loop that does not say where it is


@dataclass(frozen=True)
class Settled:
    """The loop's settled energy over one step, in Wh."""

    start: int
    consumption_wh: int
    production_wh: int


@dataclass(frozen=True)
class Expected:
    """What the loop expects over the step [start, end), in Wh."""

    start: int
    end: int
    consumption_wh: int
    production_wh: int

    @property
    def surplus_wh(self) -> int:
        """Production the loop's own consumption is not expected to take (negative: a shortfall)."""
        return self.production_wh - self.consumption_wh


@dataclass(frozen=True)
class SkyForecast:
    """The PMO's forecast of the sky: clearness (the share of the clear-sky irradiance that reaches the
    ground, 0 to about 1.2) by hour, keyed by the hour's start in epoch seconds."""

    clearness: Mapping[int, float]

    def at(self, instant: int) -> float | None:
        return self.clearness.get(instant - instant % _HOUR)

    @classmethod
    def read(cls, path: Path, site: Site) -> SkyForecast:
        """A CSV with a `time` column (ISO 8601 with its offset, e.g. Open-Meteo's export with
        `&timezone=auto` or `timeformat=iso8601`) and either `clearness` (0 to 1.2) or `ghi` (global
        horizontal irradiance in W/m², e.g. Open-Meteo's `shortwave_radiation`)."""
        try:
            with path.open(newline="", encoding="utf-8") as file:
                rows = list(csv.DictReader(file))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise DaiseeError(f"sky forecast {path}: {exc}: give a readable CSV file") from None
        columns = set(rows[0]) if rows else set()
        if "time" not in columns or not columns & {"clearness", "ghi"}:
            raise DaiseeError(f"sky forecast {path}: give a header with `time` and `clearness` or `ghi`")
        column = "clearness" if "clearness" in columns else "ghi"
        hours, values = [], []
        for line, row in enumerate(rows, start=2):
            hours.append(_hour_of(row["time"], path, line))
            values.append(_number(row[column], path, line, column))
        if column == "ghi":
            clear = clear_sky_wh_m2(site, [hour + _HOUR // 2 for hour in hours], 1)
            values = [min(1.2, ghi / wh) if wh > _NIGHT_WH_M2 else 0.0 for ghi, wh in zip(values, clear, strict=True)]
        return cls(dict(zip(hours, values, strict=True)))


def _hour_of(text: str | None, path: Path, line: int) -> int:
    try:
        instant = datetime.fromisoformat(text or "")
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise DaiseeError(f"sky forecast {path}, line {line}: time {text!r} needs a date, time and offset")
    epoch = int(instant.timestamp())
    return epoch - epoch % _HOUR


def _number(text: str | None, path: Path, line: int, column: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        value = math.nan
    limit = 1.2 if column == "clearness" else 1500.0
    if not 0 <= value <= limit:
        raise DaiseeError(f"sky forecast {path}, line {line}: {column} {text!r} is not a number from 0 to {limit:g}")
    return value


def clear_sky_wh_m2(site: Site, midpoints: Sequence[int], hours: float) -> list[float]:
    """The clear-sky irradiation (Wh/m², horizontal) of periods of `hours` centred on each of `midpoints`."""
    if not midpoints:
        return []
    import pandas as pd  # pvlib and pandas cost most of a second to import: only here
    from pvlib.location import Location

    samples = max(1, math.ceil(hours * _HOUR / _SAMPLE_SECONDS))
    offsets = [(i + 0.5) / samples - 0.5 for i in range(samples)]
    instants = [int(m + o * hours * _HOUR) for m in midpoints for o in offsets]
    times = pd.DatetimeIndex(pd.to_datetime(instants, unit="s", utc=True))
    ghi = Location(site.latitude, site.longitude, "UTC", site.altitude).get_clearsky(times, model="ineichen")["ghi"]
    values = ghi.to_numpy()
    return [float(values[k * samples : (k + 1) * samples].mean()) * hours for k in range(len(midpoints))]


@dataclass(frozen=True)
class Basis:
    """What a forecast rests on, for whoever reads it."""

    history_steps: int  # settled steps read
    clear_sky_yield: float  # Wh of loop production per Wh/m² of clear-sky irradiation (0: never sunny yet)
    persisted_clearness: float | None  # the clearness that stands where the PMO's forecast says nothing
    sky_forecast_hours: int  # hours ahead the PMO's forecast covers

    def as_json(self) -> dict[str, object]:
        return {
            "history_steps": self.history_steps,
            "clear_sky_yield_wh_per_wh_m2": round(self.clear_sky_yield, 3),
            "persisted_clearness": None if self.persisted_clearness is None else round(self.persisted_clearness, 3),
            "sky_forecast_hours": self.sky_forecast_hours,
        }


@dataclass(frozen=True)
class Forecast:
    steps: list[Expected]
    basis: Basis


def expect(
    history: Iterable[Settled],
    now: int,
    genesis: int,
    step_seconds: int,
    tz: ZoneInfo,
    site: Site,
    hours: int = 36,
    sky: SkyForecast | None = None,
) -> Forecast:
    """The loop's expected steps from the one `now` falls in, for `hours`, from the steps settled by `now`."""
    first = now - (now - genesis) % step_seconds
    seen = [s for s in history if now - HISTORY_DAYS * _DAY <= s.start and s.start + step_seconds <= now]
    starts = [first + k * step_seconds for k in range(math.ceil(hours * _HOUR / step_seconds))]
    step_hours = step_seconds / _HOUR
    clear = clear_sky_wh_m2(site, [s + step_seconds // 2 for s in [*(h.start for h in seen), *starts]], step_hours)
    past_clear, future_clear = clear[: len(seen)], clear[len(seen) :]
    days = _production_by_day(seen, past_clear, now, tz)
    yield_ = max((produced / irradiation for produced, irradiation in days.values()), default=0.0)
    persisted = _persisted_clearness(days, yield_, now, tz)
    consumption = _ConsumptionProfile(seen, tz)
    covered: set[int] = set()  # hours the PMO's forecast speaks for
    steps = []
    for start, irradiation in zip(starts, future_clear, strict=True):
        clearness = sky.at(start + step_seconds // 2) if sky else None
        if clearness is not None:
            covered.add(start - start % _HOUR)
        else:
            clearness = persisted if persisted is not None else 1.0
        production = yield_ * irradiation * clearness
        steps.append(Expected(start, start + step_seconds, consumption.at(start), max(0, round(production))))
    return Forecast(steps, Basis(len(seen), yield_, persisted, len(covered)))


def _production_by_day(
    seen: Sequence[Settled], clear: Sequence[float], now: int, tz: ZoneInfo
) -> dict[int, tuple[int, float]]:
    """(production, clear-sky irradiation) of each local day (as an ordinal) with sun, over YIELD_DAYS."""
    produced: dict[int, int] = defaultdict(int)
    irradiated: dict[int, float] = defaultdict(float)
    for step, irradiation in zip(seen, clear, strict=True):
        if step.start >= now - YIELD_DAYS * _DAY and irradiation > _NIGHT_WH_M2:
            day = _local(step.start, tz).toordinal()
            produced[day] += step.production_wh
            irradiated[day] += irradiation
    return {day: (produced[day], irradiation) for day, irradiation in irradiated.items()}


def _persisted_clearness(days: Mapping[int, tuple[int, float]], yield_: float, now: int, tz: ZoneInfo) -> float | None:
    """Today's clearness once PERSISTENCE_WH_M2 of sun has been settled today, else the last day's; None
    if the loop has never seen its roofs produce."""
    if yield_ <= 0:
        return None
    today = _local(now, tz).toordinal()
    if today in days and days[today][1] >= PERSISTENCE_WH_M2:
        produced, irradiation = days[today]
        return produced / irradiation / yield_
    earlier = [day for day in days if day < today]
    if not earlier:
        return None
    produced, irradiation = days[max(earlier)]
    return produced / irradiation / yield_


class _ConsumptionProfile:
    """Mean settled consumption by local time of day, on working days and on weekends apart."""

    def __init__(self, seen: Iterable[Settled], tz: ZoneInfo) -> None:
        self.tz = tz
        by_kind: dict[tuple[int, bool], list[int]] = defaultdict(list)
        by_time: dict[int, list[int]] = defaultdict(list)
        for step in seen:
            minute, weekend = _slot(step.start, tz)
            by_kind[minute, weekend].append(step.consumption_wh)
            by_time[minute].append(step.consumption_wh)
        self.by_kind = {key: _mean(values) for key, values in by_kind.items()}
        self.by_time = {key: _mean(values) for key, values in by_time.items()}
        every = [v for values in by_time.values() for v in values]
        self.overall = _mean(every) if every else 0

    def at(self, start: int) -> int:
        minute, weekend = _slot(start, self.tz)
        return self.by_kind.get((minute, weekend), self.by_time.get(minute, self.overall))


def _slot(start: int, tz: ZoneInfo) -> tuple[int, bool]:
    local = _local(start, tz)
    return local.hour * 60 + local.minute, local.weekday() >= 5


def _local(instant: int, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(instant, UTC).astimezone(tz)


def _mean(values: Sequence[int]) -> int:
    return round(sum(values) / len(values))
