"""Session links: a one-time code that opens a session in a browser, for a member who signed in from the
command line (`daisee regie login`).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("links")
