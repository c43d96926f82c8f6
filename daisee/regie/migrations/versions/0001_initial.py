"""The first schema: meters, settled intervals and steps, their hourly sums, the blocks indexed, the
sign-in nonces and sessions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _quantities() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger, nullable=False) for name in ("cons", "autocons", "prod", "autoprod")]


def upgrade() -> None:
    op.create_table(
        "meta", sa.Column("key", sa.String(32), primary_key=True), sa.Column("value", sa.String(256), nullable=False)
    )
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "meters",
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("meter_id", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("payout", sa.String(42), nullable=False),
        sa.Column("active_from", sa.BigInteger, nullable=False),
        sa.Column("open_data", sa.Boolean, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "intervals",
        sa.Column("interval", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("price_per_wh", sa.BigInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_intervals_block", "intervals", ["block"])
    op.create_table(
        "steps",
        sa.Column("meter_idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("interval", sa.BigInteger, primary_key=True, autoincrement=False),
        *_quantities(),
        sa.Column("block", sa.BigInteger, nullable=False),
    )
    op.create_index("steps_by_block", "steps", ["block"])
    op.create_table(
        "meter_hours",
        sa.Column("meter_idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
        *_quantities(),
    )
    op.create_table(
        "loop_hours",
        sa.Column("hour", sa.BigInteger, primary_key=True, autoincrement=False),
        *_quantities(),
    )
    op.create_table(
        "nonces",
        sa.Column("nonce", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
