"""A production order's status fits `partially_completed` (24 characters, was 16).

PostgreSQL enforces the length; SQLite does not, and batch mode rebuilds the table there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("productionorder", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.VARCHAR(length=16),
            type_=sa.String(length=24),
            existing_nullable=False,
        )


def downgrade() -> None:
    # The code before this revision knew a partly reported production order as still planned.
    op.execute("UPDATE productionorder SET status = 'planned' WHERE status = 'partially_completed'")
    with op.batch_alter_table("productionorder", schema=None) as batch_op:
        batch_op.alter_column(
            "status",
            existing_type=sa.String(length=24),
            type_=sa.VARCHAR(length=16),
            existing_nullable=False,
        )
