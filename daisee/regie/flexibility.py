"""The régie's flexibility signal: the loop's forecast from the store's settled steps, computed again when a
step settles or a new one begins (and when the PMO's sky forecast file changes), with what the publication
rule lets everyone see of it.

Scores and levels are public. The expected Wh of a side are shown to everyone only when every day of the
history the forecast reads passes the publication rule for that side (a loop with one producer never
publishes that producer's expected production); signed-in members see them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, Connection, Engine, func, select

from daisee.errors import DaiseeError
from daisee.flex.forecast import HISTORY_DAYS, Settled, Site, SkyForecast, expect
from daisee.flex.signal import Signal
from daisee.regie import sums
from daisee.regie.calendar import Granularity
from daisee.regie.indexer import LoopFacts
from daisee.regie.logs import log_event
from daisee.regie.publish import PublicationRule
from daisee.regie.schema import loop_sums, terms

HORIZON_HOURS = 36
_DAY = 86_400


@dataclass(frozen=True)
class Published:
    """A signal and which of its sides everyone may see."""

    signal: Signal
    consumption: bool
    production: bool

    def as_json(self, *, member: bool) -> dict[str, object]:
        return self.signal.as_json(member or self.consumption, member or self.production)


class SignalDesk:
    """The loop's current signal, kept until a step settles, a new step begins or the sky file changes."""

    def __init__(
        self, engine: Engine, facts: LoopFacts, rule: PublicationRule, site: Site, sky_file: Path | None = None
    ) -> None:
        self.engine, self.facts, self.rule, self.site, self.sky_file = engine, facts, rule, site, sky_file
        if sky_file:
            SkyForecast.read(sky_file, site)  # a file that cannot be read is said at start
        self._lock = threading.Lock()
        self._kept: tuple[tuple[object, ...], Published] | None = None

    def current(self, now: int) -> Published:
        """The signal as of `now` (epoch seconds)."""
        facts = self.facts
        step = (now - facts.genesis) // facts.interval_seconds
        with self.engine.connect() as db:
            newest = db.execute(select(func.max(loop_sums.c.start)).where(_steps())).scalar()
            key = (step, newest, self._sky_version())
            with self._lock:
                if self._kept is not None and self._kept[0] == key:
                    return self._kept[1]
                published = self._compute(db, now)
                self._kept = (key, published)
                return published

    def _compute(self, db: Connection, now: int) -> Published:
        facts, calendar = self.facts, self.facts.calendar
        since = now - HISTORY_DAYS * _DAY
        rows = db.execute(
            select(loop_sums.c.start, loop_sums.c.cons, loop_sums.c.prod).where(
                _steps(), loop_sums.c.start >= since, loop_sums.c.start + facts.interval_seconds <= now
            )
        )
        history = [Settled(start, cons, prod) for start, cons, prod in rows]
        sky = self._sky()
        forecast = expect(
            history, now, facts.genesis, facts.interval_seconds, calendar.tz, self.site, HORIZON_HOURS, sky
        )
        signal = Signal(facts.loop, now, facts.interval_seconds, forecast.steps, forecast.basis, calendar.tz)
        consumption, production = self._publishable(db, since, now)
        return Published(signal, consumption, production)

    def _publishable(self, db: Connection, since: int, now: int) -> tuple[bool, bool]:
        """Whether every day the history reads passes the rule, for consumption and for production."""
        days = db.execute(
            select(
                loop_sums.c.consumers,
                loop_sums.c.max_cons,
                loop_sums.c.cons,
                loop_sums.c.producers,
                loop_sums.c.max_prod,
                loop_sums.c.prod,
            ).where(loop_sums.c.level == sums.level(Granularity.DAY), loop_sums.c.start >= since - _DAY)
        ).all()
        allows = self.rule.allows
        return (
            all(allows(c, largest, total) for c, largest, total, *_ in days),
            all(allows(p, largest, total) for *_, p, largest, total in days),
        )

    def _sky(self) -> SkyForecast | None:
        """The PMO's sky forecast; None (persistence) while the file is away or broken, as it is said."""
        if self.sky_file is None:
            return None
        try:
            return SkyForecast.read(self.sky_file, self.site)
        except DaiseeError as exc:
            log_event("sky_forecast_unreadable", error=str(exc))
            return None

    def _sky_version(self) -> float | None:
        try:
            return self.sky_file.stat().st_mtime if self.sky_file else None
        except OSError:
            return None

    def loop_price(self) -> Callable[[int], int]:
        """The loop's price a Wh at a step's start, as its terms schedule it."""
        with self.engine.connect() as db:
            schedules = db.execute(
                select(terms.c.epoch, terms.c.price_per_wh, terms.c.from_interval).order_by(
                    terms.c.block, terms.c.log_index
                )
            ).all()
        latest = {epoch: (start, price) for epoch, price, start in schedules}  # an epoch's last schedule
        ladder = sorted(latest.values())
        facts = self.facts

        def price_at(start: int) -> int:
            interval = (start - facts.genesis) // facts.interval_seconds
            return next((price for first, price in reversed(ladder) if first <= interval), 0)

        return price_at


def _steps() -> ColumnElement[bool]:
    return loop_sums.c.level == sums.level(Granularity.STEP)
