"""The audit chain is keyed: each entry names the audit key that sealed it (`key_id`, "" for
the plain SHA-256 entries written before), and `seq` is NOT NULL (still unique), so every entry
has its place in the chain.

An entry found without a `seq` is not deleted (audit entries never are): it is given the seqs
after the chain's last, in `at` order, and keeps its stored hashes, so `python -m store.audit
verify` reports it. Batch mode rebuilds the table on SQLite.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    last = conn.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM auditentry")).scalar_one()
    unplaced = conn.execute(
        sa.text("SELECT id FROM auditentry WHERE seq IS NULL ORDER BY at, id")
    ).scalars()
    for seq, entry_id in enumerate(list(unplaced), start=last + 1):
        conn.execute(
            sa.text("UPDATE auditentry SET seq = :seq WHERE id = :id"), {"seq": seq, "id": entry_id}
        )
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_id", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    # The code before this revision reads every keyed entry as broken (it knew only SHA-256).
    with op.batch_alter_table("auditentry", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=True)
        batch_op.drop_column("key_id")
