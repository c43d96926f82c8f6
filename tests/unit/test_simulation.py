"""Simulated households: determinism, meter-index invariants and plausible load and PV energy."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.domain import MeterKind
from daisee.errors import DaiseeError
from daisee.simulation import (
    LOCAL_OFFSET_SECONDS,
    MeterTrace,
    Profile,
    clearness,
    interval_energy,
    profiles,
    simulate,
)

LOCAL = timezone(timedelta(seconds=LOCAL_OFFSET_SECONDS))
CYCLE = [MeterKind.PRODUCER, MeterKind.CONSUMER, MeterKind.PROSUMER]
SEED = 7


def local_time(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """Unix seconds of a wall-clock time in the simulation's local time."""
    return int(datetime(year, month, day, hour, minute, tzinfo=LOCAL).timestamp())


def neighbourhood(count: int, seed: int = SEED) -> tuple[list[MeterKind], list[Profile]]:
    kinds = [CYCLE[i % len(CYCLE)] for i in range(count)]
    return kinds, profiles(kinds, seed)


def day_with_sky(year: int, month: int, *, clear: bool, seed: int = SEED) -> int:
    """Local midnight of the first day of the month whose sky is clear (>= 0.9) or overcast (<= 0.4)."""
    for day in range(1, 29):
        midnight = local_time(year, month, day)
        sky = clearness(midnight, seed)
        if (sky >= 0.9) if clear else (sky <= 0.4):
            return midnight
    raise AssertionError(f"no {'clear' if clear else 'overcast'} day in {year}-{month:02d} for seed {seed}")


def deltas(indices: list[int]) -> list[int]:
    return [after - before for before, after in pairwise(indices)]


# --- determinism -------------------------------------------------------------------------------


def test_simulate_gives_identical_traces_for_identical_inputs() -> None:
    kinds = CYCLE * 4
    genesis = local_time(2024, 6, 21)

    first = simulate(kinds, genesis, 900, 96, seed=SEED)
    second = simulate(kinds, genesis, 900, 96, seed=SEED)

    assert first == second
    assert profiles(kinds, SEED) == profiles(kinds, SEED)


def test_a_different_seed_gives_different_profiles_and_traces() -> None:
    kinds = CYCLE * 4
    genesis = local_time(2024, 6, 21)

    assert profiles(kinds, 1) != profiles(kinds, 2)
    assert simulate(kinds, genesis, 900, 96, seed=1) != simulate(kinds, genesis, 900, 96, seed=2)


def test_a_household_does_not_depend_on_its_neighbours_or_on_evaluation_order() -> None:
    kinds = CYCLE * 5
    genesis = local_time(2024, 4, 2, 6)
    full = simulate(kinds, genesis, 900, 24, seed=SEED)
    prefix = simulate(kinds[:4], genesis, 900, 24, seed=SEED)
    profile = profiles(kinds, SEED)[8]

    backwards = [interval_energy(profile, genesis + k * 900, 900, SEED, 8) for k in reversed(range(24))]

    assert full[:4] == prefix
    assert [i for i, _ in reversed(backwards)] == deltas(full[8].imports)
    assert [e for _, e in reversed(backwards)] == deltas(full[8].exports)


def test_twin_households_differ_interval_by_interval_through_their_own_noise() -> None:
    prosumer = profiles([MeterKind.PROSUMER], SEED)[0]
    day = local_time(2024, 6, 21)

    def day_of(household: int) -> list[tuple[int, int]]:
        return [interval_energy(prosumer, day + k * 900, 900, SEED, household) for k in range(96)]

    differing = sum(a != b for a, b in zip(day_of(0), day_of(1), strict=True))

    assert day_of(0) == day_of(0)
    assert differing > 80


def test_simulate_with_zero_intervals_gives_only_the_genesis_indices() -> None:
    kinds, household_profiles = neighbourhood(3)

    traces = simulate(kinds, local_time(2024, 1, 1), 900, 0, seed=SEED)

    assert traces == [MeterTrace([p.initial_import_wh], [p.initial_export_wh]) for p in household_profiles]


# --- profiles ----------------------------------------------------------------------------------


def test_profiles_follow_the_meter_kind() -> None:
    kinds, household_profiles = neighbourhood(300)

    assert [p.kind for p in household_profiles] == kinds
    for p in household_profiles:
        if p.kind is MeterKind.CONSUMER:
            assert p.pv_kwp == 0
            assert p.initial_export_wh == 0
        else:
            assert 0 <= p.initial_export_wh <= 5_000_000
        if p.kind is MeterKind.PRODUCER:
            assert 3 <= p.pv_kwp <= 36
            assert p.annual_kwh == 0
            assert p.initial_import_wh == 0
        else:
            assert 1500 <= p.annual_kwh <= 9000
            assert 0 <= p.initial_import_wh <= 30_000_000
        if p.kind is MeterKind.PROSUMER:
            assert 2 <= p.pv_kwp <= 9


