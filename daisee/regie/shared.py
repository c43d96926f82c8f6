"""What the régie serves under the members' consents, with the accesses to write in the access log: a
grantee's view of one consent, and the producers' figures for funders (their `open_data` consents)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from daisee.consent.model import DataKind, Purpose
from daisee.domain import MeterKind
from daisee.regie.access_log import ANYONE, Access
from daisee.regie.bills import monthly_bills
from daisee.regie.calendar import FINER_TO_COARSER, Granularity
from daisee.regie.consents import Allowance, StoredConsent, live_for, shared_curve
from daisee.regie.curves import NOTHING, Curve, Energy, Period, member_curve
from daisee.regie.schema import meters
from daisee.regie.views import Context, View, curve_json, loop_facts_json, months_touched, prices_in


@dataclass(frozen=True)
class Served:
    """A view's data, and the accesses to members' data it made."""

    data: dict[str, object]
    accesses: list[Access]


def served_span(curve: Curve, allowed: Allowance) -> Period | None:
    """The span of the buckets of `curve` inside the consent's window: what was served (None: nothing)."""
    inside = [b for b in curve.buckets if allowed.window.start <= b.start and b.end <= allowed.window.end]
    return Period(inside[0].start, inside[-1].end) if inside else None


def access(consent: StoredConsent, reader: str | None, what: str, span: Period | None, granularity: str) -> Access:
    """The log entry of serving `what` of `consent`'s meter to `reader` (None: anyone) over `span`."""
    start, end = (int(span.start.timestamp()), int(span.end.timestamp())) if span else (0, 0)
    return Access(
        consent.meter_idx,
        reader or ANYONE,
        consent.grant.purpose.slug,
        consent.consent_id,
        what,
        start,
        end,
        granularity,
    )


def shared_view(
    db: Connection, context: Context, consent: StoredConsent, view: View, reader: str | None, now: int
) -> Served:
    """One consent's data for its grantee over `view`: the meter's curve as the consent allows it, and its
    bills for the months wholly inside the consent's window if it covers them."""
    calendar = context.calendar
    curve, allowed = shared_curve(db, calendar, consent, view.period, view.granularity)
    span = served_span(curve, allowed)
    accesses = [access(consent, reader, "curve", span, str(allowed.granularity))]
    bills: list[dict[str, object]] = []
    if allowed.bills and span is not None:
        months = shared_curve(db, calendar, consent, months_touched(view, calendar), Granularity.MONTH)
        inside = served_span(*months)
        if inside is not None:
            found = monthly_bills(db, calendar, [consent.meter_idx], consent.grantor, inside, context.grid_price_per_wh)
            bills = [bill.as_json() for bill in found]
            accesses.append(access(consent, reader, "bills", inside, str(Granularity.MONTH)))
    data: dict[str, object] = {
        "consent": consent.as_json(now, calendar.tz),
        "allowed": allowed.as_json(),
        "view": view.as_json(calendar),
        "curve": curve_json(curve, calendar, shown=allowed.quantities),
        "bills": bills,
        "loop": loop_facts_json(db, context),
    }
    return Served(data, accesses)


def producers_view(db: Connection, context: Context, view: View, reader: str | None, member: bool, now: int) -> Served:
    """The producers whose `open_data` consent `reader` may read: over the view, their production, and as
    their consent covers it AUTOPROD, SURPLUS and revenue — each over the part of the view inside the
    consent's window, at its granularity."""
    calendar = context.calendar
    readable = [c for c in live_for(db, Purpose.OPEN_DATA, DataKind.PRODUCTION, now) if c.readable_by(reader, member)]
    chosen: dict[int, StoredConsent] = {}
    for consent in readable:  # a meter's finest consent, the widest window among equals
        held = chosen.get(consent.meter_idx)
        if held is None or _finer(consent, held):
            chosen[consent.meter_idx] = consent
    kinds = dict(db.execute(select(meters.c.idx, meters.c.kind)).all())
    producers, accesses, total = [], [], NOTHING
    for idx, consent in sorted(chosen.items()):
        curve, allowed = shared_curve(db, calendar, consent, view.period, consent.grant.granularity)
        span = served_span(curve, allowed)
        accesses.append(access(consent, reader, "figures", span, str(allowed.granularity)))
        energy = Energy(0, 0, *(sum(e[i] for e in curve.energy if e is not None) for i in (2, 3)))
        shows = set(allowed.quantities)
        figures: dict[str, object] = {
            "meter_id": "0x" + consent.meter_id.hex(),
            "kind": MeterKind(kinds[idx]).name.lower(),
            "consent_id": "0x" + consent.consent_id.hex(),
            "from": span.start.isoformat() if span else None,
            "until": span.end.isoformat() if span else None,
            "granularity": str(allowed.granularity),
            "PROD": energy.prod,
            "AUTOPROD": energy.autoprod if "AUTOPROD" in shows else None,
            "SURPLUS": energy.surplus if "SURPLUS" in shows else None,
            "revenue": _revenue(db, context, idx, span) if allowed.bills and "AUTOPROD" in shows else None,
        }
        total += Energy(0, 0, energy.prod, 0)
        producers.append(figures)
    producing = db.execute(
        select(meters.c.idx).where(meters.c.kind != MeterKind.CONSUMER.value, meters.c.removed_block.is_(None))
    ).scalars()
    hidden = sum(1 for idx in producing if idx not in chosen)
    data: dict[str, object] = {
        "view": view.as_json(calendar),
        "producers": producers,
        "shown_total": {"PROD": total.prod},
        "not_shown": hidden,
    }
    return Served(data, accesses)


def _finer(consent: StoredConsent, than: StoredConsent) -> bool:
    rank = FINER_TO_COARSER.index
    mine, theirs = rank(consent.grant.granularity), rank(than.grant.granularity)
    return mine < theirs or (mine == theirs and consent.grant.data_from < than.grant.data_from)


def _revenue(db: Connection, context: Context, meter_idx: int, span: Period | None) -> int:
    """What the meter's AUTOPROD earned over `span`, interval by interval at its price."""
    if span is None:
        return 0
    calendar = context.calendar
    steps = member_curve(db, calendar, [meter_idx], span, Granularity.STEP)
    prices = prices_in(db, calendar, span)
    return sum(
        energy.autoprod * prices.get(calendar.interval_at(bucket.start), 0)
        for bucket, energy in zip(steps.buckets, steps.energy, strict=True)
        if energy is not None
    )
