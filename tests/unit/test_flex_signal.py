"""The signal's score, levels, native and Agile shapes, "best times today", and the planner's choices against a
brute-force reference."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daisee.errors import DaiseeError
from daisee.flex.forecast import Basis, Expected
from daisee.flex.planner import Bookings, Task, plan
from daisee.flex.signal import Signal, level, local_share, score

PARIS = ZoneInfo("Europe/Paris")
STEP = 900
MIDNIGHT = int(datetime(2026, 6, 1, tzinfo=PARIS).timestamp())
BASIS = Basis(96, 20.0, 0.9, 0)


def _steps(pairs: list[tuple[int, int]], first: int = MIDNIGHT) -> list[Expected]:
    """Steps from `first`, each (consumption, production) in Wh."""
    return [Expected(first + k * STEP, first + (k + 1) * STEP, c, p) for k, (c, p) in enumerate(pairs)]


@pytest.mark.parametrize(
    ("consumption", "production", "expected_score", "colour"),
    [
        (500, 0, 0, "red"),
        (500, 1, 0, "red"),
        (500, 50, 1, "orange"),
        (500, 249, 4, "orange"),
        (500, 250, 5, "yellow"),
        (500, 499, 9, "yellow"),
        (500, 500, 10, "green"),
        (0, 10, 10, "green"),
        (0, 0, 0, "red"),
    ],
)
def test_the_score_is_the_share_covered_in_tenths_and_ten_only_with_sun_to_spare(
    consumption: int, production: int, expected_score: int, colour: str
) -> None:
    step = Expected(0, STEP, consumption, production)
    assert score(step) == expected_score
    assert level(score(step)) == colour


def test_the_native_shape_is_the_demand_shaper_s_with_the_step_under_way() -> None:
    steps = _steps([(400, 0), (400, 300), (400, 900), (400, 100)])
    signal = Signal("0xLoop", MIDNIGHT + STEP + 60, STEP, steps, BASIS, PARIS)
    shown = signal.as_json()
    assert (shown["start"], shown["end"], shown["interval"]) == (MIDNIGHT, MIDNIGHT + 4 * STEP, STEP)
    assert shown["profile"] == [0, 7, 10, 2]
    assert shown["optimise"] == "max"
    assert shown["now"] == {
        "start": MIDNIGHT + STEP,
        "end": MIDNIGHT + 2 * STEP,
        "time": "2026-06-01T00:15:00+02:00",
        "production_wh": 300,
        "consumption_wh": 400,
        "surplus_wh": -100,
        "score": 7,
        "level": "yellow",
    }
    assert shown["best_today"] == [
        {
            "start": MIDNIGHT + 2 * STEP,
            "end": MIDNIGHT + 3 * STEP,
            "score": 10,
            "surplus_wh": 500,
            "from": "2026-06-01T00:30:00+02:00",
            "to": "2026-06-01T00:45:00+02:00",
        }
    ]


def test_agile_rows_price_an_extra_kwh_at_the_loop_s_share_newest_first() -> None:
    steps = _steps([(400, 0), (400, 200), (400, 800)])
    rows = Signal("0xLoop", MIDNIGHT, STEP, steps, BASIS, PARIS).agile(lambda start: 100, 250, 6)
    assert rows["count"] == 3
    assert [r["valid_from"] for r in rows["results"]] == [
        "2026-05-31T22:30:00Z",
        "2026-05-31T22:15:00Z",
        "2026-05-31T22:00:00Z",
    ]
    assert [r["value_exc_vat"] for r in rows["results"]] == [10.0, 17.5, 25.0]  # c€/kWh: loop 10, grid 25
    assert [r["value_inc_vat"] for r in rows["results"]] == [12.0, 21.0, 30.0]
    assert rows["results"][0]["valid_to"] == "2026-05-31T22:45:00Z"


def test_best_times_today_are_the_windows_as_good_as_the_day_s_best_and_none_without_sun() -> None:
    pairs = [(400, 0)] * 40 + [(400, 900)] * 4 + [(400, 300)] * 4 + [(400, 1000)] * 8 + [(400, 0)] * 40
    signal = Signal("0xLoop", MIDNIGHT + 30 * STEP, STEP, _steps(pairs), BASIS, PARIS)
    windows = signal.best_today()
    assert [(w.start, w.end, w.score) for w in windows] == [
        (MIDNIGHT + 40 * STEP, MIDNIGHT + 44 * STEP, 10),
        (MIDNIGHT + 48 * STEP, MIDNIGHT + 56 * STEP, 10),
    ]
    assert [w.surplus_wh for w in windows] == [4 * 500, 8 * 600]
    night = Signal("0xLoop", MIDNIGHT, STEP, _steps([(400, 0)] * 96), BASIS, PARIS)
    assert night.best_today() == []
    tomorrow_only = Signal("0xLoop", MIDNIGHT + 60 * STEP, STEP, _steps(pairs + pairs[:60]), BASIS, PARIS)
    assert tomorrow_only.best_today() == []


def _reference_local_wh(steps: list[Expected], power_w: int, start: int, end: int) -> float:
    """The loop's surplus a load run over [start, end) uses, step by step: min(L, P - C) spread evenly."""
    return sum(_used_and_allocated(step, power_w, start, end)[0] for step in steps)


