"""A member's consumption against its neighbours': the median of the loop's comparable households and the
most frugal fifth (the first quintile), per month of the year and per hour of the day.

Comparable households are those that consume (consumers and prosumers). Only those that granted
`neighbour_comparison` to the loop's members (or to everyone, or to this
member) count, each as far as its consent goes: a month only if it lies wholly inside its window, the hours
of the day only if its granularity is an hour or finer. Nothing is shown until at least `min_meters` of
them make a figure ("not enough neighbours yet"), and never another household's curve.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, select

from daisee.consent.model import DataKind, Purpose
from daisee.domain import MeterKind
from daisee.regie.calendar import FINER_TO_COARSER, Granularity, LoopCalendar
from daisee.regie.consents import StoredConsent, live_for
from daisee.regie.curves import Period
from daisee.regie.schema import meter_sums, meters
from daisee.regie.shared import Served, access
from daisee.regie.sums import level
from daisee.regie.views import Context, Member, View


def comparison(db: Connection, context: Context, member: Member, view: View, now: int) -> Served:
    """The member's comparison for the year and the month of `view`."""
    calendar, needed = context.calendar, context.rule.min_meters
    kinds = dict(db.execute(select(meters.c.idx, meters.c.kind)).all())
    own = [idx for idx in member.meter_idxs if kinds[idx] != MeterKind.PRODUCER.value]  # its consuming meters
    peers = _peers(db, member, kinds, now)
    year = Period.of(view.period.start, Granularity.YEAR, calendar)
    month = Period.of(view.period.start, Granularity.MONTH, calendar)
    data: dict[str, object] = {"neighbours": len(peers), "needed": needed, "enough": len(peers) >= needed}
    if not own or len(peers) < needed:
        return Served(data, [])
    months = calendar.buckets(year.start, year.end, Granularity.MONTH)
    mine = _sums(db, own, Granularity.MONTH, year)
    theirs = _sums(db, list(peers), Granularity.MONTH, year)
    by_month = []
    for bucket in months:
        values = [
            theirs[idx][bucket.epoch]
            for idx, consent in peers.items()
            if bucket.epoch in theirs[idx] and _inside(consent, bucket.start, bucket.end)
        ]
        by_month.append(_figure(bucket.horodate, sum(mine[idx].get(bucket.epoch, 0) for idx in own), values, needed))
    hourly = {idx: c for idx, c in peers.items() if _finest(c) <= FINER_TO_COARSER.index(Granularity.HOUR)}
    hourly = {idx: c for idx, c in hourly.items() if _inside(c, month.start, month.end)}
    mine_hours = _hours_of_day(calendar, _sums(db, own, Granularity.HOUR, month), own)
    their_hours = _sums(db, list(hourly), Granularity.HOUR, month)
    profiles = [_hours_of_day(calendar, their_hours, [idx]) for idx in hourly]
    by_hour = [_figure(f"{hour:02d}:00", mine_hours[hour], [p[hour] for p in profiles], needed) for hour in range(24)]
    data |= {"months": by_month, "hours": by_hour, "hours_month": month.start.astimezone(calendar.tz).strftime("%Y-%m")}
    accesses = [access(c, member.account, "comparison", year, str(Granularity.MONTH)) for c in peers.values()]
    accesses += [access(c, member.account, "comparison", month, str(Granularity.HOUR)) for c in hourly.values()]
    return Served(data, accesses)


def _peers(db: Connection, member: Member, kinds: dict[int, int], now: int) -> dict[int, StoredConsent]:
    """The comparable households that consented, by meter: the finest consent of each."""
    found: dict[int, StoredConsent] = {}
    for consent in live_for(db, Purpose.NEIGHBOUR_COMPARISON, DataKind.CONSUMPTION, now):
        idx = consent.meter_idx
        consuming = kinds[idx] != MeterKind.PRODUCER.value
        if idx in member.meter_idxs or not consuming or not consent.readable_by(member.account, True):
            continue
        if idx not in found or _finest(consent) < _finest(found[idx]):
            found[idx] = consent
    return found


def _finest(consent: StoredConsent) -> int:
    return FINER_TO_COARSER.index(consent.grant.granularity)


def _inside(consent: StoredConsent, start: datetime, end: datetime) -> bool:
    window = consent.window
    return window.start <= start and end <= window.end


def _sums(db: Connection, idxs: Sequence[int], granularity: Granularity, period: Period) -> dict[int, dict[int, int]]:
    """Each meter's CONS by bucket start over `period`."""
    rows = db.execute(
        select(meter_sums.c.meter_idx, meter_sums.c.start, meter_sums.c.cons).where(
            meter_sums.c.meter_idx.in_(list(idxs)),
            meter_sums.c.level == level(granularity),
            meter_sums.c.start >= int(period.start.timestamp()),
            meter_sums.c.start < int(period.end.timestamp()),
        )
    )
    found: dict[int, dict[int, int]] = {idx: {} for idx in idxs}
    for idx, start, cons in rows:
        found[idx][int(start)] = int(cons)
    return found


def _hours_of_day(calendar: LoopCalendar, sums: dict[int, dict[int, int]], idxs: Sequence[int]) -> list[float]:
    """The meters' mean CONS at each local hour of the day, over the days they have."""
    total: dict[int, int] = defaultdict(int)
    days: dict[int, set[str]] = defaultdict(set)
    for idx in idxs:
        for start, cons in sums[idx].items():
            local = datetime.fromtimestamp(start, UTC).astimezone(calendar.tz)
            total[local.hour] += cons
            days[local.hour].add(local.date().isoformat())
    return [total[hour] / len(days[hour]) if days[hour] else 0.0 for hour in range(24)]


def _figure(label: str, mine: float, values: list[int] | list[float], needed: int) -> dict[str, object]:
    """The member's value against the median and the first quintile of `values`, if there are enough."""
    if len(values) < needed:
        return {"at": label, "mine": mine, "median": None, "frugal_fifth": None, "households": len(values)}
    return {
        "at": label,
        "mine": mine,
        "median": statistics.median(values),
        "frugal_fifth": statistics.quantiles(values, n=5, method="inclusive")[0],
        "households": len(values),
    }
