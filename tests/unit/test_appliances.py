"""Shiftable appliances: deterministic uses within their windows, their energy exact in the meter indices, the
weather override, and uses planned on a signal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest

from daisee.appliances import (
    DAY_START_HOUR,
    Appliances,
    Running,
    Use,
    day_start,
    follow_signal,
    household_appliances,
    rigid,
    weekend,
)
from daisee.domain import MeterKind
from daisee.flex.forecast import Expected
from daisee.simulation import LOCAL_OFFSET_SECONDS, SUBSCRIPTIONS_KVA, WEATHER, interval_energy, profiles, simulate

LOCAL = timezone(timedelta(seconds=LOCAL_OFFSET_SECONDS))
CYCLE = [MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER]
SEED = 7
HOUR = 3600
DAY = 86_400


def seven_am(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, DAY_START_HOUR, tzinfo=LOCAL).timestamp())


def local_hour(instant: int, day: int) -> float:
    """Hours since the local midnight before the appliance day starting at `day`."""
    return (instant - day) / HOUR + DAY_START_HOUR


def neighbourhood(count: int, seed: int = SEED) -> list[Appliances]:
    return [household_appliances(CYCLE[i % 3], seed, i) for i in range(count)]


def every_use(count: int, days: int) -> list[tuple[int, Use]]:
    first = seven_am(2026, 3, 2)
    starts = [first + d * DAY for d in range(days)]
    return [(day, use) for day in starts for appliances in neighbourhood(count) for use in appliances.uses(day)]


def test_appliances_and_their_uses_are_the_same_for_the_same_seed_household_and_day() -> None:
    day = seven_am(2026, 6, 1)

    assert neighbourhood(30) == neighbourhood(30)
    assert [a.uses(day) for a in neighbourhood(30)] == [a.uses(day) for a in neighbourhood(30)]
    assert neighbourhood(30, seed=1) != neighbourhood(30, seed=2)
    assert [a.uses(day) for a in neighbourhood(30)] != [a.uses(day + DAY) for a in neighbourhood(30)]


def test_producers_have_no_appliances_and_consumers_own_them_in_realistic_shares() -> None:
    owned = neighbourhood(900)
    consuming = [a for i, a in enumerate(owned) if CYCLE[i % 3] is not MeterKind.PRODUCER]

    assert all(a.peak_w == 0 and a.uses(seven_am(2026, 1, 5)) == [] for a in owned[::3])
    assert 0.9 < sum(bool(a.washing_w) for a in consuming) / len(consuming) <= 1
    assert 0.5 < sum(bool(a.dishwasher_w) for a in consuming) / len(consuming) < 0.7
    assert 0.35 < sum(bool(a.water_heater_w) for a in consuming) / len(consuming) < 0.55
    assert 0.12 < sum(bool(a.car_charger_w) for a in consuming) / len(consuming) < 0.28


def test_each_use_has_a_realistic_draw_and_its_usual_start_within_its_window() -> None:
    for day, use in every_use(60, 14):
        assert day <= use.earliest <= use.rigid_start
        assert use.rigid_start + use.duration_seconds <= use.deadline <= day + DAY
        start = local_hour(use.rigid_start, day)
        if use.appliance in ("washing machine", "dishwasher"):
            assert (use.duration_seconds, use.earliest, use.interruptible) == (2 * HOUR, day, False)
            assert use.deadline == use.rigid_start + use.duration_seconds
            assert 800 <= use.energy_wh <= 1500
            assert 18 <= start <= 20 if use.appliance == "washing machine" else 20.5 <= start <= 22
        elif use.appliance == "water heater":
            assert (start, use.earliest, use.deadline, use.interruptible) == (23, day, day + DAY, True)
            assert use.power_w in (1800, 2200, 3000)
            assert 1.6 * HOUR <= use.duration_seconds <= 3.6 * HOUR
        else:
            assert use.appliance == "electric car"
            assert 18 <= start <= 19
            home = day if weekend(day) else use.rigid_start  # at the weekend the car is home all day
            assert (use.earliest, use.deadline, use.interruptible) == (home, day + DAY, True)
            assert use.power_w in (3700, 7400)
            assert 4900 <= use.energy_wh <= 12_100


def test_the_appliance_day_starts_at_seven_local() -> None:
    day = seven_am(2026, 12, 6)

    assert day_start(day) == day_start(day + DAY - 1) == day
    assert day_start(day - 1) == day - DAY


@pytest.mark.parametrize("seconds", [97, 900, 1800, 3600])
def test_a_use_draws_exactly_its_energy_however_the_day_is_cut(seconds: int) -> None:
    day = seven_am(2026, 3, 2)
    before, after = day - DAY, day + 3 * DAY
    cuts = list(pairwise(range(before, after + seconds, seconds)))
    for _, use in every_use(12, 3):
        paused = Running(use, ((use.rigid_start, use.rigid_start + 1234), (day + 20 * HOUR, day + 23 * HOUR)))
        for running in (rigid(use), paused):
            assert sum(running.energy_wh(a, b) for a, b in cuts) == running.energy_wh(before, after)
        assert rigid(use).energy_wh(before, after) == use.energy_wh


def test_a_consumers_appliances_add_exactly_their_energy_to_its_import_index() -> None:
    kinds = CYCLE * 6
    day = seven_am(2026, 1, 12)
    owned = [household_appliances(kind, SEED, i) for i, kind in enumerate(kinds)]
    uses = [[rigid(u) for d in range(2) for u in a.uses(day + d * DAY)] for a in owned]

    plain = simulate(kinds, day, 900, 192, SEED)
    loaded = simulate(kinds, day, 900, 192, SEED, extra=lambda h, a, b: sum(r.energy_wh(a, b) for r in uses[h]))

    for household, kind in enumerate(kinds):
        added = [sum(r.energy_wh(day + k * 900, day + (k + 1) * 900) for r in uses[household]) for k in range(192)]
        with_them, without = loaded[household], plain[household]
        if kind is MeterKind.CONSUMER:
            assert [a - b for a, b in zip(deltas(with_them.imports), deltas(without.imports), strict=True)] == added
            assert with_them.imports[-1] - without.imports[-1] == sum(r.use.energy_wh for r in uses[household])
        if kind is MeterKind.PROSUMER:  # its own PV serves them first: the net moves by their energy, to the Wh
            net = [i - e for i, e in zip(deltas(with_them.imports), deltas(with_them.exports), strict=True)]
            before = [i - e for i, e in zip(deltas(without.imports), deltas(without.exports), strict=True)]
            assert all(abs(n - b - a) <= 1 for n, b, a in zip(net, before, added, strict=True))
        if kind is MeterKind.PRODUCER:
            assert with_them == without
    assert all(uses[h] for h in range(1, 18, 3))


def deltas(indices: list[int]) -> list[int]:
    return [after - before for before, after in pairwise(indices)]


def test_the_meter_subscription_covers_the_appliances_and_is_unchanged_without_them() -> None:
    household_profiles = profiles(CYCLE * 10, SEED)

    for profile, appliances in zip(household_profiles, neighbourhood(30), strict=True):
        plain, with_appliances = profile.meter_limits(), profile.meter_limits(appliances.peak_w)
        assert with_appliances[1] == plain[1]
        assert with_appliances[0] >= max(plain[0], min(36_000, appliances.peak_w))
        assert with_appliances[0] // 1000 in (0, *SUBSCRIPTIONS_KVA)


@pytest.mark.parametrize("day", range(1, 29, 3))
def test_the_weather_forced_sunny_gives_more_sun_than_cloudy_whatever_the_seeds_sky(day: int) -> None:
    producer = profiles([MeterKind.PRODUCER], SEED)[0]
    noon = int(datetime(2026, 4, day, 12, tzinfo=LOCAL).timestamp())

    sunny = interval_energy(producer, noon, 3600, SEED, 0, WEATHER["sunny"])[1]
    cloudy = interval_energy(producer, noon, 3600, SEED, 0, WEATHER["cloudy"])[1]

    assert sunny > 2 * cloudy > 0


def sunny_day(day: int) -> list[Expected]:
    """A day of 15-minute steps: 400 Wh of consumption each, 1.5 kWh of production from 10:00 to 16:00."""
    steps = []
    for k in range(96):
        start = day + k * 900
        sun = 10 <= local_hour(start, day) < 16
        steps.append(Expected(start, start + 900, 400, 1500 if sun else 0))
    return steps


def test_uses_planned_on_the_signal_run_in_the_sun_within_their_windows_without_piling_up() -> None:
    day = seven_am(2026, 6, 1)
    washing = Use("washing machine", 600, 2 * HOUR, day + 12 * HOUR, day, day + 14 * HOUR)
    heater = Use("water heater", 3000, 3 * HOUR, day + 16 * HOUR, day, day + DAY, interruptible=True)
    car = Use("electric car", 7400, 2 * HOUR, day + 11 * HOUR, day + 11 * HOUR, day + DAY, interruptible=True)

    planned = follow_signal([heater, heater, washing, car], sunny_day(day))

    for running in planned:
        assert running.use.earliest <= running.runs[0][0]
        assert running.runs[-1][1] <= running.use.deadline
        assert sum(b - a for a, b in running.runs) == running.use.duration_seconds
    first, second, washer, charge = planned
    for running in (first, second, washer):
        assert all(local_hour(a, day) >= 10 and local_hour(b, day) <= 16 for a, b in running.runs)
    assert not {a for a, _ in first.runs} & {a for a, _ in second.runs}  # the second heater sees the first's load
    assert charge.runs == ((car.rigid_start, car.rigid_start + car.duration_seconds),)  # no sun after 18:00
