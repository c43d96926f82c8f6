"""What each page of the régie shows, as JSON (the API serves it as it is, the pages render it): the loop,
a member, the producers. Energies in Wh and money in ledger units, as integers; a point with nothing
settled is null.

A view is a period (a civil day, week, month or year of the store's zone, from a date) and a granularity
(by default the finest a chart of that period reads well at).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, func, select

from daisee.domain import LEDGER_DECIMALS, AllocationKey, MeterKind, price_per_kwh
from daisee.loop import unprotected
from daisee.regie.bills import monthly_bills
from daisee.regie.calendar import Granularity, LoopCalendar, iso_duration
from daisee.regie.curves import Curve, Energy, Period, loop_curve, member_curve
from daisee.regie.indexer import LoopFacts
from daisee.regie.publish import PublicationRule, public_curve
from daisee.regie.schema import intervals, meters, terms

PERIODS = ("day", "week", "month", "year")
SIX = ("CONS", "AUTOCONS", "COMPLEMENT", "PROD", "AUTOPROD", "SURPLUS")
RATE_NEEDS = {"autoconsommation": ("AUTOPROD", "PROD"), "autoproduction": ("AUTOCONS", "CONS")}
FIRST_YEAR, LAST_YEAR = 1970, 9998  # a period's end must still be a date
DEFAULT_GRANULARITY = {
    "day": Granularity.STEP,
    "week": Granularity.HOUR,
    "month": Granularity.DAY,
    "year": Granularity.MONTH,
}
COARSEST = {"day": Granularity.DAY, "week": Granularity.DAY, "month": Granularity.MONTH, "year": Granularity.YEAR}


class ViewError(ValueError):
    """A view asked for with bad parameters: the message says which and what to give."""


@dataclass(frozen=True)
class Context:
    """What every view needs: the store's loop, the publication rule, the grid's price for the bills."""

    facts: LoopFacts
    rule: PublicationRule
    grid_price_per_wh: int

    @property
    def calendar(self) -> LoopCalendar:
        return self.facts.calendar


@dataclass(frozen=True)
class View:
    kind: str  # day, week, month or year
    day: date  # the local date it was asked from
    period: Period
    granularity: Granularity

    def as_json(self, calendar: LoopCalendar) -> dict[str, object]:
        before = (self.period.start - timedelta(hours=12)).astimezone(calendar.tz).date()
        after = (self.period.end + timedelta(hours=12)).astimezone(calendar.tz).date()
        return {
            "period": self.kind,
            "date": self.day.isoformat(),
            "previous_date": before.isoformat(),
            "next_date": after.isoformat(),
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "granularity": str(self.granularity),
        }


def parse_view(params: Mapping[str, str], calendar: LoopCalendar, default_day: date) -> View:
    """The view that `period`, `date` (YYYY-MM-DD, local) and `granularity` ask for (ViewError if wrong)."""
    kind = params.get("period", "day")
    if kind not in PERIODS:
        raise ViewError(f"period {kind!r} is not one of {', '.join(PERIODS)}")
    try:
        day = date.fromisoformat(params["date"]) if params.get("date") else default_day
    except ValueError:
        raise ViewError(f"date {params['date']!r} is not a date: give YYYY-MM-DD") from None
    if not FIRST_YEAR <= day.year <= LAST_YEAR:
        raise ViewError(f"date {day.isoformat()} is out of range: give one from {FIRST_YEAR} to {LAST_YEAR}")
    granularity = DEFAULT_GRANULARITY[kind]
    if params.get("granularity"):
        try:
            granularity = Granularity(params["granularity"])
        except ValueError:
            raise ViewError(
                f"granularity {params['granularity']!r} is not one of {', '.join(g.value for g in Granularity)}"
            ) from None
    if granularity.at_least(COARSEST[kind]) is not COARSEST[kind]:
        raise ViewError(f"a {kind} is cut at most by {COARSEST[kind]}: give a finer granularity")
    noon = _noon(day, calendar)
    if kind == "week":
        monday = Period.of(noon - timedelta(days=day.weekday()), Granularity.DAY, calendar)
        sunday = Period.of(noon + timedelta(days=6 - day.weekday()), Granularity.DAY, calendar)
        period = Period(monday.start, sunday.end)
    else:
        period = Period.of(noon, Granularity(kind), calendar)
    return View(kind, day, period, granularity)


def _noon(day: date, calendar: LoopCalendar) -> datetime:
    """Noon of a local date, in UTC: an instant surely inside that day."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=calendar.tz).astimezone(UTC)


def latest_day(db: Connection, calendar: LoopCalendar) -> date:
    """The local date of the last settled interval (of genesis, before any): where pages open."""
    last = db.execute(select(func.max(intervals.c.interval))).scalar()
    return calendar.start(int(last or 0)).astimezone(calendar.tz).date()


