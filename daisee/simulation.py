"""Simulated households: deterministic daily load and PV profiles, and the meter indices they produce.

Every value is drawn from (seed, household, timestamp), never from evaluation order: a demo, a benchmark
and a simulated gateway replaying the same inputs read the same Wh. Neighbours share the day's weather;
their load and the passing clouds over their roofs are their own.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from daisee.domain import MeterKind
from daisee.errors import DaiseeError

LOCAL_OFFSET_SECONDS = 3600  # local time is UTC+1 all year (France, winter time)
_DAY_SECONDS = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
SUBSCRIPTIONS_KVA = (3, 6, 9, 12, 15, 18, 24, 30, 36)  # the Linky's standard subscribed powers
_SAMPLE_SECONDS = 900  # power is sampled at least every 15 min inside an interval
_HOURS_PER_YEAR = 8760
_UNIT = 2.0**-64
_TWO_WORDS = struct.Struct("<QQ")

# Load shape: Gaussian bumps on the 24 h circle (width in hours) over a base load, tabulated every 15 min.
_KNOTS_PER_HOUR = 4
_MORNING_WIDTH = 1.0
_EVENING_WIDTH = 1.5
_KNOT_HOURS = [k / _KNOTS_PER_HOUR for k in range(24 * _KNOTS_PER_HOUR)]
_LOAD_NOISE = 0.4  # per-interval load factor is uniform in 1 ± this
_SEASONAL_LOAD = 0.2  # the day's load factor is 1 ± this, highest in winter

# PV: a sin^1.3 bell between sunrise and sunset, centred on solar noon (~2°E in UTC+1).
_SOLAR_NOON_HOUR = 12.8
_PV_EXPONENT = 1.3

# A day's sky forced to one value: clearness 0.95 is a clear day, 0.4 an overcast one.
WEATHER = {"sunny": 0.95, "cloudy": 0.4}

ExtraLoad = Callable[[int, int, int], int]  # (household, start, end) -> Wh its appliances draw over [start, end)


@dataclass(frozen=True)
class Profile:
    """One household's parameters. The load shape is relative; its yearly energy is `annual_kwh`."""

    kind: MeterKind
    pv_kwp: float  # 0 for consumers
    annual_kwh: float  # 0 for producers: their meter only injects
    base_load: float  # relative level at night
    morning_peak: float
    morning_hour: float
    evening_peak: float
    evening_hour: float
    midday_load: float  # someone at home during the day
    pv_shift_hours: float  # roof orientation: < 0 faces east, > 0 west
    pv_performance: float  # shading, soiling and inverter losses
    initial_import_wh: int
    initial_export_wh: int
    _load_w: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def meter_limits(self, appliances_w: int = 0) -> tuple[int, int]:
        """(import, export) limits in W as the PMO admits the meter: the smallest standard Linky
        subscription above the highest load the household can draw (its profile's peak on a winter day,
        at the top of the interval-to-interval noise, plus `appliances_w` of appliances running at once;
        3 to 36 kVA), and the installed PV peak."""
        peak = max(self._load_w, default=0.0) * (1 + _SEASONAL_LOAD) * (1 + _LOAD_NOISE) + appliances_w
        subscription = next((kva for kva in SUBSCRIPTIONS_KVA if kva * 1000 >= peak), SUBSCRIPTIONS_KVA[-1])
        return (subscription * 1000 if self.annual_kwh else 0, math.ceil(self.pv_kwp * 1000))

    def __post_init__(self) -> None:
        """Tabulate the load every 15 min, scaled so that it averages `annual_kwh` / 8760 h over a year."""
        if not self.annual_kwh:
            object.__setattr__(self, "_load_w", ())
            return
        shape = [
            self.base_load + self.morning_peak * morning + self.evening_peak * evening + self.midday_load * midday
            for morning, evening, midday in zip(
                _bump(self.morning_hour, _MORNING_WIDTH), _bump(self.evening_hour, _EVENING_WIDTH), _MIDDAY, strict=True
            )
        ]
        watts = self.annual_kwh * 1000 / _HOURS_PER_YEAR / (sum(shape) / len(shape))
        # Two knots past midnight wrap the day, so interpolating up to hour 24.0 never falls off the end.
        object.__setattr__(self, "_load_w", tuple(value * watts for value in [*shape, *shape[:2]]))


