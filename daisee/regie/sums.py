"""The store's write path for settled energy: each settled side added to its meter's sums by bucket (the
loop's step, and the civil hour, day and month it starts in), the loop's sums of the buckets it touched
recomputed from the meters' (with how many meters make them and the largest), and a journal of the sides of
recent blocks, so that a reorganisation can take them out again."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, case, delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from daisee.regie.calendar import Granularity, LoopCalendar
from daisee.regie.schema import QUANTITIES, loop_sums, meter_sums, sides

SUMMED = (Granularity.STEP, Granularity.HOUR, Granularity.DAY, Granularity.MONTH)  # a sum's level: its place here

_SIDE_COLUMNS = (sides.c.meter_idx, sides.c.interval, sides.c.production, sides.c.energy_wh, sides.c.local_wh)


def level(granularity: Granularity) -> int:
    """The `level` of the sums kept by `granularity` (years are summed from months)."""
    return SUMMED.index(granularity)


@dataclass(frozen=True)
class Side:
    """One meter's settled side of an interval: energy consumed and allocated from the loop (CONS, AUTOCONS),
    or produced and sold in it (PROD, AUTOPROD), in Wh."""

    meter_idx: int
    interval: int
    production: bool
    energy_wh: int
    local_wh: int

    @property
    def quantities(self) -> tuple[int, int, int, int]:
        """CONS, AUTOCONS, PROD, AUTOPROD."""
        if self.production:
            return 0, 0, self.energy_wh, self.local_wh
        return self.energy_wh, self.local_wh, 0, 0


def record(db: Connection, settled: Sequence[Side], block: int, calendar: LoopCalendar) -> None:
    """Add `settled` (mined in `block`) to the sums, and to the journal, in the caller's transaction."""
    if not settled:
        return
    db.execute(sides.insert(), [{"block": block, **_row(side)} for side in settled])
    _add(db, settled, calendar, +1)


def undo_from(db: Connection, block: int, calendar: LoopCalendar) -> int:
    """Take the sides of `block` and later ones out of the sums and the journal; how many there were."""
    undone = [Side(*row) for row in db.execute(select(*_SIDE_COLUMNS).where(sides.c.block >= block))]
    if undone:
        _add(db, undone, calendar, -1)
        db.execute(delete(sides).where(sides.c.block >= block))
    return len(undone)


def forget_before(db: Connection, block: int) -> None:
    """Drop the journal's sides of blocks before `block`: no reorganisation goes that deep."""
    db.execute(delete(sides).where(sides.c.block < block))


def _row(side: Side) -> dict[str, object]:
    return {
        "meter_idx": side.meter_idx,
        "interval": side.interval,
        "production": side.production,
        "energy_wh": side.energy_wh,
        "local_wh": side.local_wh,
    }


def _add(db: Connection, changed: Iterable[Side], calendar: LoopCalendar, sign: int) -> None:
    """Add (sign +1) or subtract (-1) `changed` to its meters' sums, then recompute the loop's."""
    by_meter: dict[tuple[int, int, int], Counter[str]] = {}
    for side in changed:
        amounts = Counter(dict(zip(QUANTITIES, (sign * q for q in side.quantities), strict=True)))
        for summed, granularity in enumerate(SUMMED):
            start = int(calendar.bucket(side.interval, granularity).start.timestamp())
            by_meter.setdefault((side.meter_idx, summed, start), Counter()).update(amounts)
    rows = [
        {"meter_idx": m, "level": summed, "start": start, **{q: amounts[q] for q in QUANTITIES}}
        for (m, summed, start), amounts in by_meter.items()
    ]
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(meter_sums)
    upsert = upsert.on_conflict_do_update(
        index_elements=[c.name for c in meter_sums.primary_key],
        set_={q: meter_sums.c[q] + upsert.excluded[q] for q in QUANTITIES},
    )
    db.execute(upsert, rows)
    _recompute_loop(db, {(summed, start) for _, summed, start in by_meter})


def _recompute_loop(db: Connection, touched: set[tuple[int, int]]) -> None:
    """The loop's sums of the `touched` buckets, from its meters' sums."""
    keys = sorted(touched)
    for chunk in (keys[i : i + 500] for i in range(0, len(keys), 500)):
        where = tuple_(meter_sums.c.level, meter_sums.c.start).in_(chunk)
        db.execute(delete(loop_sums).where(tuple_(loop_sums.c.level, loop_sums.c.start).in_(chunk)))
        totals = select(
            meter_sums.c.level,
            meter_sums.c.start,
            *(func.sum(meter_sums.c[q]) for q in QUANTITIES),
            func.sum(case((meter_sums.c.cons > 0, 1), else_=0)),
            func.sum(case((meter_sums.c.prod > 0, 1), else_=0)),
            func.max(meter_sums.c.cons),
            func.max(meter_sums.c.prod),
        )
        totals = totals.where(where).group_by(meter_sums.c.level, meter_sums.c.start)
        columns = ["level", "start", *QUANTITIES, "consumers", "producers", "max_cons", "max_prod"]
        db.execute(loop_sums.insert().from_select(columns, totals))