def curve_json(
    curve: Curve, calendar: LoopCalendar, *, with_counts: bool = False, shown: Sequence[str] = SIX
) -> dict[str, object]:
    """A curve in columns: `horodate` (each point's start, local, with its offset) and the quantities
    `shown` (all six by default), null where nothing was settled; `nb_points` (the meters that make each
    point) for the loop's. Its total and rates say only what the shown quantities tell."""
    energies = curve.energy
    columns = {
        "CONS": [None if e is None else e[0] for e in energies],
        "AUTOCONS": [None if e is None else e[1] for e in energies],
        "COMPLEMENT": [None if e is None else e[0] - e[1] for e in energies],
        "PROD": [None if e is None else e[2] for e in energies],
        "AUTOPROD": [None if e is None else e[3] for e in energies],
        "SURPLUS": [None if e is None else e[2] - e[3] for e in energies],
    }
    total = curve.total.as_json()
    found: dict[str, object] = {
        "granularity": str(curve.granularity),
        "pas": iso_duration(curve.granularity, calendar.step_seconds),
        "total": {name: total[name] for name in shown},
        "rates": {name: rate for name, rate in rates(curve.total).items() if set(RATE_NEEDS[name]) <= set(shown)},
        "horodate": [b.horodate for b in curve.buckets],
        **{name: columns[name] for name in shown},
    }
    if with_counts:
        found["nb_points"] = [None if c is None else max(c[0], c[1]) for c in curve.crowds]
    return found


def rates(energy: Energy) -> dict[str, float | None]:
    """Taux d'autoconsommation (AUTOPROD / PROD) and taux d'autoproduction (AUTOCONS / CONS)."""
    return {
        "autoconsommation": energy.autoprod / energy.prod if energy.prod else None,
        "autoproduction": energy.autocons / energy.cons if energy.cons else None,
    }


def loop_view(db: Connection, context: Context, view: View, *, member: bool) -> dict[str, object]:
    """The loop's page: its curve over the view (as everyone may see it, or whole for a member), its
    members by kind, its terms and protections, and this month's shared energy and money."""
    calendar = context.calendar
    if member:
        curve = loop_curve(db, calendar, view.period, view.granularity)
        shown: dict[str, object] = {"consumption": True, "production": True, "coarsened": False, "members_only": True}
    else:
        public = public_curve(db, calendar, view.period, view.granularity, COARSEST[view.kind], context.rule)
        curve = public.curve
        shown = {
            "consumption": public.consumption,
            "production": public.production,
            "coarsened": public.coarsened,
            "members_only": False,
        }
    kinds = Counter(
        MeterKind(kind).name.lower()
        for (kind,) in db.execute(select(meters.c.kind).where(meters.c.removed_block.is_(None)))
    )
    return {
        "loop": loop_facts_json(db, context),
        "view": view.as_json(calendar),
        "members": {kind.name.lower(): kinds.get(kind.name.lower(), 0) for kind in MeterKind},
        "published": shown,
        "rule": {"min_meters": context.rule.min_meters, "max_share": float(context.rule.max_share)},
        "curve": curve_json(curve, calendar, with_counts=True),
        "this_month": _shared_this_month(db, context, view, member),
    }


def _shared_this_month(db: Connection, context: Context, view: View, member: bool) -> dict[str, object]:
    """The energy shared in the month of the view's date and what it was paid, if it may be published."""
    calendar = context.calendar
    month = Period.of(_noon(view.day, calendar), Granularity.MONTH, calendar)
    if member:
        shown = loop_curve(db, calendar, month, Granularity.MONTH)
        published = True
    else:
        public = public_curve(db, calendar, month, Granularity.MONTH, Granularity.MONTH, context.rule)
        shown, published = public.curve, public.consumption
    energy = shown.total
    steps = loop_curve(db, calendar, month, Granularity.STEP) if published else None
    prices = prices_in(db, calendar, month)
    money = 0
    if steps is not None:
        for point in steps.points:
            if point.energy is not None:
                money += point.energy.autocons * prices.get(calendar.interval_at(point.bucket.start), 0)
    return {
        "month": month.start.astimezone(calendar.tz).strftime("%Y-%m"),
        "published": published,
        "shared_wh": energy.autocons if published else None,
        "shared_money": money if published else None,
    }


def prices_in(db: Connection, calendar: LoopCalendar, period: Period) -> dict[int, int]:
    """The price of each settled interval of `period`."""
    first, last = calendar.interval_at(period.start), calendar.interval_at(period.end)
    rows = db.execute(
        select(intervals.c.interval, intervals.c.price_per_wh).where(
            intervals.c.interval >= first, intervals.c.interval < last
        )
    )
    return {interval: price for interval, price in rows}