@dataclass(frozen=True)
class MeterTrace:
    """A meter's cumulative indices in Wh: index 0 at the loop genesis, index k after k intervals."""

    imports: list[int]
    exports: list[int]


@dataclass(frozen=True)
class _Day:
    sunrise: float  # local hour
    daylight: float  # hours
    pv_peak: float  # kW per kWp at noon under this day's sky
    pv_variability: float  # how much a passing cloud can take off an interval
    load_factor: float  # seasonal load (heating, lighting): mean 1 over a year


def profiles(kinds: Sequence[MeterKind], seed: int) -> list[Profile]:
    """One profile per meter kind, the same for the same `seed` and position."""
    result = []
    for household, kind in enumerate(kinds):
        rng = random.Random(f"daisee-sim/{seed}/profile/{household}")
        producer_kwp = math.exp(rng.uniform(math.log(3), math.log(36)))  # many small roofs, a few barns
        prosumer_kwp = rng.uniform(2, 9)
        annual_kwh = rng.uniform(1500, 9000)
        import_index = rng.randrange(30_000_001)
        export_index = rng.randrange(5_000_001)
        consumes = kind != MeterKind.PRODUCER
        produces = kind != MeterKind.CONSUMER
        pv_kwp = {MeterKind.PRODUCER: producer_kwp, MeterKind.PROSUMER: prosumer_kwp}.get(kind, 0.0)
        result.append(
            Profile(
                kind=MeterKind(kind),
                pv_kwp=round(pv_kwp, 1),
                annual_kwh=round(annual_kwh) if consumes else 0.0,
                base_load=rng.uniform(0.35, 0.6),
                morning_peak=rng.uniform(0.6, 1.5),
                morning_hour=rng.uniform(6.5, 8.5),
                evening_peak=rng.uniform(1.2, 2.5),
                evening_hour=rng.uniform(18.5, 21.0),
                midday_load=rng.uniform(0.0, 0.8),
                pv_shift_hours=rng.uniform(-1.0, 1.0),
                pv_performance=rng.uniform(0.85, 1.0),
                initial_import_wh=import_index if consumes else 0,
                initial_export_wh=export_index if produces else 0,
            )
        )
    return result