def test_profiles_spread_over_their_ranges() -> None:
    _, household_profiles = neighbourhood(300)
    producers = [p.pv_kwp for p in household_profiles if p.kind is MeterKind.PRODUCER]
    consumption = [p.annual_kwh for p in household_profiles if p.kind is not MeterKind.PRODUCER]

    assert min(producers) < 5
    assert max(producers) > 25
    assert min(consumption) < 2500
    assert max(consumption) > 8000
    assert len({p.evening_hour for p in household_profiles}) == len(household_profiles)


# --- meter-index invariants ----------------------------------------------------------------------


def test_indices_never_decrease_and_only_move_in_the_meters_direction() -> None:
    kinds, household_profiles = neighbourhood(30)

    traces = simulate(kinds, local_time(2024, 5, 14), 900, 96, seed=SEED)

    for trace, profile in zip(traces, household_profiles, strict=True):
        assert len(trace.imports) == len(trace.exports) == 97
        assert trace.imports[0] == profile.initial_import_wh
        assert trace.exports[0] == profile.initial_export_wh
        assert all(delta >= 0 for delta in deltas(trace.imports) + deltas(trace.exports))
        if profile.kind is MeterKind.CONSUMER:
            assert set(trace.exports) == {0}
            assert trace.imports[-1] > trace.imports[0]
        if profile.kind is MeterKind.PRODUCER:
            assert set(trace.imports) == {0}
            assert trace.exports[-1] > trace.exports[0]
        if profile.kind is MeterKind.PROSUMER:
            assert trace.imports[-1] > trace.imports[0]
            assert trace.exports[-1] > trace.exports[0]


@pytest.mark.parametrize("seconds", [0, -900])
def test_a_non_positive_interval_length_is_refused(seconds: int) -> None:
    profile = profiles([MeterKind.CONSUMER], SEED)[0]

    with pytest.raises(DaiseeError, match="positive length"):
        interval_energy(profile, local_time(2024, 1, 1), seconds, SEED, 0)
    with pytest.raises(DaiseeError, match="positive length"):
        simulate([MeterKind.CONSUMER], local_time(2024, 1, 1), seconds, 4, SEED)


def test_a_negative_interval_count_is_refused() -> None:
    with pytest.raises(DaiseeError, match="zero or more"):
        simulate([MeterKind.CONSUMER], local_time(2024, 1, 1), 900, -1, SEED)


# --- photovoltaics -------------------------------------------------------------------------------


@pytest.mark.parametrize(("month", "day"), [(1, 15), (3, 20), (6, 21), (9, 1), (12, 21)])
def test_producers_export_nothing_at_two_in_the_morning(month: int, day: int) -> None:
    _, household_profiles = neighbourhood(60)
    two_am = local_time(2024, month, day, 2)

    producers = [(h, p) for h, p in enumerate(household_profiles) if p.kind is MeterKind.PRODUCER]

    assert [interval_energy(p, two_am, 900, SEED, h) for h, p in producers] == [(0, 0)] * 20


def test_producers_export_around_noon_on_a_clear_summer_day() -> None:
    _, household_profiles = neighbourhood(60)
    noon = day_with_sky(2024, 6, clear=True) + 12 * 3600 + 1800
    producers = [(h, p) for h, p in enumerate(household_profiles) if p.kind is MeterKind.PRODUCER]

    kw_per_kwp = [interval_energy(p, noon, 900, SEED, h)[1] * 4 / 1000 / p.pv_kwp for h, p in producers]

    assert len(producers) == 20
    assert all(0.5 < specific < 0.8 for specific in kw_per_kwp), kw_per_kwp


def test_prosumers_import_at_night_and_export_at_a_sunny_noon() -> None:
    _, household_profiles = neighbourhood(90)
    clear_day = day_with_sky(2024, 7, clear=True)
    prosumers = [(h, p) for h, p in enumerate(household_profiles) if p.kind is MeterKind.PROSUMER and p.pv_kwp >= 5]

    assert len(prosumers) >= 10
    for household, profile in prosumers:
        night_import, night_export = interval_energy(profile, clear_day + 2 * 3600, 900, SEED, household)
        noon_import, noon_export = interval_energy(profile, clear_day + 12 * 3600 + 1800, 900, SEED, household)
        assert night_import > 0
        assert night_export == 0
        assert noon_import == 0
        assert noon_export > 0


