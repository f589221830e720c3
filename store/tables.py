"""The tables. `table=True` classes stay on the activity/API side of Temporal."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, computed_field, field_validator
from sqlalchemy import JSON, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.auth import Role
from domain.money import Money
from domain.orders import PAYMENT_TERMS_PATTERN, DeliveryPolicy
from domain.statuses import InvoiceStatus, ProductionOrderStatus, ReservationStatus, ShipmentStatus
from domain.text import ID_PATTERN, without_control_characters
from store.types import MoneyType, UTCDateTime

# Constraint names alembic can find again: PostgreSQL's own defaults for the unnamed
# constraints the code before migrations created (`<table>_pkey`, `<table>_<columns>_key`), so a
# database made then already has these names; SQLAlchemy's default for indexes.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s_check",
    "fk": "%(table_name)s_%(column_0_N_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


# Counts and flags in request bodies are JSON integers and booleans: `"1"`, `true` for a count, or
# `"true"`, `1` for a flag, is a 422 (pydantic's strict mode; a table model is not validated).
STRICT: dict[str, Any] = {"strict": True}


class RequestBody(SQLModel):
    """A catalog request body: unknown fields are refused, and so is text with control
    characters (`domain.text`)."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return without_control_characters(value)


# --- master data: customers ------------------------------------------------------------


class CustomerBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    region: str = Field(min_length=1, max_length=64)
    customer_group: str = Field(default="standard", min_length=1, max_length=64)
    credit_limit: Money = Field(default=Decimal(0), ge=0, le=10**12, sa_type=MoneyType)
    payment_terms: str = Field(
        default="net_30", schema_extra={"pattern": PAYMENT_TERMS_PATTERN}, max_length=16
    )
    delivery_policy: DeliveryPolicy = Field(
        default=DeliveryPolicy.COMPLETE,
        max_length=16,
        description="`complete`: ship when everything is ready; `partial`: ship what is ready, "
        "backorder the rest.",
    )
    transit_days: int | None = Field(
        default=None,
        ge=0,
        le=60,
        schema_extra=STRICT,
        description="Working days from dispatch to the customer; the policy's default if null.",
    )
    active: bool = Field(default=True, schema_extra=STRICT)


class CustomerCreate(CustomerBase, RequestBody):
    customer_id: str = Field(min_length=1, max_length=64, schema_extra={"pattern": ID_PATTERN})


