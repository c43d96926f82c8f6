"""When to run a shiftable task (a washing machine, a dishwasher, a water heater, an EV charge) so that it
uses the loop's sun to spare.

A plan counts only what the loop would otherwise export: a load of L Wh in a step where the loop expects
production P and consumption C uses min(L, P - C) of its surplus (none when P <= C). Under the pro-rata key
the load is allocated L * P / (C + L) when that is less than L, and what it gets beyond the surplus is taken
from the neighbours: a plan weighs it against what it uses and never gains by it. A task that cannot pause
runs in the window of its length that uses the most surplus net of what it takes; of equals, the one that
leaves the most surplus in its tightest step (a forecast's error then falls on spare sun rather than on a
neighbour's share), then the earliest; when none gains, it keeps to its latest start, as it would run
without the signal. A task that can pause (`interruptible`) runs in the steps with the most sun to spare,
each only as long as its spare lasts, and the rest as late as it may. `Bookings` plans several tasks in
turn, each seeing the load of those planned before it, as households sharing one signal would otherwise all
pick the same hour.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from daisee.errors import DaiseeError
from daisee.flex.forecast import Expected
from daisee.flex.signal import local_time

_HOUR = 3600


@dataclass(frozen=True)
class Task:
    """`duration_seconds` at `power_w`, to be done by `deadline` (epoch seconds)."""

    duration_seconds: int
    power_w: int
    deadline: int
    interruptible: bool = False

    def __post_init__(self) -> None:
        if self.duration_seconds <= 0 or self.power_w <= 0:
            raise DaiseeError("a task needs a positive duration and power, e.g. --duration 2h --power 2000")


@dataclass(frozen=True)
class Plan:
    """When the task runs: `runs` are its [start, end) periods (one unless it may pause)."""

    runs: tuple[tuple[int, int], ...]
    energy_wh: int
    local_wh: int  # of it, what the loop's sun to spare is expected to supply

    @property
    def start(self) -> int:
        return self.runs[0][0]

    @property
    def end(self) -> int:
        return self.runs[-1][1]

    def as_json(self, tz: ZoneInfo) -> dict[str, object]:
        return {
            "start": local_time(self.start, tz),
            "end": local_time(self.end, tz),
            "runs": [{"start": local_time(a, tz), "end": local_time(b, tz)} for a, b in self.runs],
            "energy_wh": self.energy_wh,
            "local_wh": self.local_wh,
            "local_share": round(self.local_wh / self.energy_wh, 3) if self.energy_wh else 0.0,
        }


def plan(steps: Sequence[Expected], task: Task, now: int) -> Plan:
    """The best plan for `task` from `now`, on the signal's `steps`."""
    if task.deadline - now < task.duration_seconds:
        raise DaiseeError(
            f"a task of {_hours(task.duration_seconds)} cannot be done by the deadline, "
            f"{_hours(max(0, task.deadline - now))} from now: give a later deadline or a shorter duration"
        )
    ahead = [s for s in steps if s.end > now and s.start < task.deadline]
    if task.interruptible:
        return _paused(ahead, task, now)
    return _window(ahead, task, now)


def _local_wh(step: Expected, power_w: int, seconds: int, within: int | None = None) -> float:
    """The surplus of `step` a load of `power_w` for `seconds` uses, of the surplus its `within` seconds
    hold (by default the load's own: the surplus spread evenly over the step)."""
    return min(power_w * seconds / _HOUR, _spare_of(step, seconds if within is None else within))


def _overlap(step: Expected, start: int, end: int) -> int:
    return max(0, min(step.end, end) - max(step.start, start))


def _spare_wh(step: Expected, power_w: int, seconds: int) -> float:
    """The surplus `step` would have left with the load: what a forecast may overstate before the load
    takes a neighbour's share."""
    return step.surplus_wh - power_w * seconds / _HOUR


def _window(ahead: Sequence[Expected], task: Task, now: int) -> Plan:
    latest = task.deadline - task.duration_seconds
    starts = [now, *(s.start for s in ahead if now < s.start <= latest), latest]

    def scored(start: int) -> tuple[float, float, float]:
        """The surplus a run from `start` uses, that net of the neighbours' loss, and its tightest spare."""
        end = start + task.duration_seconds
        within = [(s, _overlap(s, start, end)) for s in ahead if s.start < end]
        local = sum(_local_wh(s, task.power_w, seconds) for s, seconds in within)
        net = local - sum(_taken_wh(s, task.power_w, seconds) for s, seconds in within)
        spare = min((_spare_wh(s, task.power_w, seconds) for s, seconds in within if seconds), default=-math.inf)
        return local, net, spare

    scores = {start: scored(start) for start in starts}
    top = max(net for _, net, _ in scores.values())
    if top <= 1e-9:  # nothing gained: as it would run without the signal
        best_start = latest
    else:  # of equals, the most sun left in the tightest step, then the earliest
        equals = [start for start, (_, net, _) in scores.items() if net >= top - 1e-9]
        best_start = min(equals, key=lambda start: (-scores[start][2], start))
    return Plan(((best_start, best_start + task.duration_seconds),), _energy(task), round(scores[best_start][0]))


