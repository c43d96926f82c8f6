"""The store's write path for settled energy: each settled side added to its meter's sums by bucket (the
loop's step, and the civil hour, day and month it starts in), the loop's sums of the buckets it touched
recomputed from the meters' (with how many meters make them and the largest), and a journal of the sides of
recent blocks, so that a reorganisation can take them out again."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, case, delete, func, select, tuple_

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


def record(
    db: Connection, settled: Mapping[int, Sequence[Side]], calendar: LoopCalendar, *, journal: bool = True
) -> None:
    """Add the sides `settled` by the block that mined them to the sums, in the caller's transaction (one
    write of each sum however many blocks); and to the journal unless `journal` is false (blocks too deep
    for any reorganisation to undo)."""
    every = [side for sides_of_block in settled.values() for side in sides_of_block]
    if not every:
        return
    if journal:
        columns = "block, meter_idx, interval, production, energy_wh, local_wh"
        rows = [
            (block, s.meter_idx, s.interval, s.production, s.energy_wh, s.local_wh)
            for block, sides_of_block in settled.items()
            for s in sides_of_block
        ]
        _many(db, f"INSERT INTO sides ({columns}) VALUES ({_marks(db, 6)})", rows)
    _add(db, every, calendar, +1)


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


def _many(db: Connection, statement: str, rows: Sequence[tuple[object, ...]]) -> None:
    """`statement` for each of `rows`, through the driver's executemany: SQLAlchemy's own compiling of each
    row's parameters cost a quarter of the write path."""
    db.exec_driver_sql(statement, list(rows))


def _marks(db: Connection, count: int) -> str:
    mark = "%s" if db.dialect.name == "postgresql" else "?"
    return ", ".join([mark] * count)


_UPSERT_SUMS = (
    "INSERT INTO meter_sums (meter_idx, level, start, cons, autocons, prod, autoprod) VALUES ({marks}) "
    "ON CONFLICT (meter_idx, level, start) DO UPDATE SET cons = meter_sums.cons + excluded.cons, "
    "autocons = meter_sums.autocons + excluded.autocons, prod = meter_sums.prod + excluded.prod, "
    "autoprod = meter_sums.autoprod + excluded.autoprod"
)


def _add(db: Connection, changed: Iterable[Side], calendar: LoopCalendar, sign: int) -> None:
    """Add (sign +1) or subtract (-1) `changed` to its meters' sums, then recompute the loop's."""
    by_meter: dict[tuple[int, int, int], list[int]] = {}
    starts: dict[int, list[tuple[int, int]]] = {}  # an interval's (level, start) of each summed granularity
    for side in changed:
        buckets = starts.get(side.interval)
        if buckets is None:
            buckets = starts[side.interval] = [
                (summed, int(calendar.bucket(side.interval, granularity).start.timestamp()))
                for summed, granularity in enumerate(SUMMED)
            ]
        column = 2 if side.production else 0  # CONS and AUTOCONS, or PROD and AUTOPROD
        for summed, start in buckets:
            sums = by_meter.get((side.meter_idx, summed, start))
            if sums is None:
                sums = by_meter[(side.meter_idx, summed, start)] = [0, 0, 0, 0]
            sums[column] += sign * side.energy_wh
            sums[column + 1] += sign * side.local_wh
    rows = [(m, summed, start, *sums) for (m, summed, start), sums in by_meter.items()]
    _many(db, _UPSERT_SUMS.format(marks=_marks(db, 7)), rows)
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
