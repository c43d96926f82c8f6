"""A meter's sums kept together, and the loop's read from an index alone: on SQLite the table is kept in its
key's order (without rowid), on PostgreSQL its key includes the quantities, so that a member's year of hours
is read from one place; the index by bucket holds the quantities, so that the loop's sums are recomputed
without visiting the table.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
QUANTITIES = ["cons", "autocons", "prod", "autoprod"]
KEY = "PRIMARY KEY (meter_idx, level, start)"


def upgrade() -> None:
    if _sqlite():
        _rebuild(" WITHOUT ROWID")
    else:
        _key(f"INCLUDE ({', '.join(QUANTITIES)})")
    _index_by_bucket(["level", "start", *QUANTITIES])


def downgrade() -> None:
    if _sqlite():
        _rebuild("")
    else:
        _key("")
    _index_by_bucket(["level", "start"])


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _rebuild(options: str) -> None:
    """SQLite cannot change how a table is kept: a copy kept the new way replaces it."""
    columns = ", ".join(["meter_idx", "level", "start", *QUANTITIES])
    op.execute(
        "CREATE TABLE meter_sums_rebuilt (meter_idx INTEGER NOT NULL, level SMALLINT NOT NULL, "
        "start BIGINT NOT NULL, cons BIGINT NOT NULL, autocons BIGINT NOT NULL, prod BIGINT NOT NULL, "
        f"autoprod BIGINT NOT NULL, {KEY}){options}"
    )
    op.execute(f"INSERT INTO meter_sums_rebuilt ({columns}) SELECT {columns} FROM meter_sums")
    op.execute("DROP TABLE meter_sums")
    op.execute("ALTER TABLE meter_sums_rebuilt RENAME TO meter_sums")


def _key(include: str) -> None:
    op.execute(
        f"ALTER TABLE meter_sums DROP CONSTRAINT meter_sums_pkey, ADD CONSTRAINT meter_sums_pkey {KEY} {include}"
    )


def _index_by_bucket(columns: list[str]) -> None:
    op.execute("DROP INDEX IF EXISTS meter_sums_by_bucket")
    op.create_index("meter_sums_by_bucket", "meter_sums", columns)