def _taken_wh(step: Expected, power_w: int, seconds: int) -> float:
    """What a load of `power_w` over `seconds` of `step` would be allocated, under the pro-rata key, beyond
    the surplus it uses: a share the neighbours lose."""
    load = power_w * seconds / _HOUR
    if not load or step.production_wh <= 0:
        return 0.0
    with_load = step.consumption_wh + load
    allocated = load if with_load <= step.production_wh else load * step.production_wh / with_load
    return max(0.0, allocated - _local_wh(step, power_w, seconds))


def _paused(ahead: Sequence[Expected], task: Task, now: int) -> Plan:
    """In the steps with the most sun to spare, each for as long as its spare lasts (a thermostat or a
    charger pauses within a step); the rest as late as it may, as it would run without the signal."""
    usable = [(s, max(s.start, now), min(s.end, task.deadline)) for s in ahead]
    usable = [(s, start, end) for s, start, end in usable if start < end]
    left, chosen = task.duration_seconds, []
    ran: dict[int, int] = {}  # seconds run in each step, by its start
    for step, start, end in sorted(usable, key=lambda u: (-_spare_rate(u[0]), u[1])):
        if left <= 0:
            break
        seconds = min(left, _seconds_of_spare(step, task.power_w, end - start))
        if seconds <= 0:
            continue
        chosen.append((start, start + seconds))
        ran[step.start] = seconds
        left -= seconds
    for step, start, end in sorted(usable, key=lambda u: -u[1]):
        seconds = min(left, end - start - ran.get(step.start, 0))
        if seconds > 0:
            chosen.append((end - seconds, end))
            ran[step.start] = ran.get(step.start, 0) + seconds
            left -= seconds
    if left > 0:  # the deadline lies beyond the signal: the rest runs after it, with no sun expected
        tail = max([now, *(s.end for s in ahead)])
        chosen.append((tail, tail + left))
    local = sum(_local_wh(step, task.power_w, ran.get(step.start, 0), end - start) for step, start, end in usable)
    return Plan(_merged(sorted(chosen)), _energy(task), round(local))


def _spare_rate(step: Expected) -> float:
    return _spare_of(step, 1)


def _spare_of(step: Expected, seconds: int) -> float:
    """The surplus `seconds` of `step` hold, spread evenly over it."""
    return max(0, step.surplus_wh) * seconds / (step.end - step.start)


def _seconds_of_spare(step: Expected, power_w: int, seconds: int) -> int:
    """How long, in whole minutes of `seconds` of `step`, a load of `power_w` can run on its surplus alone."""
    return min(seconds, int(_spare_of(step, seconds) * _HOUR / power_w) // 60 * 60)


def _merged(runs: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in runs:
        if merged and merged[-1][1] == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _energy(task: Task) -> int:
    return round(task.power_w * task.duration_seconds / _HOUR)


def _hours(seconds: int) -> str:
    return f"{seconds / _HOUR:g} h"


class Bookings:
    """Tasks planned in turn on one signal, each adding its load to the steps it runs in."""

    def __init__(self, steps: Sequence[Expected]) -> None:
        self.steps = list(steps)

    def book(self, task: Task, now: int) -> Plan:
        chosen = plan(self.steps, task, now)
        self.steps = [_with_load(s, task.power_w, chosen.runs) for s in self.steps]
        return chosen


def _with_load(step: Expected, power_w: int, runs: Sequence[tuple[int, int]]) -> Expected:
    seconds = sum(_overlap(step, start, end) for start, end in runs)
    return replace(step, consumption_wh=step.consumption_wh + round(power_w * seconds / _HOUR)) if seconds else step


_UNITS = {"h": _HOUR, "min": 60, "m": 60}


def parse_duration(text: str) -> int:
    """Seconds in `2h`, `90min`, `1h30` or `45m`."""
    rest, seconds = text.strip().lower(), 0
    for unit in ("h", "min", "m"):
        number, found, after = rest.partition(unit)
        if found and number.isdigit():
            seconds += int(number) * _UNITS[unit]
            rest = after
    if rest.isdigit() and seconds >= _HOUR and seconds % _HOUR == 0:  # 1h30: the minutes after the hours
        seconds, rest = seconds + int(rest) * 60, ""
    if rest or not 0 < seconds <= 7 * 24 * _HOUR:
        raise DaiseeError(f"duration {text!r}: give hours and minutes, e.g. 2h, 90min or 1h30 (at most a week)")
    return seconds


def parse_deadline(text: str, now: int, tz: ZoneInfo) -> int:
    """The epoch of `18:00` (the next one in `tz`) or of an ISO 8601 date and time (`tz` if it has no offset)."""
    local_now = datetime.fromtimestamp(now, UTC).astimezone(tz)
    try:
        clock = time.fromisoformat(text.strip())
    except ValueError:
        clock = None
    if clock is not None and clock.tzinfo is None:
        at = datetime.combine(local_now.date(), clock, tz)
        if at <= local_now:
            at = datetime.combine(local_now.date() + timedelta(days=1), clock, tz)
        return int(at.timestamp())
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DaiseeError(
            f"deadline {text!r}: give a local time (18:00) or a date and time (2026-06-01T18:00+02:00)"
        ) from None
    return int((at if at.tzinfo else at.replace(tzinfo=tz)).timestamp())