def _reference_taken_wh(steps: list[Expected], power_w: int, start: int, end: int) -> float:
    """What the pro-rata key would allocate a load run over [start, end) beyond the surplus it uses: the
    neighbours' loss."""
    shares = (_used_and_allocated(step, power_w, start, end) for step in steps)
    return sum(max(0.0, allocated - used) for used, allocated in shares)


def _used_and_allocated(step: Expected, power_w: int, start: int, end: int) -> tuple[float, float]:
    seconds = max(0, min(step.end, end) - max(step.start, start))
    load = power_w * seconds / 3600
    used = min(load, max(0, step.production_wh - step.consumption_wh) * seconds / STEP)
    allocated = load * min(1.0, step.production_wh / (step.consumption_wh + load)) if load else 0.0
    return used, allocated


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000)), min_size=4, max_size=40),
    st.integers(1, 8),
    st.integers(100, 7000),
    st.integers(0, STEP - 1),
)
def test_a_window_gains_the_loop_most_sun_net_of_what_its_neighbours_lose(
    pairs: list[tuple[int, int]], duration_steps: int, power_w: int, late: int
) -> None:
    steps = _steps(pairs)
    now = MIDNIGHT + late
    deadline = steps[-1].end
    duration = duration_steps * STEP
    if deadline - now < duration:
        with pytest.raises(DaiseeError, match="cannot be done by the deadline"):
            plan(steps, Task(duration, power_w, deadline), now)
        return
    chosen = plan(steps, Task(duration, power_w, deadline), now)
    assert chosen.start >= now
    assert chosen.end <= deadline
    assert chosen.end - chosen.start == duration
    assert chosen.local_wh == round(_reference_local_wh(steps, power_w, chosen.start, chosen.end))

    def net(start: int) -> float:
        end = start + duration
        return _reference_local_wh(steps, power_w, start, end) - _reference_taken_wh(steps, power_w, start, end)

    starts = [now, *(s.start for s in steps if now < s.start <= deadline - duration), deadline - duration]
    best = max(net(s) for s in starts)
    if best > 1e-6:
        assert net(chosen.start) == pytest.approx(best, abs=1e-6)
    else:
        assert chosen.start == deadline - duration