def loop_facts_json(db: Connection, context: Context) -> dict[str, object]:
    """The loop's calendar, terms, bounds of the PMO's powers, and which protections are zero."""
    facts = context.facts
    schedules = db.execute(
        select(terms.c.epoch, terms.c.allocation_key, terms.c.price_per_wh, terms.c.from_interval).order_by(
            terms.c.block, terms.c.log_index
        )
    ).all()
    latest = {epoch: (key, price, start) for epoch, key, price, start in schedules}  # an epoch's last schedule
    return {
        "chain_id": facts.chain_id,
        "address": facts.loop,
        "zone": facts.zone,
        "genesis": datetime.fromtimestamp(facts.genesis, UTC).isoformat(),
        "interval_seconds": facts.interval_seconds,
        "grace_seconds": facts.grace_seconds,
        "notice_seconds": facts.notice_seconds,
        "price_cap_per_kwh": str(price_per_kwh(facts.price_cap_per_wh)),
        "ledger_decimals": LEDGER_DECIMALS,
        "grid_price_per_kwh": str(price_per_kwh(context.grid_price_per_wh)),
        "terms": [
            {
                "epoch": epoch,
                "key": AllocationKey(key).name.lower(),
                "price_per_kwh": str(price_per_kwh(price)),
                "from_interval": start,
                "from": calendar_start(context.calendar, start),
            }
            for epoch, (key, price, start) in sorted(latest.items())
        ],
        "zero_protections": unprotected(facts.notice_seconds),
    }


def calendar_start(calendar: LoopCalendar, interval: int) -> str:
    return calendar.start(interval).astimezone(calendar.tz).isoformat()


@dataclass(frozen=True)
class Member:
    """A signed-in account and the meters it is the payout account of."""

    account: str
    meter_idxs: list[int]
    meters: list[dict[str, object]]


def member_of(db: Connection, account: str) -> Member | None:
    """The member whose payout account is `account`, or None if it is the payout of no meter."""
    rows = db.execute(
        select(meters.c.idx, meters.c.meter_id, meters.c.kind, meters.c.removed_block)
        .where(func.lower(meters.c.payout) == account.lower())
        .order_by(meters.c.idx)
    ).all()
    if not rows:
        return None
    described = [
        {
            "meter_id": "0x" + bytes(meter_id).hex(),
            "kind": MeterKind(kind).name.lower(),
            "active": removed is None,
        }
        for _, meter_id, kind, removed in rows
    ]
    return Member(account, [row[0] for row in rows], described)


def member_view(db: Connection, context: Context, member: Member, view: View) -> dict[str, object]:
    """A member's page: its curve against the loop's over the view, and its bills for the view's year."""
    calendar = context.calendar
    own = member_curve(db, calendar, member.meter_idxs, view.period, view.granularity)
    year = Period.of(view.period.start, Granularity.YEAR, calendar)
    bills = monthly_bills(db, calendar, member.meter_idxs, member.account, year, context.grid_price_per_wh)
    return {
        "account": member.account,
        "meters": member.meters,
        "view": view.as_json(calendar),
        "curve": curve_json(own, calendar),
        "loop_curve": curve_json(loop_curve(db, calendar, view.period, view.granularity), calendar, with_counts=True),
        "bills": [bill.as_json() for bill in bills],
        "loop": loop_facts_json(db, context),
    }


def months_touched(view: View, calendar: LoopCalendar) -> Period:
    """The whole months the view's period touches."""
    return Period(
        Period.of(view.period.start, Granularity.MONTH, calendar).start,
        Period.of(view.period.end - timedelta(seconds=1), Granularity.MONTH, calendar).end,
    )


def billing_view(db: Connection, context: Context, view: View) -> dict[str, object]:
    """What the PMO's billing needs: each member's bill for every month of the view (energy, local cost
    and revenue, what became debt or receivable, ledger entries), members by payout account."""
    calendar = context.calendar
    rows = db.execute(select(meters.c.payout, meters.c.idx).order_by(meters.c.idx)).all()
    by_account: dict[str, list[int]] = {}
    for payout, idx in rows:
        by_account.setdefault(payout, []).append(idx)
    months = months_touched(view, calendar)
    return {
        "view": view.as_json(calendar),
        "loop": loop_facts_json(db, context),
        "members": [
            {
                "account": account,
                "bills": [
                    bill.as_json()
                    for bill in monthly_bills(db, calendar, idxs, account, months, context.grid_price_per_wh)
                ],
            }
            for account, idxs in by_account.items()
        ],
    }
