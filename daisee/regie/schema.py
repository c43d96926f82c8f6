"""The régie's tables, one schema on SQLite and PostgreSQL (SQLAlchemy Core); Alembic's migrations in
`migrations/` build it, and a test checks that they build exactly this.

Energies are whole Wh and prices whole token units a Wh, as the chain has them (both fit 64 bits); money is
computed from them in Python, exactly (a month's bill in an 18-decimal token does not fit 64 bits). Every
row written from an event carries its block, so that a reorganisation deletes what it undid. Curves are
read from hourly sums kept by the write path: a member's year is 8,760 rows, whatever the loop's step.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, SmallInteger, String, Table

metadata = MetaData()


def _quantities() -> list[Column[int]]:
    """The four measured quantities of the field (Enedis' names; COMPLEMENT and SURPLUS are differences)."""
    return [Column(name, BigInteger, nullable=False) for name in ("cons", "autocons", "prod", "autoprod")]


meta = Table(
    "meta",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("value", String(256), nullable=False),
)

blocks = Table(  # the blocks indexed lately, to tell a reorganisation
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

meters = Table(
    "meters",
    metadata,
    Column("idx", Integer, primary_key=True, autoincrement=False),  # the loop registry's index
    Column("meter_id", LargeBinary(32), nullable=False, unique=True),
    Column("kind", SmallInteger, nullable=False),
    Column("payout", String(42), nullable=False),
    Column("active_from", BigInteger, nullable=False),
    Column("open_data", Boolean, nullable=False),  # the producer shows its figures to funders
    Column("block", BigInteger, nullable=False),
)

intervals = Table(  # settled intervals
    "intervals",
    metadata,
    Column("interval", BigInteger, primary_key=True, autoincrement=False),
    Column("price_per_wh", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False, index=True),
)

steps = Table(  # a meter's settled step
    "steps",
    metadata,
    Column("meter_idx", Integer, primary_key=True, autoincrement=False),
    Column("interval", BigInteger, primary_key=True, autoincrement=False),
    *_quantities(),
    Column("block", BigInteger, nullable=False),
    Index("steps_by_block", "block"),
)

meter_hours = Table(  # a meter's steps summed by UTC hour (hours since the epoch)
    "meter_hours",
    metadata,
    Column("meter_idx", Integer, primary_key=True, autoincrement=False),
    Column("hour", BigInteger, primary_key=True, autoincrement=False),
    *_quantities(),
)

loop_hours = Table(  # the loop's steps summed by UTC hour
    "loop_hours",
    metadata,
    Column("hour", BigInteger, primary_key=True, autoincrement=False),
    *_quantities(),
)

nonces = Table(  # handed out for a sign-in, taken by it (epoch seconds)
    "nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
)

sessions = Table(  # signed-in accounts, by the SHA-256 of their cookie's token (a copy of the store opens none)
    "sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("address", String(42), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