def _reference_minutes_of_spare(step: Expected, power_w: int) -> int:
    spare_wh = max(0, step.production_wh - step.consumption_wh)
    return min(STEP, int(spare_wh * 3600 / power_w) // 60 * 60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000)), min_size=4, max_size=40), st.integers(1, 4))
def test_a_task_that_may_pause_runs_on_every_step_s_spare_and_no_more_than_its_duration(
    pairs: list[tuple[int, int]], duration_steps: int
) -> None:
    steps = _steps(pairs)
    task = Task(duration_steps * STEP, 2000, steps[-1].end, interruptible=True)
    paused = plan(steps, task, MIDNIGHT)
    assert sum(b - a for a, b in paused.runs) == task.duration_seconds
    assert all(a < b < c for (a, b), (c, _) in zip(paused.runs, paused.runs[1:], strict=False))
    ran = [sum(max(0, min(s.end, b) - max(s.start, a)) for a, b in paused.runs) for s in steps]
    spare = [max(0, s.production_wh - s.consumption_wh) for s in steps]
    local = sum(min(task.power_w * r / 3600, wh) for r, wh in zip(ran, spare, strict=True))
    assert paused.local_wh == round(local)  # a step's surplus goes to what runs in it, whenever in the step
    on_spare = min(task.duration_seconds, sum(_reference_minutes_of_spare(s, task.power_w) for s in steps))
    assert paused.local_wh >= round(task.power_w * on_spare / 3600)
    one_window = plan(steps, Task(task.duration_seconds, task.power_w, task.deadline), MIDNIGHT)
    assert paused.local_wh >= one_window.local_wh - task.power_w / 60 * len(steps)  # a minute a step at most


def test_a_washing_machine_waits_for_the_sun_and_the_next_one_for_the_sun_left() -> None:
    pairs = [(300, 0)] * 36 + [(300, 1000)] * 8 + [(300, 900)] * 8 + [(300, 0)] * 44
    steps = _steps(pairs)
    now, deadline = MIDNIGHT + 7 * 3600, MIDNIGHT + 22 * 3600
    washing = Task(2 * 3600, 2000, deadline)
    first = plan(steps, washing, now)
    assert (first.start, first.end) == (MIDNIGHT + 9 * 3600, MIDNIGHT + 11 * 3600)
    assert first.local_wh == 4000  # 500 Wh a step, of 700 to spare
    bookings = Bookings(steps)
    assert bookings.book(washing, now) == first
    second = bookings.book(washing, now)  # 9:00 has 200 Wh a step left: 11:00 has 600, all it needs
    assert (second.start, second.local_wh) == (MIDNIGHT + 11 * 3600, 4000)
    third = bookings.book(washing, now)
    assert (third.start, third.local_wh) == (MIDNIGHT + 9 * 3600, 8 * 200)


def test_a_task_the_sun_cannot_help_keeps_to_its_latest_start_and_takes_no_neighbour_s_share() -> None:
    steps = _steps([(300, 0)] * 36 + [(600, 400)] * 16 + [(300, 0)] * 44)  # some sun, none to spare
    deadline = MIDNIGHT + 21 * 3600
    chosen = plan(steps, Task(7200, 2000, deadline), MIDNIGHT + 7 * 3600)
    assert (chosen.start, chosen.end, chosen.local_wh) == (deadline - 7200, deadline, 0)
    paused = plan(steps, Task(3 * 3600, 2000, deadline, interruptible=True), MIDNIGHT + 7 * 3600)
    assert (paused.runs, paused.local_wh) == (((deadline - 3 * 3600, deadline),), 0)


@pytest.mark.parametrize(
    ("task", "cause"),
    [
        (lambda: Task(0, 2000, MIDNIGHT), "positive duration and power"),
        (lambda: Task(3600, 0, MIDNIGHT), "positive duration and power"),
    ],
)
def test_a_task_without_duration_or_power_is_refused(task: object, cause: str) -> None:
    with pytest.raises(DaiseeError, match=cause):
        task()  # type: ignore[operator]


def test_a_deadline_too_close_says_how_long_is_left() -> None:
    steps = _steps([(300, 0)] * 8)
    with pytest.raises(DaiseeError, match="a task of 2 h cannot be done by the deadline, 1 h from now"):
        plan(steps, Task(7200, 2000, MIDNIGHT + 3600), MIDNIGHT)


def test_local_share_is_the_covered_part_of_one_more_wh() -> None:
    assert local_share(Expected(0, STEP, 400, 100)) == 0.25
    assert local_share(Expected(0, STEP, 400, 800)) == 1.0
    assert local_share(Expected(0, STEP, 0, 0)) == 0.0


def test_of_plans_the_loop_covers_alike_the_one_with_the_most_sun_to_spare_is_taken() -> None:
    pairs = [(300, 0)] * 36 + [(300, 900)] * 4 + [(300, 2000)] * 4 + [(300, 0)] * 52
    steps = _steps(pairs)
    chosen = plan(steps, Task(3600, 2000, MIDNIGHT + 22 * 3600), MIDNIGHT + 7 * 3600)
    assert chosen.local_wh == 2000  # 9:00 would cover it all too, with 100 Wh left a step: 10:00 leaves 1,200
    assert chosen.start == MIDNIGHT + 10 * 3600
