"""Shiftable appliances behind a simulated household's meter: a washing machine, a dishwasher, an electric
water heater and an electric car, their uses day by day, when a household starts them without a signal and
how far one that follows the signal may move them.

Like the rest of the simulation, every figure is drawn from (seed, household, day), never from evaluation
order. An appliance day runs from 07:00 to 07:00 the next morning (local time): each use's window lies
within its day, so two runs that place the uses differently still draw the same energy over a day.

What a household owns, and its appliances' draws (each runs at its cycle's mean power):

- washing machine, 95 % of households: a 2 h cycle of 0.8-1.4 kWh (its 2 kW heater runs only the first
  part of it), on 60 % of days, started after work (18:00-20:00); may run any time from 07:00, done by then;
- dishwasher, 60 %: a 2 h cycle of 1.0-1.5 kWh on 70 % of days, started after dinner (20:30-22:00); may run
  any time from 07:00, done by then;
- electric water heater, 45 % (France's share of homes): 1.8, 2.2 or 3 kW (150, 200 or 300 l), 2-3 h a
  day, started at 23:00 by the off-peak (heures creuses) contact; may heat any time of the day, pausing
  as it likes (a thermostat), hot by 07:00;
- electric car, 20 %: a 3.7 or 7.4 kW charger, 5-12 kWh on 70 % of days, plugged in on arrival
  (18:00-19:00) and charged by 07:00. On working days it is away in daylight (commuting): the signal can
  only ever tell it to charge at night, as it would anyway; at the weekend it is home from the morning,
  and a household that follows the signal may charge it in the day.

Producers have none: their meter only injects.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from daisee.domain import MeterKind
from daisee.flex.forecast import Expected
from daisee.flex.planner import Bookings, Task
from daisee.simulation import LOCAL_OFFSET_SECONDS

DAY_START_HOUR = 7  # an appliance day starts at 07:00 local
_HOUR = 3600
_DAY = 86_400
_CYCLE_HOURS = 2  # a washing machine's or a dishwasher's


@dataclass(frozen=True)
class Use:
    """One use of an appliance: `duration_seconds` at `power_w`, started at `rigid_start` by a household that
    does not follow the signal, within [earliest, deadline] by one that does."""

    appliance: str
    power_w: int
    duration_seconds: int
    rigid_start: int
    earliest: int
    deadline: int
    interruptible: bool = False

    @property
    def energy_wh(self) -> int:
        return self.power_w * self.duration_seconds // _HOUR

    def task(self) -> Task:
        return Task(self.duration_seconds, self.power_w, self.deadline, self.interruptible)


@dataclass(frozen=True)
class Running:
    """A use and the [start, end) periods it runs in."""

    use: Use
    runs: tuple[tuple[int, int], ...]

    def energy_wh(self, start: int, end: int) -> int:
        """Whole Wh drawn over [start, end): the periods' energies add up to exactly the use's."""
        return self._drawn_by(end) - self._drawn_by(start)

    def _drawn_by(self, instant: int) -> int:
        seconds = sum(max(0, min(end, instant) - begin) for begin, end in self.runs)
        return self.use.power_w * seconds // _HOUR


def rigid(use: Use) -> Running:
    """The use as a household runs it without a signal."""
    return Running(use, ((use.rigid_start, use.rigid_start + use.duration_seconds),))


@dataclass(frozen=True)
class Appliances:
    """What one household owns: each appliance's mean power in W (0: none), and its water heater's daily hours."""

    seed: int
    household: int
    washing_w: int = 0
    dishwasher_w: int = 0
    water_heater_w: int = 0
    water_heater_hours: float = 0.0
    car_charger_w: int = 0

    @property
    def peak_w(self) -> int:
        """The power of everything running at once."""
        return self.washing_w + self.dishwasher_w + self.water_heater_w + self.car_charger_w

    def uses(self, day_start: int) -> list[Use]:
        """The uses of the appliance day starting at `day_start` (07:00 local)."""
        rng = random.Random(f"daisee-sim/{self.seed}/uses/{self.household}/{day_start}")
        done_by = day_start + _DAY
        found = []
        if self.washing_w and rng.random() < 0.6:
            found.append(_cycle("washing machine", self.washing_w, _at(day_start, rng.uniform(18, 20)), day_start))
        if self.dishwasher_w and rng.random() < 0.7:
            found.append(_cycle("dishwasher", self.dishwasher_w, _at(day_start, rng.uniform(20.5, 22)), day_start))
        if self.water_heater_w:
            seconds = _minutes(self.water_heater_hours * rng.uniform(0.8, 1.2) * _HOUR)
            off_peak = _at(day_start, 23)
            found.append(Use("water heater", self.water_heater_w, seconds, off_peak, day_start, done_by, True))
        if self.car_charger_w and rng.random() < 0.7:
            arrival = _at(day_start, rng.uniform(18, 19))
            seconds = _minutes(rng.uniform(5000, 12000) * _HOUR / self.car_charger_w)
            home = day_start if weekend(day_start) else arrival
            found.append(Use("electric car", self.car_charger_w, seconds, arrival, home, done_by, True))
        return found


def household_appliances(kind: MeterKind, seed: int, household: int) -> Appliances:
    """The appliances of household number `household` (none for a producer), the same for the same `seed`."""
    if kind is MeterKind.PRODUCER:
        return Appliances(seed, household)
    rng = random.Random(f"daisee-sim/{seed}/appliances/{household}")
    return Appliances(
        seed,
        household,
        washing_w=round(rng.uniform(800, 1400) / _CYCLE_HOURS) if rng.random() < 0.95 else 0,
        dishwasher_w=round(rng.uniform(1000, 1500) / _CYCLE_HOURS) if rng.random() < 0.6 else 0,
        water_heater_w=rng.choices((1800, 2200, 3000), weights=(3, 5, 2))[0] if rng.random() < 0.45 else 0,
        water_heater_hours=rng.uniform(2, 3),
        car_charger_w=rng.choice((3700, 7400)) if rng.random() < 0.2 else 0,
    )


def day_start(timestamp: int) -> int:
    """The start (07:00 local) of the appliance day `timestamp` falls in."""
    shifted = timestamp + LOCAL_OFFSET_SECONDS - DAY_START_HOUR * _HOUR
    return timestamp - shifted % _DAY


def follow_signal(uses: Sequence[Use], steps: Sequence[Expected]) -> list[Running]:
    """Each use planned on the loop's signal in turn, within its window, each seeing the load of those before;
    a use the signal promises no sun to spare keeps to its usual start."""
    bookings = Bookings(steps)
    planned = []
    for use in uses:
        chosen = bookings.book(use.task(), use.earliest)
        planned.append(Running(use, chosen.runs) if chosen.local_wh > 0 else rigid(use))
    return planned


def _cycle(appliance: str, power_w: int, start: int, day_start: int) -> Use:
    """A cycle started at `start`, which may run earlier from `day_start`, done by the time it would be."""
    seconds = _CYCLE_HOURS * _HOUR
    return Use(appliance, power_w, seconds, start, day_start, start + seconds)


def weekend(day_start: int) -> bool:
    """Whether the appliance day from `day_start` is a Saturday or a Sunday (1970-01-01 was a Thursday)."""
    return ((day_start + LOCAL_OFFSET_SECONDS) // _DAY + 3) % 7 >= 5


def _minutes(seconds: float) -> int:
    return round(seconds / 60) * 60


def _at(day_start: int, hour: float) -> int:
    """`hour` (7 to 31) of the appliance day from `day_start`, to the minute."""
    return day_start + round((hour - DAY_START_HOUR) * 60) * 60