def clearness(timestamp: int, seed: int) -> float:
    """The neighbourhood's sky on the (local) day of `timestamp`: 0.85 to 1 clear, 0.2 to 0.8 cloudy."""
    return _sky(seed, (timestamp + LOCAL_OFFSET_SECONDS) // _DAY_SECONDS)


def interval_energy(
    profile: Profile,
    start: int,
    seconds: int,
    seed: int,
    household: int,
    sky: float | None = None,
    extra_wh: int = 0,
) -> tuple[int, int]:
    """(import_wh, export_wh) the meter counts over [start, start + seconds), in whole Wh (rounded down).

    A prosumer's own PV serves its load first, `extra_wh` of appliances included; only the difference over
    the interval crosses the meter. `sky` forces the clearness of every day (else each day has its own).
    """
    if seconds <= 0:
        raise DaiseeError(f"interval of {seconds} s: give a positive length in seconds, e.g. 900")
    samples = -(-seconds // _SAMPLE_SECONDS)
    step = seconds / samples
    load_noise, cloud_noise = _uniforms(seed, household, start)
    table = profile._load_w  # empty for a meter without load
    load_wh = pv_wh = 0.0
    for i in range(samples):
        local = start + LOCAL_OFFSET_SECONDS + (i + 0.5) * step
        day = _day(seed, int(local // _DAY_SECONDS), sky)
        hour = local % _DAY_SECONDS / 3600
        if table:
            knot = hour * _KNOTS_PER_HOUR
            k = int(knot)
            load_wh += (table[k] + (table[k + 1] - table[k]) * (knot - k)) * day.load_factor
        if profile.pv_kwp:
            pv_wh += _pv_w(profile, hour, day) * (1 - day.pv_variability * cloud_noise)
    net_wh = (load_wh * (1 + _LOAD_NOISE * (2 * load_noise - 1)) - pv_wh) * step / 3600 + extra_wh
    return (int(net_wh), 0) if net_wh > 0 else (0, int(-net_wh))  # int() rounds toward zero: down here


def simulate(
    kinds: Sequence[MeterKind],
    genesis: int,
    interval_seconds: int,
    intervals: int,
    seed: int,
    sky: float | None = None,
    extra: ExtraLoad | None = None,
) -> list[MeterTrace]:
    """Each meter's indices at the `intervals + 1` boundaries from `genesis`, one trace per kind; `sky` forces
    every day's clearness, `extra` adds each household's appliances."""
    if interval_seconds <= 0:
        raise DaiseeError(f"interval of {interval_seconds} s: give a positive length in seconds, e.g. 900")
    if intervals < 0:
        raise DaiseeError(f"{intervals} intervals: give a count of zero or more")
    traces = []
    for household, profile in enumerate(profiles(kinds, seed)):
        imported, exported = profile.initial_import_wh, profile.initial_export_wh
        imports, exports = [imported], [exported]
        for k in range(intervals):
            start = genesis + k * interval_seconds
            extra_wh = extra(household, start, start + interval_seconds) if extra else 0
            import_wh, export_wh = interval_energy(profile, start, interval_seconds, seed, household, sky, extra_wh)
            imported += import_wh
            exported += export_wh
            imports.append(imported)
            exports.append(exported)
        traces.append(MeterTrace(imports, exports))
    return traces


def _bump(centre: float, width: float) -> list[float]:
    """A Gaussian of height 1 on the 24 h circle, at each knot."""
    return [math.exp(-0.5 * (((hour - centre + 12) % 24 - 12) / width) ** 2) for hour in _KNOT_HOURS]


_MIDDAY = _bump(13.0, 2.0)  # someone at home around lunch


def _pv_w(profile: Profile, hour: float, day: _Day) -> float:
    """PV power at a local hour under the day's sky, before passing clouds; 0 at night."""
    phase = (hour - day.sunrise - profile.pv_shift_hours) / day.daylight
    if not (0 < phase < 1 and day.sunrise < hour < day.sunrise + day.daylight):
        return 0.0
    return profile.pv_kwp * 1000 * profile.pv_performance * day.pv_peak * math.sin(math.pi * phase) ** _PV_EXPONENT


@lru_cache(maxsize=4096)
def _day(seed: int, local_day: int, forced_sky: float | None = None) -> _Day:
    """Sun and sky of a local day (days since 1970-01-01) at ~45°N; `forced_sky` instead of the seed's."""
    summer = _summer(local_day)
    daylight = 12 + 3.5 * summer  # 8.5 h to 15.5 h
    sky = _sky(seed, local_day) if forced_sky is None else forced_sky
    return _Day(
        sunrise=_SOLAR_NOON_HOUR - daylight / 2,
        daylight=daylight,
        pv_peak=(0.575 + 0.175 * summer) * sky,  # 0.4 to 0.75 kW/kWp under a clear sky
        pv_variability=0.05 + 0.5 * (1 - sky),
        load_factor=1 - _SEASONAL_LOAD * summer,
    )


@lru_cache(maxsize=4096)
def _sky(seed: int, local_day: int) -> float:
    rng = random.Random(f"daisee-sim/{seed}/sky/{local_day}")
    if rng.random() < 0.5 + 0.25 * _summer(local_day):  # clear days: 25 % in winter, 75 % in summer
        return rng.uniform(0.85, 1.0)
    return rng.uniform(0.2, 0.8)


def _summer(local_day: int) -> float:
    """+1 at the June solstice, -1 at the December one."""
    day_of_year = date.fromordinal(_EPOCH_ORDINAL + local_day).timetuple().tm_yday
    return math.sin(2 * math.pi * (day_of_year - 80) / 365.25)


def _uniforms(seed: int, household: int, start: int) -> tuple[float, float]:
    """Two independent uniforms in [0, 1) for one household's interval (a hash: cheaper than seeding a Random)."""
    first, second = _TWO_WORDS.unpack(hashlib.blake2b(b"%d/%d/%d" % (seed, household, start), digest_size=16).digest())
    return first * _UNIT, second * _UNIT
