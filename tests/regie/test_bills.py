"""A member's monthly bill from the store equals what the chain's settlement events and ledger say."""

from __future__ import annotations

from sqlalchemy import Engine, select

from daisee.demo import PREPAYMENT, DemoRun
from daisee.domain import MeterKind
from daisee.loop import Loop
from daisee.regie.bills import monthly_bills
from daisee.regie.calendar import Granularity, LoopCalendar, zone
from daisee.regie.curves import Period
from daisee.regie.indexer import Indexer
from daisee.regie.schema import intervals, meters
from daisee.regie.sums import Side, record

GRID_PRICE = 250  # ledger units a Wh: 0.25 a kWh


def test_each_members_bill_is_what_the_chain_settled(store: Engine, played: tuple[Loop, DemoRun]) -> None:
    loop, run = played
    indexer = Indexer(store, loop, run.deployment.block, zone("Europe/Paris"))
    indexer.catch_up()
    year = Period.of(indexer.calendar.start(0), Granularity.YEAR, indexer.calendar)
    with store.connect() as db:
        idx = {meter_id: i for i, meter_id in db.execute(select(meters.c.idx, meters.c.meter_id))}
        bills = {
            h.meter_id: monthly_bills(db, indexer.calendar, [idx[h.meter_id]], h.payout, year, GRID_PRICE)
            for h in run.households
        }

    for household in run.households:
        months = bills[household.meter_id]
        assert len(months) == 12
        settled = [
            run.results[t][household.meter_id] for t in range(run.intervals) if household.meter_id in run.results[t]
        ]
        assert sum(m.local_cost for m in months) == sum(r.cost for r in settled)
        assert sum(m.became_debt for m in months) == sum(r.cost - r.paid_cost for r in settled)
        assert sum(m.local_revenue for m in months) == sum(r.revenue for r in settled)
        assert sum(m.became_receivable for m in months) == sum(r.revenue - r.paid_revenue for r in settled)
        grid = sum(r.consumed - r.allocated for r in settled)
        assert sum(m.grid_cost for m in months) == grid * GRID_PRICE
        assert sum(m.saved for m in months) == sum(r.allocated * (GRID_PRICE - 100) for r in settled)
        deposits = [e.amount for m in months for e in m.entries if e.entry == "deposit"]
        assert deposits == ([] if household.kind is MeterKind.PRODUCER else [PREPAYMENT])
    assert any(m.local_cost for months in bills.values() for m in months)
    assert any(m.local_revenue for months in bills.values() for m in months)


def test_a_month_whose_price_changed_is_billed_interval_by_interval(store: Engine) -> None:
    calendar = LoopCalendar(genesis=1_767_222_000, step_seconds=900, tz=zone("Europe/Paris"))  # 2026-01-01
    with store.begin() as db:
        db.execute(
            intervals.insert(),
            [{"interval": 0, "price_per_wh": 100, "block": 1}, {"interval": 1, "price_per_wh": 2**55, "block": 1}],
        )
        record(
            db, {1: [Side(0, 0, False, 500, 300), Side(0, 1, False, 400, 200), Side(0, 1, True, 900, 700)]}, calendar
        )
    january = Period.of(calendar.start(0), Granularity.MONTH, calendar)
    with store.connect() as db:
        (bill,) = monthly_bills(db, calendar, [0], "0x" + "00" * 20, january, GRID_PRICE)
    assert bill.local_cost == 300 * 100 + 200 * 2**55  # beyond 64 bits, exact
    assert bill.local_revenue == 700 * 2**55
    assert bill.energy.complement == 400
    assert bill.grid_cost == 400 * GRID_PRICE
