"""Consents: the consent registry's grants and revocations, and the append-only access log. A producer's
figures for funders now follow its `open_data` consent, not a flag of the store.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
APPEND_ONLY = {  # triggers that refuse to change or remove an access log entry, per dialect
    "sqlite": [
        f"CREATE TRIGGER access_log_no_{verb} BEFORE {verb.upper()} ON access_log "
        "BEGIN SELECT RAISE(ABORT, 'the access log is append-only'); END"
        for verb in ("update", "delete")
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the access log is append-only'; END $$",
        "CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log "
        "FOR EACH ROW EXECUTE FUNCTION access_log_append_only()",
        "CREATE TRIGGER access_log_not_truncated BEFORE TRUNCATE ON access_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only()",
    ],
}


def upgrade() -> None:
    op.create_table(
        "consents",
        sa.Column("consent_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("meter_idx", sa.Integer, nullable=False, index=True),
        sa.Column("grantor", sa.String(42), nullable=False),
        sa.Column("audience", sa.SmallInteger, nullable=False),
        sa.Column("grantee", sa.String(42), nullable=False, index=True),
        sa.Column("purpose", sa.SmallInteger, nullable=False),
        sa.Column("kinds", sa.SmallInteger, nullable=False),
        sa.Column("granularity", sa.SmallInteger, nullable=False),
        sa.Column("history_days", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.BigInteger, nullable=False),
        sa.Column("valid_until", sa.BigInteger, nullable=False),
        sa.Column("nonce", sa.String(80), nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False, index=True),
        sa.Column("revoked_block", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "access_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("meter_idx", sa.Integer, nullable=False, index=True),
        sa.Column("reader", sa.String(42), nullable=False),
        sa.Column("basis", sa.String(24), nullable=False),
        sa.Column("consent_id", sa.LargeBinary(32), nullable=True),
        sa.Column("what", sa.String(32), nullable=False),
        sa.Column("data_from", sa.BigInteger, nullable=False),
        sa.Column("data_until", sa.BigInteger, nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    for statement in APPEND_ONLY[op.get_bind().dialect.name]:
        op.execute(statement)
    with op.batch_alter_table("meters") as meters:
        meters.drop_column("open_data")


def downgrade() -> None:
    with op.batch_alter_table("meters") as meters:
        meters.add_column(sa.Column("open_data", sa.Boolean, nullable=False, server_default=sa.false()))
    op.drop_table("access_log")
    op.drop_table("consents")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION access_log_append_only()")
