"""The first schema: the loop's meters, terms and settled intervals, the settled energy by bucket for each
meter and for the loop, the sides a reorganisation may undo, unpaid sides and ledger entries, the blocks
indexed, the sign-in nonces and sessions.

Revision ID: 0001
Revises:
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

QUANTITIES = ("cons", "autocons", "prod", "autoprod")


def _quantities() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in QUANTITIES]


def _bucket_key() -> list[sa.Column[int]]:
    return [
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("start", sa.BigInteger, primary_key=True, autoincrement=False),
    ]


def _key(name: str, kind: type[sa.types.TypeEngine[Any]]) -> sa.Column[Any]:
    return sa.Column(name, kind, primary_key=True, autoincrement=False)


def upgrade() -> None:
    op.create_table(
        "meta", sa.Column("key", sa.String(32), primary_key=True), sa.Column("value", sa.String(256), nullable=False)
    )
    op.create_table("blocks", _key("number", sa.BigInteger), sa.Column("hash", sa.LargeBinary(32), nullable=False))
    op.create_table(
        "meters",
        _key("idx", sa.Integer),
        sa.Column("meter_id", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("payout", sa.String(42), nullable=False),
        sa.Column("active_from", sa.BigInteger, nullable=False),
        sa.Column("open_data", sa.Boolean, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("removed_block", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_meters_payout", "meters", ["payout"])
    op.create_table(
        "terms",
        _key("block", sa.BigInteger),
        _key("log_index", sa.Integer),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("allocation_key", sa.SmallInteger, nullable=False),
        sa.Column("price_per_wh", sa.BigInteger, nullable=False),
        sa.Column("from_interval", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "intervals",
        _key("interval", sa.BigInteger),
        sa.Column("price_per_wh", sa.BigInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_intervals_block", "intervals", ["block"])
    op.create_table("meter_sums", _key("meter_idx", sa.Integer), *_bucket_key(), *_quantities())
    op.create_index("meter_sums_by_bucket", "meter_sums", ["level", "start"])
    op.create_table(
        "loop_sums",
        *_bucket_key(),
        *_quantities(),
        sa.Column("consumers", sa.Integer, nullable=False),
        sa.Column("producers", sa.Integer, nullable=False),
        sa.Column("max_cons", sa.BigInteger, nullable=False),
        sa.Column("max_prod", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sides",
        _key("block", sa.BigInteger),
        _key("meter_idx", sa.Integer),
        _key("interval", sa.BigInteger),
        _key("production", sa.Boolean),
        sa.Column("energy_wh", sa.BigInteger, nullable=False),
        sa.Column("local_wh", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "unpaid",
        _key("meter_idx", sa.Integer),
        _key("interval", sa.BigInteger),
        _key("production", sa.Boolean),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_unpaid_block", "unpaid", ["block"])
    op.create_table(
        "ledger",
        _key("block", sa.BigInteger),
        _key("log_index", sa.Integer),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("entry", sa.String(16), nullable=False),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("timestamp", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_ledger_account", "ledger", ["account"])
    op.create_table("nonces", sa.Column("nonce", sa.String(64), primary_key=True), _expiry())
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        _expiry(),
    )


def _expiry() -> sa.Column[int]:
    return sa.Column("expires_at", sa.BigInteger, nullable=False)


def downgrade() -> None:
    tables = ("sessions", "nonces", "ledger", "unpaid", "sides", "loop_sums", "meter_sums", "intervals", "terms")
    for table in (*tables, "meters", "blocks", "meta"):
        op.drop_table(table)
