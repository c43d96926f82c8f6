"""The store's write path for settled steps: each (meter, interval) once, added to the hourly sums the
curves are read from, and taken out again when a reorganisation undoes its block."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import astuple, dataclass

from sqlalchemy import Connection, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from daisee.regie.schema import loop_hours, meter_hours, steps

QUANTITIES = ("cons", "autocons", "prod", "autoprod")


@dataclass(frozen=True)
class Step:
    """A meter's settled step: CONS, AUTOCONS, PROD and AUTOPROD in Wh."""

    meter_idx: int
    interval: int
    cons: int
    autocons: int
    prod: int
    autoprod: int

    @property
    def quantities(self) -> tuple[int, int, int, int]:
        return self.cons, self.autocons, self.prod, self.autoprod


HourOf = Callable[[int], int]  # an interval's UTC hour (hours since the epoch) from its start


def record(db: Connection, settled: Sequence[Step], block: int, hour_of: HourOf) -> None:
    """Store `settled` (mined in `block`) and add it to the hourly sums, in the caller's transaction. A step
    already stored raises IntegrityError: an interval settles once."""
    if not settled:
        return
    db.execute(steps.insert(), [{**_row(step), "block": block} for step in settled])
    _add(db, settled, hour_of, +1)


def undo_from(db: Connection, block: int, hour_of: HourOf) -> int:
    """Delete the steps of `block` and later ones and take them out of the hourly sums; how many there were."""
    columns = [steps.c.meter_idx, steps.c.interval, *(steps.c[name] for name in QUANTITIES)]
    undone = [Step(*row) for row in db.execute(select(*columns).where(steps.c.block >= block))]
    if undone:
        _add(db, undone, hour_of, -1)
        db.execute(steps.delete().where(steps.c.block >= block))
    return len(undone)


def _row(step: Step) -> dict[str, int]:
    return dict(zip(("meter_idx", "interval", *QUANTITIES), astuple(step), strict=True))


def _add(db: Connection, changed: Iterable[Step], hour_of: HourOf, sign: int) -> None:
    """Add (sign +1) or subtract (-1) `changed` to the meters' and the loop's hourly sums."""
    by_meter: dict[tuple[int, int], Counter[str]] = {}
    by_hour: dict[int, Counter[str]] = {}
    for step in changed:
        hour = hour_of(step.interval)
        amounts = Counter(dict(zip(QUANTITIES, (sign * q for q in step.quantities), strict=True)))
        by_meter.setdefault((step.meter_idx, hour), Counter()).update(amounts)
        by_hour.setdefault(hour, Counter()).update(amounts)
    _upsert_sum(db, meter_hours, [{"meter_idx": m, "hour": h, **_full(c)} for (m, h), c in by_meter.items()])
    _upsert_sum(db, loop_hours, [{"hour": h, **_full(c)} for h, c in by_hour.items()])


def _full(amounts: Counter[str]) -> dict[str, int]:
    return {name: amounts[name] for name in QUANTITIES}


def _upsert_sum(db: Connection, table: Table, rows: list[dict[str, int]]) -> None:
    """Insert `rows`, or add their quantities to the rows of the same key."""
    dialect = postgresql if db.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table)
    keys = [column.name for column in table.primary_key]
    statement = statement.on_conflict_do_update(
        index_elements=keys, set_={name: table.c[name] + statement.excluded[name] for name in QUANTITIES}
    )
    db.execute(statement, rows)
