"""What of the loop's curves may be shown to everyone: the statistical secrecy rule for energy aggregates.

An aggregate is published only when at least ten meters make it and no single meter makes more than half
of it (the rule French energy data follows; both bounds are settings). Consumption and production are
judged apart: a loop with one producer publishes its consumption, never that producer's curve. A curve
whose points fail at the asked granularity is coarsened (hours to days to months) until every point
passes; a side that fails even over the whole period is withheld, and shown to signed-in members only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from sqlalchemy import Connection

from daisee.regie.calendar import FINER_TO_COARSER, Granularity, LoopCalendar
from daisee.regie.curves import Crowd, Curve, Energy, Period, loop_curve

DEFAULT_MIN_METERS = 10
DEFAULT_MAX_SHARE = Fraction(1, 2)


@dataclass(frozen=True)
class PublicationRule:
    min_meters: int = DEFAULT_MIN_METERS
    max_share: Fraction = DEFAULT_MAX_SHARE

    def allows(self, meters: int, largest: int, total: int) -> bool:
        """Whether an aggregate of `total` that `meters` meters make, the largest `largest`, may be shown."""
        if total == 0:
            return True  # nothing to tell about anyone
        share = self.max_share  # compared in integers: a year of hours is 17,520 comparisons a page
        return meters >= self.min_meters and largest * share.denominator <= share.numerator * total

    def sides(self, energy: Energy | None, crowd: Crowd | None) -> tuple[bool, bool]:
        """Whether the consumption, and the production, of one point may be shown."""
        if energy is None or crowd is None:
            return True, True
        return (
            self.allows(crowd.consumers, crowd.max_cons, energy.cons),
            self.allows(crowd.producers, crowd.max_prod, energy.prod),
        )


@dataclass(frozen=True)
class PublicCurve:
    """The loop's curve as everyone may see it: at `curve.granularity` (`asked`, or coarser), with the
    sides that may be shown; a withheld side's quantities are zero in `curve`."""

    asked: Granularity
    curve: Curve
    consumption: bool
    production: bool

    @property
    def coarsened(self) -> bool:
        return self.curve.granularity is not self.asked


def public_curve(
    db: Connection,
    calendar: LoopCalendar,
    period: Period,
    asked: Granularity,
    coarsest: Granularity,
    rule: PublicationRule,
) -> PublicCurve:
    """The finest curve of the loop over `period`, from `asked` to `coarsest`, at which every point of each
    side that may be shown at all passes `rule`."""
    ladder = FINER_TO_COARSER[FINER_TO_COARSER.index(asked) : FINER_TO_COARSER.index(coarsest) + 1]
    curves = [loop_curve(db, calendar, period, granularity) for granularity in reversed(ladder)]  # coarsest first
    passing = [_passes(curve, rule) for curve in curves]
    consumption, production = passing[0]
    chosen = curves[0]
    for curve, (cons_ok, prod_ok) in zip(curves, passing, strict=True):
        if (cons_ok or not consumption) and (prod_ok or not production):
            chosen = curve  # finer and still every shown side passes
    return PublicCurve(asked, _withholding(chosen, consumption, production), consumption, production)


def _passes(curve: Curve, rule: PublicationRule) -> tuple[bool, bool]:
    judged = [rule.sides(energy, crowd) for energy, crowd in zip(curve.energy, curve.crowds, strict=True)]
    return all(cons for cons, _ in judged), all(prod for _, prod in judged)


def _withholding(curve: Curve, consumption: bool, production: bool) -> Curve:
    if consumption and production:
        return curve
    kept = [
        None
        if e is None
        else Energy(
            e.cons if consumption else 0,
            e.autocons if consumption else 0,
            e.prod if production else 0,
            e.autoprod if production else 0,
        )
        for e in curve.energy
    ]
    return replace(curve, energy=kept)
