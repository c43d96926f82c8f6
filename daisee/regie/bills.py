"""A member's bill, month by month, from the store: the local energy it bought and sold at the loop's price
of each interval, what of it became a debt or a receivable, its ledger entries, and what it saved against
buying all of its consumption from the grid at a price the PMO gives.

Money is computed in Python from whole Wh and whole ledger units a Wh, exactly: a month's sum does not fit
64 bits in every token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, func, select

from daisee.regie.calendar import Bucket, Granularity, LoopCalendar, bucket_of
from daisee.regie.curves import NOTHING, Energy, Period
from daisee.regie.schema import QUANTITIES, intervals, ledger, meter_sums, unpaid
from daisee.regie.sums import level


@dataclass(frozen=True)
class LedgerEntry:
    at: datetime
    entry: str  # deposit, withdrawal, debt_repaid, receivable_paid
    amount: int

    def as_json(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "entry": self.entry, "amount": self.amount}


@dataclass
class MonthBill:
    """A member's month, in ledger units (the settlement token's smallest unit)."""

    month: Bucket
    energy: Energy = NOTHING
    local_cost: int = 0  # AUTOCONS at the loop's price
    local_revenue: int = 0  # AUTOPROD at the loop's price
    became_debt: int = 0  # of local_cost, what its balance did not cover
    became_receivable: int = 0  # of local_revenue, what the consumers had not paid yet
    grid_cost: int = 0  # COMPLEMENT at the grid's price
    entries: list[LedgerEntry] = field(default_factory=list)
    grid_price_per_wh: int = 0

    @property
    def saved(self) -> int:
        """What buying AUTOCONS locally saved against buying it from the grid."""
        return self.energy.autocons * self.grid_price_per_wh - self.local_cost

    def as_json(self) -> dict[str, object]:
        return {
            "month": self.month.horodate,
            **self.energy.as_json(),
            "local_cost": self.local_cost,
            "local_revenue": self.local_revenue,
            "became_debt": self.became_debt,
            "became_receivable": self.became_receivable,
            "grid_cost": self.grid_cost,
            "saved": self.saved,
            "entries": [e.as_json() for e in self.entries],
        }


def monthly_bills(
    db: Connection,
    calendar: LoopCalendar,
    meter_idxs: Sequence[int],
    account: str,
    period: Period,
    grid_price_per_wh: int,
) -> list[MonthBill]:
    """The bills of the months of `period` for the member of `account`, whose meters are `meter_idxs`."""
    months = {
        b.epoch: MonthBill(b, grid_price_per_wh=grid_price_per_wh)
        for b in calendar.buckets(period.start, period.end, Granularity.MONTH)
    }
    first, last = calendar.interval_at(period.start), calendar.interval_at(period.end)
    for bill in months.values():
        _add_energy_and_money(db, calendar, meter_idxs, bill)
    short = db.execute(
        select(unpaid.c.interval, unpaid.c.production, unpaid.c.amount).where(
            unpaid.c.meter_idx.in_(list(meter_idxs)), unpaid.c.interval >= first, unpaid.c.interval < last
        )
    )
    for interval, production, amount in short:
        bill = months[_month_of(calendar, interval)]
        if production:
            bill.became_receivable += int(amount)
        else:
            bill.became_debt += int(amount)
    entries = db.execute(
        select(ledger.c.timestamp, ledger.c.entry, ledger.c.amount)
        .where(
            ledger.c.account == account,
            ledger.c.timestamp >= int(period.start.timestamp()),
            ledger.c.timestamp < int(period.end.timestamp()),
        )
        .order_by(ledger.c.block, ledger.c.log_index)
    )
    for timestamp, entry, amount in entries:
        at = datetime.fromtimestamp(timestamp, UTC)
        month = bucket_of(at, Granularity.MONTH, calendar.tz, calendar.step_seconds)
        months[int(month.start.timestamp())].entries.append(LedgerEntry(at, entry, int(amount)))
    return list(months.values())


def _add_energy_and_money(db: Connection, calendar: LoopCalendar, meter_idxs: Sequence[int], bill: MonthBill) -> None:
    """The month's energy from its sums; its money at the one price of its intervals, or step by step where
    the price changed within the month."""
    month = bill.month
    summed = db.execute(
        select(*(func.sum(meter_sums.c[q]) for q in QUANTITIES)).where(
            meter_sums.c.meter_idx.in_(list(meter_idxs)),
            meter_sums.c.level == level(Granularity.MONTH),
            meter_sums.c.start == month.epoch,
        )
    ).one()
    bill.energy = Energy(*(int(v or 0) for v in summed))
    bill.grid_cost = bill.energy.complement * bill.grid_price_per_wh
    first, last = calendar.interval_at(month.start), calendar.interval_at(month.end)
    in_month = (intervals.c.interval >= first, intervals.c.interval < last)
    lowest, highest = db.execute(
        select(func.min(intervals.c.price_per_wh), func.max(intervals.c.price_per_wh)).where(*in_month)
    ).one()
    if lowest == highest:
        price = int(lowest or 0)
        bill.local_cost, bill.local_revenue = bill.energy.autocons * price, bill.energy.autoprod * price
        return
    prices = {i: p for i, p in db.execute(select(intervals.c.interval, intervals.c.price_per_wh).where(*in_month))}
    steps = db.execute(
        select(meter_sums.c.start, meter_sums.c.autocons, meter_sums.c.autoprod).where(
            meter_sums.c.meter_idx.in_(list(meter_idxs)),
            meter_sums.c.level == level(Granularity.STEP),
            meter_sums.c.start >= month.epoch,
            meter_sums.c.start < int(month.end.timestamp()),
        )
    )
    for start, autocons, autoprod in steps:
        price = prices.get(calendar.interval_at(datetime.fromtimestamp(start, UTC)), 0)
        bill.local_cost += autocons * price
        bill.local_revenue += autoprod * price


def _month_of(calendar: LoopCalendar, interval: int) -> int:
    return int(calendar.bucket(interval, Granularity.MONTH).start.timestamp())
