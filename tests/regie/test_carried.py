"""A meter whose gateway was down: its late reading's energy of the intervals it missed went to and came from
the grid (`EnergyCarried`); the régie books it in those intervals, as COMPLEMENT, and in the member's bill."""

from __future__ import annotations

from sqlalchemy import Engine, select

from daisee.chain.connect import connect
from daisee.regie.bills import monthly_bills
from daisee.regie.calendar import Granularity, zone
from daisee.regie.curves import Period, member_curve
from daisee.regie.indexer import Indexer
from daisee.regie.schema import meters
from tests.contract.conftest import make_signed_loop


def test_a_late_readings_earlier_energy_is_booked_in_the_intervals_it_missed_as_grid_energy(store: Engine) -> None:
    loop = make_signed_loop(connect("embedded"), grace_seconds=60)  # intervals 0 to 3 are over
    producer, consumer, prosumer = loop.households
    deployed = int(loop.chain.w3.eth.block_number)
    for t in range(3):  # the consumer's gateway is down for intervals 0 to 2
        loop.loop.submit([loop.sign(producer, t, 0, 900 * (t + 1)), loop.sign(prosumer, t, 400 * (t + 1), 0)])
        loop.settle_through(t)
    loop.loop.submit([loop.sign(consumer, 3, 8_251, 0)])  # back: 8,251 Wh since its admission
    loop.loop.submit([loop.sign(producer, 3, 0, 3_600), loop.sign(prosumer, 3, 1_600, 0)])
    loop.settle_through(3)

    indexer = Indexer(store, loop.loop, deployed - 10, zone("Europe/Paris"))
    indexer.catch_up()
    calendar = indexer.calendar
    with store.connect() as db:
        idx = db.execute(select(meters.c.idx).where(meters.c.meter_id == consumer.meter_id)).scalar_one()
        day = Period(calendar.start(0), calendar.start(4))
        steps = member_curve(db, calendar, [idx], day, Granularity.STEP).energy
        (bill,) = monthly_bills(db, calendar, [idx], consumer.payout, Period(calendar.start(0), calendar.start(4)), 250)
    own, late = steps[3], [e for e in steps[:3] if e is not None]
    assert own is not None
    assert own.prod == 0
    carried = 8_251 - own.cons  # what the consumer drew while its gateway was down
    assert [e.cons for e in late] == [carried // 3 + (i < carried % 3) for i in range(3)]
    assert all(e.autocons == 0 and e.prod == 0 for e in late)  # from the grid, all of it
    assert bill.energy.cons == 8_251
    assert bill.grid_cost == (8_251 - bill.energy.autocons) * 250