class Customer(CustomerBase, table=True):
    customer_id: str = Field(primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerUpdate(RequestBody):
    """`PATCH /customers/{id}`: only the fields sent change."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    region: str | None = Field(default=None, min_length=1, max_length=64)
    customer_group: str | None = Field(default=None, min_length=1, max_length=64)
    credit_limit: Money | None = Field(default=None, ge=0, le=10**12)
    payment_terms: str | None = Field(
        default=None, schema_extra={"pattern": PAYMENT_TERMS_PATTERN}, max_length=16
    )
    delivery_policy: DeliveryPolicy | None = None
    transit_days: int | None = Field(default=None, ge=0, le=60, schema_extra=STRICT)
    active: bool | None = Field(default=None, schema_extra=STRICT)


class CreditHoldRelease(RequestBody):
    comment: str | None = Field(default=None, max_length=2000)


class CustomerPublic(CustomerBase):
    customer_id: str
    created_at: datetime
    credit_hold: bool = Field(
        default=False, description="New orders need approval while an overdue invoice is unpaid."
    )


# --- master data: products and stock -----------------------------------------------------


class ProductBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    unit_price: Money = Field(ge=0, le=10**12, sa_type=MoneyType)
    safety_stock: int = Field(default=0, ge=0, le=10**9, schema_extra=STRICT)
    lead_time_days: int = Field(default=5, ge=0, le=365, schema_extra=STRICT)


class ProductCreate(ProductBase, RequestBody):
    sku: str = Field(min_length=1, max_length=64, schema_extra={"pattern": ID_PATTERN})
    stock_on_hand: int = Field(default=0, ge=0, le=10**9, schema_extra=STRICT)


class Product(ProductBase, table=True):
    sku: str = Field(primary_key=True, max_length=64)
    stock_on_hand: int = Field(default=0, ge=0)
    reserved: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProductPublic(ProductBase):
    sku: str
    stock_on_hand: int
    reserved: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        return self.stock_on_hand - self.reserved

    @computed_field  # type: ignore[prop-decorator]
    @property
    def below_safety_stock(self) -> bool:
        return self.available < self.safety_stock


class StockAdjustment(RequestBody):
    delta: int = Field(
        ge=-(10**9),
        le=10**9,
        description="Units to add (or remove, negative).",
        schema_extra=STRICT,
    )
    reason: str = Field(min_length=1, max_length=200)


class StockMovement(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(index=True, max_length=64)
    delta: int
    reason: str = Field(max_length=200)
    order_no: str | None = Field(default=None, max_length=64)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


# --- what the order workflow's activities create ------------------------------------------


class Reservation(SQLModel, table=True):
    """Stock held for one order line; one row per order and line, so reserving is idempotent."""

    __table_args__ = (UniqueConstraint("order_no", "line_no"),)

    id: int | None = Field(default=None, primary_key=True)
    order_no: str = Field(index=True, max_length=64)
    line_no: int
    sku: str = Field(max_length=64)
    quantity: int = 0
    status: str = Field(default=ReservationStatus.ACTIVE, max_length=16)  # ReservationStatus
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProductionOrder(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=96)
    order_no: str = Field(index=True, max_length=64)
    line_no: int
    sku: str = Field(max_length=64)
    quantity: int
    produced_quantity: int = 0
    due_date: date
    # planned | partially_completed | completed | cancelled (ProductionOrderStatus)
    status: str = Field(default=ProductionOrderStatus.PLANNED, max_length=24)
    created_at: datetime = Field(sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Shipment(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=96)
    order_no: str = Field(index=True, max_length=64)
    return_no: str | None = Field(default=None, max_length=64)  # a replacement for a return
    status: str = Field(
        default=ShipmentStatus.READY, max_length=16
    )  # ready | dispatched | delivered | cancelled
    lines: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    carrier: str | None = Field(default=None, max_length=120)
    tracking_no: str | None = Field(default=None, max_length=120)
    signed_by: str | None = Field(default=None, max_length=120)
    created_at: datetime = Field(sa_type=UTCDateTime)
    dispatched_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invoice(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=96)
    order_no: str = Field(index=True, max_length=64)
    customer_id: str = Field(index=True, max_length=64)
    amount: Decimal = Field(sa_type=MoneyType)
    paid_amount: Decimal = Field(default=Decimal(0), sa_type=MoneyType)
    # What credit notes took off it (a return of goods not yet paid for): owed no longer.
    credited_amount: Decimal = Field(default=Decimal(0), sa_type=MoneyType)
    payment_terms: str = Field(max_length=16)
    due_date: date
    status: str = Field(default=InvoiceStatus.ISSUED, max_length=16)  # InvoiceStatus
    issued_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def outstanding(self) -> Decimal:
        return self.amount - self.paid_amount - self.credited_amount

    def settle_if_covered(self) -> None:
        """Paid (settled) once payments and credit notes cover it."""
        if self.outstanding <= 0:
            self.status = InvoiceStatus.PAID


class CreditNote(SQLModel, table=True):
    """Cancels an invoice that was paid (or part-paid); the payments are refunded."""

    id: str = Field(primary_key=True, max_length=100)
    order_no: str = Field(index=True, max_length=64)
    invoice_id: str = Field(index=True, max_length=96)
    amount: Decimal = Field(sa_type=MoneyType)
    reason: str = Field(default="", max_length=200)
    issued_at: datetime = Field(sa_type=UTCDateTime)


class Refund(SQLModel, table=True):
    """Money paid back: one per payment, never two."""

    id: str = Field(primary_key=True, max_length=100)
    order_no: str = Field(index=True, max_length=64)
    # A payment's id, or "credit:<credit note id>" (a return, a short-close).
    payment_id: str = Field(unique=True, max_length=120)
    amount: Decimal = Field(sa_type=MoneyType)
    reason: str = Field(default="", max_length=200)
    refunded_at: datetime = Field(sa_type=UTCDateTime)


class Payment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("order_no", "reference"),)

    id: str = Field(primary_key=True, max_length=96)
    order_no: str = Field(index=True, max_length=64)
    invoice_id: str = Field(max_length=96)
    amount: Decimal = Field(sa_type=MoneyType)
    method: str = Field(max_length=120)
    reference: str = Field(max_length=120)
    received_at: datetime = Field(sa_type=UTCDateTime)


# --- the read model and the audit trail ----------------------------------------------------


class OrderRecord(SQLModel, table=True):
    """The order read model: lists, reports and closed orders. The workflow writes it."""

    order_no: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(max_length=80)
    customer_id: str = Field(index=True, max_length=64)
    status: str = Field(index=True, max_length=32)
    total: Decimal = Field(sa_type=MoneyType)
    priority: str = Field(max_length=16)
    entered_by: str = Field(max_length=120)
    fingerprint: str = Field(max_length=64)
    seq: int = 0
    closed: bool = False
    overdue: bool = Field(default=False, index=True)
    escalation_level: int = 0
    received_at: datetime = Field(index=True, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # When this row was last written (the writer's clock, not the workflow's): the live
    # updates' change feed reads the rows written since a moment (`store.changes`).
    changed_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    view: dict[str, Any] = Field(sa_type=JSON)

    # GET /orders?status= and ?customer_id=: filtered, newest first, straight from an index.
    __table_args__ = (
        Index("ix_orderrecord_status_received", "status", "received_at", "order_no"),
        Index("ix_orderrecord_customer_received", "customer_id", "received_at", "order_no"),
    )


class AuditEntry(SQLModel, table=True):
    """Append-only record of what was done to which order, by whom, with what outcome.

    The entries form a chain (`domain/audit.py`): entry `seq` (1, 2, ... with no gap, NOT NULL
    and unique) carries `hash` = HMAC-SHA256, under the audit key named by `key_id`, of its own
    content, its `seq`, its key id and `prev_hash`, the hash of entry `seq - 1`. Without the key,
    whoever can write this table cannot edit, insert, reorder or delete an entry, nor re-hash
    the chain after it, without `python -m store.audit verify` naming the first bad entry, and
    `GET /audit` marks every entry that does not verify. Deleting the last entries breaks no
    link: that shows against the checkpoints of the chain's head kept outside the database (the
    audit anchor in Temporal, or an exported checkpoint), not for entries after the latest one.
    Nothing protects against someone who holds the key. Entries from before keys (`key_id` "")
    carry a plain SHA-256 and may only begin the chain, up to `AUDIT_LEGACY_ENTRIES` of them.
    """

    id: str = Field(primary_key=True, max_length=64)
    seq: int = Field(index=True, unique=True)
    at: datetime = Field(index=True, sa_type=UTCDateTime)
    order_no: str = Field(index=True, max_length=64)
    action: str = Field(max_length=64)
    actor: str = Field(max_length=120)
    role: str = Field(default="", max_length=32)
    source: str = Field(default="", max_length=120, description="Where the command came from.")
    outcome: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    prev_hash: str = Field(default="", max_length=64)
    hash: str = Field(default="", max_length=64)
    key_id: str = Field(
        default="", max_length=32, sa_column_kwargs={"server_default": ""}
    )  # "": before keys


class Escalation(SQLModel, table=True):
    """The escalation log: every ladder step that fired, and when its deadline was resolved."""

    id: str = Field(primary_key=True, max_length=200)  # the notification id
    order_no: str = Field(index=True, max_length=64)
    sla: str = Field(max_length=32)
    key: str = Field(max_length=96)
    step: int
    kind: str = Field(max_length=16)
    level: int
    notify: list[str] = Field(default_factory=list, sa_type=JSON)
    due_at: datetime = Field(sa_type=UTCDateTime)
    fired_at: datetime = Field(index=True, sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CreditHold(SQLModel, table=True):
    """A customer on credit hold (信用冻结) because of one order's overdue invoice."""

    __table_args__ = (UniqueConstraint("customer_id", "order_no"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(index=True, max_length=64)
    order_no: str = Field(max_length=64)
    reason: str = Field(default="", max_length=200)
    placed_at: datetime = Field(sa_type=UTCDateTime)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReturnRecord(SQLModel, table=True):
    """The returns read model (退换货), linked to its order."""

    return_no: str = Field(primary_key=True, max_length=64)
    order_no: str = Field(index=True, max_length=64)
    customer_id: str = Field(max_length=64)
    status: str = Field(max_length=32)
    fingerprint: str = Field(max_length=64)
    seq: int = 0
    restocked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    view: dict[str, Any] = Field(sa_type=JSON)


# --- identity: users, API keys, revoked tokens ----------------------------------------------


class UserBase(SQLModel):
    display_name: str = Field(default="", max_length=120)
    role: Role = Field(max_length=32)
    customer_ids: list[str] = Field(
        default_factory=list,
        sa_type=JSON,
        max_length=1000,
        description="Sales scoping: the customers whose orders this user sees (with `regions`; "
        "both empty: all).",
    )
    regions: list[str] = Field(default_factory=list, sa_type=JSON, max_length=100)
    active: bool = True


class User(UserBase, table=True):
    """A person who signs in with a password (`POST /auth/token`)."""

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=200)
    demo: bool = Field(default=False, description="A demo user: signs in only in development.")
    tokens_valid_after: datetime = Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        description="Tokens issued before this are revoked (password, role or status changed).",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A long-lived key for a machine client; only the SHA-256 of its secret is stored. Its
    `name` is stored as given; the caller it makes is `key:<name>` (`api.auth`)."""

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    role: Role = Field(max_length=32)
    secret_hash: str = Field(max_length=64)
    created_by: str = Field(max_length=120)  # a user, or `key:<name>` (an admin key)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RevokedToken(SQLModel, table=True):
    """A signed token revoked before its expiry (signed out)."""

    jti: str = Field(primary_key=True, max_length=64)
    username: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class SignInThrottle(SQLModel, table=True):
    """Failed attempts at a secret (a password, an API key's secret) for one account, key or
    client address: what every API process consults before checking one (`store.throttle`)."""

    key: str = Field(primary_key=True, max_length=200)  # e.g. `password:account:li.wei`
    failures: int = Field(default=0, description="Since the last success or forgotten spell.")
    last_failure_at: datetime = Field(index=True, sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


# --- people's notifications -----------------------------------------------------------------


class UserContact(SQLModel, table=True):
    """How a user is reached outside the app: e-mail, and the language of what is sent.
    A table beside `user` (none: no address, the app's default language), so the sign-in's
    own table keeps its shape for every process that reads it."""

    username: str = Field(primary_key=True, max_length=64)
    email: str | None = Field(default=None, max_length=254)
    language: str | None = Field(default=None, max_length=8)


class PersonNotice(SQLModel, table=True):
    """One fired ladder step for one person of a role it named: their in-app notification
    and its e-mail. Written once per (step, person) by the notification activity, however
    often it is retried; the facts only, the words are found when it is read (their language).
    """

    __table_args__ = (
        UniqueConstraint("notification_id", "username"),
        # The unread count on every page, and the person's list newest first.
        Index("ix_personnotice_unread", "username", "read_at"),
        Index("ix_personnotice_list", "username", "fired_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notification_id: str = Field(max_length=200)  # the step's id (Escalation.id)
    username: str = Field(max_length=64)
    role: str = Field(max_length=32)  # the role the step named that this person holds
    order_no: str = Field(max_length=64)
    sla: str = Field(max_length=32)
    kind: str = Field(max_length=16)
    level: int
    action: str | None = Field(default=None, max_length=16)
    message: str | None = Field(default=None, max_length=500)
    due_at: datetime = Field(sa_type=UTCDateTime)
    fired_at: datetime = Field(sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The e-mail: claimed by one attempt at a time, sent once (see activities/notifications.py).
    email_claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    emailed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    emailed_to: str | None = Field(default=None, max_length=254)
    email_error: str | None = Field(default=None, max_length=300)
