"""The régie's tables, one schema on SQLite and PostgreSQL (SQLAlchemy Core); Alembic's migrations in
`migrations/` build it, and a test checks that they build exactly this.

Energies are whole Wh (they fit 64 bits); amounts of money are decimal text, summed in Python: a side's
payment is up to 136 bits on chain. Every row written from an event carries its block, so that a
reorganisation deletes what it undid. Curves are read from sums by bucket (the loop's step, and the civil
hours, days and months of the store's time zone), kept by the write path: a member's year at hourly
resolution is 8,760 rows, whatever the number of meters, and they lie together: SQLite keeps a meter's sums in
their key's order (a table without rowid), PostgreSQL reads them from its key alone (the quantities are
included in it), instead of from 8,760 places in a table of tens of millions of rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
)

metadata = MetaData()
QUANTITIES = ("cons", "autocons", "prod", "autoprod")  # Enedis' names; COMPLEMENT and SURPLUS are differences
AMOUNT = String(80)  # a token amount, in decimal digits


def _quantities() -> list[Column[int]]:
    return [Column(name, BigInteger, nullable=False) for name in QUANTITIES]


def _bucket_key(*, primary_key: bool = True) -> list[Column[int]]:
    """A bucket: its level (`Level`) and its start, in seconds since the epoch."""
    return [
        Column("level", SmallInteger, primary_key=primary_key, autoincrement=False),
        Column("start", BigInteger, primary_key=primary_key, autoincrement=False),
    ]


meta = Table(  # the loop's calendar and terms' bounds, the store's zone, how far it has indexed
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
    Column("payout", String(42), nullable=False, index=True),
    Column("active_from", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("removed_block", BigInteger, nullable=True),
)

terms = Table(  # the loop's terms as scheduled: an epoch's latest schedule is the one that holds
    "terms",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("epoch", Integer, nullable=False),
    Column("allocation_key", SmallInteger, nullable=False),
    Column("price_per_wh", BigInteger, nullable=False),
    Column("from_interval", BigInteger, nullable=False),
)

intervals = Table(  # settled intervals and their price
    "intervals",
    metadata,
    Column("interval", BigInteger, primary_key=True, autoincrement=False),
    Column("price_per_wh", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False, index=True),
)

meter_sums = Table(  # a meter's settled energy by bucket, kept in the order a member's curve reads it
    "meter_sums",
    metadata,
    Column("meter_idx", Integer, autoincrement=False),
    *_bucket_key(primary_key=False),
    *_quantities(),
    PrimaryKeyConstraint("meter_idx", "level", "start", postgresql_include=list(QUANTITIES)),
    Index("meter_sums_by_bucket", "level", "start", *QUANTITIES),  # the loop's sums are read from it alone
    sqlite_with_rowid=False,
)

loop_sums = Table(  # the loop's settled energy by bucket, how many meters make it and the largest share
    "loop_sums",
    metadata,
    *_bucket_key(),
    *_quantities(),
    Column("consumers", Integer, nullable=False),  # meters with CONS > 0
    Column("producers", Integer, nullable=False),  # meters with PROD > 0
    Column("max_cons", BigInteger, nullable=False),
    Column("max_prod", BigInteger, nullable=False),
)

sides = Table(  # the settled sides of the blocks a reorganisation may still undo
    "sides",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("meter_idx", Integer, primary_key=True, autoincrement=False),
    Column("interval", BigInteger, primary_key=True, autoincrement=False),
    Column("production", Boolean, primary_key=True, autoincrement=False),
    Column("energy_wh", BigInteger, nullable=False),
    Column("local_wh", BigInteger, nullable=False),
)

unpaid = Table(  # sides not fully paid at settlement: the rest became a debt, or a receivable
    "unpaid",
    metadata,
    Column("meter_idx", Integer, primary_key=True, autoincrement=False),
    Column("interval", BigInteger, primary_key=True, autoincrement=False),
    Column("production", Boolean, primary_key=True, autoincrement=False),
    Column("amount", AMOUNT, nullable=False),
    Column("block", BigInteger, nullable=False, index=True),
)

ledger = Table(  # deposits, withdrawals, repaid debts, paid receivables
    "ledger",
    metadata,
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("account", String(42), nullable=False, index=True),
    Column("entry", String(16), nullable=False),
    Column("amount", AMOUNT, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
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

links = Table(  # one-time codes that open a session in a browser, by their SHA-256 (`daisee regie login`)
    "links",
    metadata,
    Column("code_hash", LargeBinary(32), primary_key=True),
    Column("address", String(42), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

consents = Table(  # the consent registry's grants, and their revocation (see daisee.consent.model)
    "consents",
    metadata,
    Column("consent_id", LargeBinary(32), primary_key=True),
    Column("meter_idx", Integer, nullable=False, index=True),
    Column("grantor", String(42), nullable=False),
    Column("audience", SmallInteger, nullable=False),
    Column("grantee", String(42), nullable=False, index=True),
    Column("purpose", SmallInteger, nullable=False),
    Column("kinds", SmallInteger, nullable=False),
    Column("granularity", SmallInteger, nullable=False),  # its code on chain
    Column("history_days", Integer, nullable=False),
    Column("valid_from", BigInteger, nullable=False),
    Column("valid_until", BigInteger, nullable=False),
    Column("nonce", AMOUNT, nullable=False),
    Column("block", BigInteger, nullable=False, index=True),
    Column("revoked_block", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),  # the revocation's block time
)

access_log = Table(  # every access to a member's data by anyone but the member; rows are only ever added
    "access_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("at", BigInteger, nullable=False),
    Column("meter_idx", Integer, nullable=False, index=True),
    Column("reader", String(42), nullable=False),  # an account, or "anyone" for a page open to everyone
    Column("basis", String(24), nullable=False),  # the consent's purpose, or "billing" for the loop's PMO
    Column("consent_id", LargeBinary(32), nullable=True),
    Column("what", String(32), nullable=False),  # curve, bills, comparison, export.csv…
    Column("data_from", BigInteger, nullable=False),
    Column("data_until", BigInteger, nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("hash", LargeBinary(32), nullable=False),  # keccak(previous hash ‖ this entry): the running hash
)
