"""The order read model's `changed_at`: when the row was last written (the writer's clock),
indexed, so the web app's live updates read the orders changed since a moment. Rows written
before it have none until their next save (they are not new changes).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orderrecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_orderrecord_changed_at"), ["changed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("orderrecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orderrecord_changed_at"))
        batch_op.drop_column("changed_at")
