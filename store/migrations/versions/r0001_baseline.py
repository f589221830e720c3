"""The baseline: the schema as the code before migrations made it (create_all).

A database that code made has every table of this revision and no `alembic_version`: it is
adopted, not created (its rows stay as they are). On PostgreSQL its constraints already carry
the names of the metadata's naming convention (PostgreSQL's own defaults); on SQLite they have
no names at all, so the four tables with a unique constraint are rebuilt (batch mode copies
their rows) to give those constraints the names a new database gets, and later migrations can
drop them by name on either.

The code before migrations brought its tables up to date at every start-up, so a database it
last opened is at this revision. One last opened by an older release may lack columns added
since: open it once with the last release before migrations, then upgrade (`alembic check`
then says whether its tables match the models).

Revision ID: 0001
Revises:
Create Date: 2026-12-07 16:03:51
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "apikey",
    "auditentry",
    "credithold",
    "creditnote",
    "customer",
    "escalation",
    "invoice",
    "orderrecord",
    "payment",
    "product",
    "productionorder",
    "refund",
    "reservation",
    "returnrecord",
    "revokedtoken",
    "shipment",
    "stockmovement",
    "user",
)
# Tables with a unique constraint, unnamed on SQLite before migrations.
UNIQUE_CONSTRAINED = ("credithold", "payment", "refund", "reservation")
# store/tables.py's naming convention as it was at this revision.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}
# SQLAlchemy stores an enum's member names (PostgreSQL: a type of its own).
ROLE = sa.Enum(
    "SALES",
    "APPROVER_L1",
    "APPROVER_L2",
    "WAREHOUSE",
    "PRODUCTION",
    "FINANCE",
    "OPS",
    "INTEGRATOR",
    "ADMIN",
    name="role",
)
DELIVERY_POLICY = sa.Enum("COMPLETE", "PARTIAL", name="deliverypolicy")


def upgrade() -> None:
    found = set() if context.is_offline_mode() else existing_tables()
    if not found:
        create()
    elif found == set(TABLES):
        adopt()
    else:
        missing = ", ".join(sorted(set(TABLES) - found))
        raise RuntimeError(
            f"the database has some of the tables but not {missing}: neither empty nor made "
            "by this product before migrations, so it is left as it is"
        )


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)  # with its indexes
    bind = op.get_bind()
    for enum in (ROLE, DELIVERY_POLICY):  # PostgreSQL's types; nothing on SQLite
        enum.drop(bind, checkfirst=True)


def existing_tables() -> set[str]:
    return set(sa.inspect(op.get_bind()).get_table_names()) & set(TABLES)


def adopt() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in UNIQUE_CONSTRAINED:
        with op.batch_alter_table(table, recreate="always", naming_convention=NAMING):
            pass


def create() -> None:
    op.create_table(
        "apikey",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column(
            "role",
            ROLE,
            nullable=False,
        ),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("apikey_pkey")),
    )
    op.create_table(
        "auditentry",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("auditentry_pkey")),
    )
    op.create_index(op.f("ix_auditentry_at"), "auditentry", ["at"], unique=False)
    op.create_index(op.f("ix_auditentry_order_no"), "auditentry", ["order_no"], unique=False)
    op.create_index(op.f("ix_auditentry_seq"), "auditentry", ["seq"], unique=True)
    op.create_table(
        "credithold",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("credithold_pkey")),
        sa.UniqueConstraint(
            "customer_id", "order_no", name=op.f("credithold_customer_id_order_no_key")
        ),
    )
    op.create_index(op.f("ix_credithold_customer_id"), "credithold", ["customer_id"], unique=False)
    op.create_table(
        "creditnote",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=96), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("creditnote_pkey")),
    )
    op.create_index(op.f("ix_creditnote_invoice_id"), "creditnote", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_creditnote_order_no"), "creditnote", ["order_no"], unique=False)
    op.create_table(
        "customer",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("customer_group", sa.String(length=64), nullable=False),
        sa.Column("credit_limit", sa.BigInteger(), nullable=False),
        sa.Column("payment_terms", sa.String(length=16), nullable=False),
        sa.Column("delivery_policy", DELIVERY_POLICY, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("customer_pkey")),
    )
    op.create_table(
        "escalation",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("sla", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("notify", sa.JSON(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("escalation_pkey")),
    )
    op.create_index(op.f("ix_escalation_fired_at"), "escalation", ["fired_at"], unique=False)
    op.create_index(op.f("ix_escalation_order_no"), "escalation", ["order_no"], unique=False)
    op.create_table(
        "invoice",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("paid_amount", sa.BigInteger(), nullable=False),
        sa.Column("credited_amount", sa.BigInteger(), nullable=False),
        sa.Column("payment_terms", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("invoice_pkey")),
    )
    op.create_index(op.f("ix_invoice_customer_id"), "invoice", ["customer_id"], unique=False)
    op.create_index(op.f("ix_invoice_order_no"), "invoice", ["order_no"], unique=False)
    op.create_table(
        "orderrecord",
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=80), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("entered_by", sa.String(length=120), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("view", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("order_no", name=op.f("orderrecord_pkey")),
    )
    op.create_index(
        op.f("ix_orderrecord_customer_id"), "orderrecord", ["customer_id"], unique=False
    )
    op.create_index(
        "ix_orderrecord_customer_received",
        "orderrecord",
        ["customer_id", "received_at", "order_no"],
        unique=False,
    )
    op.create_index(op.f("ix_orderrecord_overdue"), "orderrecord", ["overdue"], unique=False)
    op.create_index(
        op.f("ix_orderrecord_received_at"), "orderrecord", ["received_at"], unique=False
    )
    op.create_index(op.f("ix_orderrecord_status"), "orderrecord", ["status"], unique=False)
    op.create_index(
        "ix_orderrecord_status_received",
        "orderrecord",
        ["status", "received_at", "order_no"],
        unique=False,
    )
    op.create_table(
        "payment",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("invoice_id", sa.String(length=96), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=120), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("payment_pkey")),
        sa.UniqueConstraint("order_no", "reference", name=op.f("payment_order_no_reference_key")),
    )
    op.create_index(op.f("ix_payment_order_no"), "payment", ["order_no"], unique=False)
    op.create_table(
        "product",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_price", sa.BigInteger(), nullable=False),
        sa.Column("safety_stock", sa.Integer(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("stock_on_hand", sa.Integer(), nullable=False),
        sa.Column("reserved", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("product_pkey")),
    )
    op.create_table(
        "productionorder",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("produced_quantity", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("productionorder_pkey")),
    )
    op.create_index(
        op.f("ix_productionorder_order_no"), "productionorder", ["order_no"], unique=False
    )
    op.create_table(
        "refund",
        sa.Column("id", sa.String(length=100), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("payment_id", sa.String(length=120), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("refund_pkey")),
        sa.UniqueConstraint("payment_id", name=op.f("refund_payment_id_key")),
    )
    op.create_index(op.f("ix_refund_order_no"), "refund", ["order_no"], unique=False)
    op.create_table(
        "reservation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("reservation_pkey")),
        sa.UniqueConstraint("order_no", "line_no", name=op.f("reservation_order_no_line_no_key")),
    )
    op.create_index(op.f("ix_reservation_order_no"), "reservation", ["order_no"], unique=False)
    op.create_table(
        "returnrecord",
        sa.Column("return_no", sa.String(length=64), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("restocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("view", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("return_no", name=op.f("returnrecord_pkey")),
    )
    op.create_index(op.f("ix_returnrecord_order_no"), "returnrecord", ["order_no"], unique=False)
    op.create_table(
        "revokedtoken",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("revokedtoken_pkey")),
    )
    op.create_table(
        "shipment",
        sa.Column("id", sa.String(length=96), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=False),
        sa.Column("return_no", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("carrier", sa.String(length=120), nullable=True),
        sa.Column("tracking_no", sa.String(length=120), nullable=True),
        sa.Column("signed_by", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("shipment_pkey")),
    )
    op.create_index(op.f("ix_shipment_order_no"), "shipment", ["order_no"], unique=False)
    op.create_table(
        "stockmovement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("order_no", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("stockmovement_pkey")),
    )
    op.create_index(op.f("ix_stockmovement_sku"), "stockmovement", ["sku"], unique=False)
    op.create_table(
        "user",
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column(
            "role",
            ROLE,
            nullable=False,
        ),
        sa.Column("customer_ids", sa.JSON(), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("demo", sa.Boolean(), nullable=False),
        sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("user_pkey")),
    )
