"""Sign-in throttling: failed attempts per account, API key and client address, in one table
every API process shares; and room for `key:<name>` (an admin API key) as an API key's creator.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signinthrottle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("signinthrottle_pkey")),
    )
    with op.batch_alter_table("signinthrottle", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_signinthrottle_last_failure_at"), ["last_failure_at"], unique=False
        )
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.alter_column(
            "created_by",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=120),
            existing_nullable=False,
        )


def downgrade() -> None:
    # The code before this revision kept 64 characters of a key's creator.
    op.execute("UPDATE apikey SET created_by = substr(created_by, 1, 64)")
    with op.batch_alter_table("apikey", schema=None) as batch_op:
        batch_op.alter_column(
            "created_by",
            existing_type=sa.String(length=120),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("signinthrottle", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signinthrottle_last_failure_at"))
    op.drop_table("signinthrottle")
