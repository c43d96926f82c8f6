"""The loop's flexibility signal: for each step ahead, the expected surplus, a 0 to 10 score of how good a time
it is to use energy, and a colour level; served in daisee's native shape (that of OpenEnergyMonitor's
demand shaper, `{start, end, interval, profile}`) and as Octopus Agile's rate rows, which existing
integrations read unchanged.

The score is the share of the loop's expected consumption its production covers, in tenths, 10 only when
production exceeds it (sun to spare). Under the pro-rata key it is also the share of an extra kWh the loop
would supply, so the Agile rows price an extra kWh at that share of the loop's price and the rest at the
grid's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from daisee.flex.forecast import Basis, Expected

SCORE_MAX = 10
VAT_RATE = 0.20  # France's VAT on electricity
BEST_WINDOWS = 3  # "best times today" shows at most this many windows


def score(step: Expected) -> int:
    """0 (no sun) to 10 (more production than consumption expected)."""
    if step.production_wh <= 0:
        return 0
    if step.production_wh >= step.consumption_wh:
        return SCORE_MAX
    return min(SCORE_MAX - 1, SCORE_MAX * step.production_wh // step.consumption_wh)


def level(value: int) -> str:
    """The colour of a score: green (sun to spare), yellow (most of it covered), orange, red (none)."""
    if value >= SCORE_MAX:
        return "green"
    if value >= SCORE_MAX // 2:
        return "yellow"
    return "orange" if value > 0 else "red"


def local_share(step: Expected) -> float:
    """The share of an extra Wh in `step` the loop's production would cover (pro-rata key)."""
    if step.production_wh <= 0:
        return 0.0
    return min(1.0, step.production_wh / step.consumption_wh) if step.consumption_wh else 1.0


@dataclass(frozen=True)
class Window:
    """Consecutive steps as good as the best of a day."""

    start: int
    end: int
    score: int
    surplus_wh: int

    def as_json(self, tz: ZoneInfo) -> dict[str, object]:
        return self.__dict__ | {"from": local_time(self.start, tz), "to": local_time(self.end, tz)}


@dataclass(frozen=True)
class Signal:
    loop: str
    computed_at: int
    interval: int
    steps: Sequence[Expected]
    basis: Basis
    tz: ZoneInfo

    def current(self) -> Expected | None:
        return next((s for s in self.steps if s.start <= self.computed_at < s.end), None)

    def as_json(self, consumption: bool = True, production: bool = True) -> dict[str, object]:
        """The native shape: `profile` holds each step's score from `start`, one every `interval` seconds
        (the demand shaper's `optimise: max`); `steps` the detail; `now` the step under way. A side not
        to be shown has its Wh (and the surplus) as null."""
        current = self.current()

        def step_json(step: Expected) -> dict[str, object]:
            return self.step_json(step, consumption, production)

        windows = [
            w.as_json(self.tz) | ({} if consumption and production else {"surplus_wh": None}) for w in self.best_today()
        ]
        return {
            "loop": self.loop,
            "computed_at": self.computed_at,
            "zone": self.tz.key,
            "start": self.steps[0].start if self.steps else self.computed_at,
            "end": self.steps[-1].end if self.steps else self.computed_at,
            "interval": self.interval,
            "profile": [score(s) for s in self.steps],
            "optimise": "max",
            "now": step_json(current) if current else None,
            "steps": [step_json(s) for s in self.steps],
            "best_today": windows,
            "basis": self.basis.as_json(),
            "published": {"consumption": consumption, "production": production},
        }

    def step_json(self, step: Expected, consumption: bool = True, production: bool = True) -> dict[str, object]:
        value = score(step)
        return {
            "start": step.start,
            "end": step.end,
            "time": self._time(step.start),
            "production_wh": step.production_wh if production else None,
            "consumption_wh": step.consumption_wh if consumption else None,
            "surplus_wh": step.surplus_wh if consumption and production else None,
            "score": value,
            "level": level(value),
        }

    def _time(self, instant: int) -> str:
        return local_time(instant, self.tz)

    def agile(
        self, loop_price_per_wh: Callable[[int], int], grid_price_per_wh: int, decimals: int
    ) -> dict[str, object]:
        """Octopus Agile's rates answer: an extra kWh's price in cents a kWh for each step, newest first;
        `loop_price_per_wh` gives the loop's price at a step's start, prices are in units of `decimals`."""
        to_cents = 1000 * 100 / 10**decimals
        rows = []
        for step in reversed(self.steps):
            share = local_share(step)
            price = (loop_price_per_wh(step.start) * share + grid_price_per_wh * (1 - share)) * to_cents
            rows.append(
                {
                    "value_exc_vat": round(price, 4),
                    "value_inc_vat": round(price * (1 + VAT_RATE), 4),
                    "valid_from": _utc(step.start),
                    "valid_to": _utc(step.end),
                    "payment_method": None,
                }
            )
        return {"count": len(rows), "next": None, "previous": None, "results": rows}

    def best_today(self) -> list[Window]:
        """The windows of today's remaining steps as good as its best one (none when no sun is expected)."""
        today = datetime.fromtimestamp(self.computed_at, UTC).astimezone(self.tz).date()
        ahead = [
            s
            for s in self.steps
            if s.end > self.computed_at and datetime.fromtimestamp(s.start, UTC).astimezone(self.tz).date() == today
        ]
        best = max((score(s) for s in ahead), default=0)
        windows: list[Window] = []
        for step in ahead:
            if best == 0 or score(step) < best:
                continue
            if windows and windows[-1].end == step.start:
                last = windows[-1]
                windows[-1] = Window(last.start, step.end, best, last.surplus_wh + step.surplus_wh)
            else:
                windows.append(Window(step.start, step.end, best, step.surplus_wh))
        chosen = sorted(windows, key=lambda w: (-w.surplus_wh, w.start))[:BEST_WINDOWS]
        return sorted(chosen, key=lambda w: w.start)


def local_time(instant: int, tz: ZoneInfo) -> str:
    """ISO 8601 with the zone's offset."""
    return datetime.fromtimestamp(instant, UTC).astimezone(tz).isoformat()


def _utc(instant: int) -> str:
    return datetime.fromtimestamp(instant, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
