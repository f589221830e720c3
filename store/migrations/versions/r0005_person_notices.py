"""People's notifications: one row per fired ladder step per person of the roles it names
(their in-app list and its e-mail, once each); and how a person is reached outside the app
(e-mail address, language), in a table beside `user`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "personnotice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notification_id", sa.String(length=200), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("sla", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("email_claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emailed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("emailed_to", sa.String(length=254), nullable=True),
        sa.Column("email_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("personnotice_pkey")),
        sa.UniqueConstraint(
            "notification_id", "username", name=op.f("personnotice_notification_id_username_key")
        ),
    )
    with op.batch_alter_table("personnotice", schema=None) as batch_op:
        batch_op.create_index("ix_personnotice_list", ["username", "fired_at"], unique=False)
        batch_op.create_index("ix_personnotice_unread", ["username", "read_at"], unique=False)

    op.create_table(
        "usercontact",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.PrimaryKeyConstraint("username", name=op.f("usercontact_pkey")),
    )


def downgrade() -> None:
    op.drop_table("usercontact")
    with op.batch_alter_table("personnotice", schema=None) as batch_op:
        batch_op.drop_index("ix_personnotice_unread")
        batch_op.drop_index("ix_personnotice_list")

    op.drop_table("personnotice")