def test_neighbours_share_the_weather_every_roof_yields_more_on_a_clear_day() -> None:
    _, household_profiles = neighbourhood(60)
    clear_noon = day_with_sky(2024, 6, clear=True) + 12 * 3600 + 1800
    overcast_noon = day_with_sky(2024, 6, clear=False) + 12 * 3600 + 1800

    for household, profile in enumerate(household_profiles):
        if profile.kind is MeterKind.PRODUCER:
            clear = interval_energy(profile, clear_noon, 900, SEED, household)[1]
            overcast = interval_energy(profile, overcast_noon, 900, SEED, household)[1]
            assert clear > overcast > 0


def test_clearness_is_one_value_per_local_day_within_its_ranges() -> None:
    midnight = local_time(2024, 3, 10)

    for day in range(60):
        start = midnight + day * 86_400
        sky = clearness(start, SEED)
        assert clearness(start + 86_399, SEED) == sky
        assert 0.2 <= sky <= 1.0
        assert not 0.8 < sky < 0.85
    assert clearness(midnight, SEED) != clearness(midnight, SEED + 1)


def test_summer_pv_yield_per_kwp_exceeds_winter_yield() -> None:
    profile = profiles([MeterKind.PRODUCER], SEED)[0]

    def kwh_per_kwp_per_day(month: int) -> float:
        start = local_time(2024, month, 1)
        wh = sum(interval_energy(profile, start + hour * 3600, 3600, SEED, 0)[1] for hour in range(28 * 24))
        return wh / 1000 / profile.pv_kwp / 28

    june, december = kwh_per_kwp_per_day(6), kwh_per_kwp_per_day(12)

    assert 3 < june < 7
    assert 0.3 < december < 2
    assert june > 2 * december


# --- consumption ---------------------------------------------------------------------------------


def test_yearly_consumption_of_a_consumer_matches_its_annual_kwh() -> None:
    profile = profiles([MeterKind.CONSUMER], SEED)[0]
    start = local_time(2023, 1, 1)

    wh = sum(interval_energy(profile, start + hour * 3600, 3600, SEED, 0)[0] for hour in range(365 * 24))

    assert wh / 1000 == pytest.approx(profile.annual_kwh, rel=0.05)


def test_consumers_draw_more_in_the_evening_than_at_night_and_more_in_winter_than_in_summer() -> None:
    kinds = [MeterKind.CONSUMER] * 30

    def imported(month: int, hour: int) -> int:
        traces = simulate(kinds, local_time(2024, month, 10, hour), 3600, 2, seed=SEED)
        return sum(trace.imports[-1] - trace.imports[0] for trace in traces)

    assert imported(1, 19) > 2 * imported(1, 3)
    assert imported(1, 19) > imported(7, 19)


# --- any input -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(MeterKind), min_size=1, max_size=20),
    seed=st.integers(min_value=-(2**63), max_value=2**63),
    genesis=st.integers(min_value=local_time(2020, 1, 1), max_value=local_time(2040, 1, 1)),
    interval_seconds=st.sampled_from([300, 600, 900, 1800, 3600]),
    intervals=st.integers(min_value=1, max_value=10),
)
def test_any_simulation_gives_plausible_non_negative_integer_deltas(
    kinds: list[MeterKind], seed: int, genesis: int, interval_seconds: int, intervals: int
) -> None:
    max_wh = 40_000 * interval_seconds // 3600  # 40 kW on average over an interval

    traces = simulate(kinds, genesis, interval_seconds, intervals, seed)

    assert len(traces) == len(kinds)
    for kind, trace in zip(kinds, traces, strict=True):
        for indices in (trace.imports, trace.exports):
            assert len(indices) == intervals + 1
            assert all(type(index) is int and index >= 0 for index in indices)
            assert all(0 <= delta <= max_wh for delta in deltas(indices))
        if kind is MeterKind.CONSUMER:
            assert set(trace.exports) == {0}
        if kind is MeterKind.PRODUCER:
            assert len(set(trace.imports)) == 1


@pytest.mark.parametrize("seed", [1, 3, 7, 11])
def test_no_household_draws_or_injects_more_than_the_limits_it_is_admitted_with(seed: int) -> None:
    """The contract refuses a reading above limit x elapsed time: a simulated household must stay within
    its subscription and PV peak on every interval of a winter week (the heaviest loads), noise included."""
    kinds = [CYCLE[i % 3] for i in range(60)]
    genesis, seconds, intervals = local_time(2026, 1, 5), 900, 7 * 96
    for profile, trace in zip(profiles(kinds, seed), simulate(kinds, genesis, seconds, intervals, seed), strict=True):
        import_w, export_w = profile.meter_limits()
        assert all(delta * 3600 <= import_w * seconds for delta in deltas(trace.imports))
        assert all(delta * 3600 <= export_w * seconds for delta in deltas(trace.exports))
