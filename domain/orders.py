"""The order as integrators submit it and as everyone sees it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, computed_field

from domain.calendar import MAX_DURATION_DAYS
from domain.money import Money, as_number
from domain.promise import PromiseView
from domain.statuses import (
    CLOSED_DEADLINES,
    DeadlineStatus,
    InvoiceStatus,
    OrderStatus,
    ProductionOrderStatus,
    ShipmentStatus,
)
from domain.statuses import DeliveryPolicy as DeliveryPolicy  # where it was before promises

ORDER_NO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PAYMENT_TERMS_PATTERN = r"^(prepaid|net_[0-9]{1,3})$"

OrderNo = Annotated[str, StringConstraints(pattern=ORDER_NO_PATTERN)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
PaymentTerms = Annotated[str, StringConstraints(pattern=PAYMENT_TERMS_PATTERN)]


class Priority(StrEnum):
    NORMAL = "normal"
    RUSH = "rush"


class ApproverRole(StrEnum):
    """The two approval levels: supervisor (销售主管) and manager (销售经理)."""

    APPROVER_L1 = "approver_l1"
    APPROVER_L2 = "approver_l2"

    @property
    def level(self) -> int:
        return 1 if self is ApproverRole.APPROVER_L1 else 2


def net_days(payment_terms: str) -> int | None:
    """Days of credit for `net_<days>` terms; None for `prepaid`."""
    match = re.fullmatch(r"net_([0-9]+)", payment_terms)
    return int(match.group(1)) if match else None


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Caller(Frozen):
    """Who sent a command, as the API authenticated them: the role and where from
    (`token@<address>` or `api_key@<address>`). The workflow writes them on the audit entry of
    the command's effect, next to the name its input already carries."""

    role: str = ""
    source: str = ""


class FromCaller(BaseModel):
    """A workflow input a person sends through the API. `caller` is None from code, and in
    histories written before it existed."""

    caller: Caller | None = None


class OrderLineRequest(Frozen):
    """One line as submitted. Business rules (positive quantity, known SKU) are entry validation."""

    sku: ShortText
    quantity: int = Field(ge=-(10**9), le=10**9)
    unit_price: Money | None = Field(default=None, ge=-(10**12), le=10**12, decimal_places=4)


class OrderSubmission(Frozen):
    """`POST /orders`: what an integrator or a sales rep submits (who: from the token)."""

    order_no: OrderNo | None = Field(
        default=None,
        description="Your order number; the workflow id derives from it. Generated when absent.",
    )
    customer_id: ShortText
    lines: list[OrderLineRequest] = Field(min_length=1, max_length=500)
    requested_delivery_date: date | None = None
    priority: Priority = Priority.NORMAL
    payment_terms: PaymentTerms | None = Field(
        default=None, description="`prepaid` or `net_<days>`; the customer's terms when absent."
    )
    notes: str | None = Field(default=None, max_length=2000)
    shipping_address: str | None = Field(default=None, min_length=1, max_length=500)
    delivery_policy: DeliveryPolicy | None = Field(
        default=None, description="`complete` or `partial`; the customer's when absent."
    )


class OrderRequest(OrderSubmission):
    """The submission with its author: the order workflow's input."""

    entered_by: ShortText

    def fingerprint(self) -> str:
        """A digest of the request's content: the same body resubmitted has the same one.

        Absent optional fields are left out, so adding a field never changes old digests.
        """
        body = self.model_dump_json(exclude={"order_no"}, exclude_none=True)
        return hashlib.sha256(body.encode()).hexdigest()


class Amendment(Frozen):
    """`PATCH /orders/{order_no}` (修改): only the fields sent change."""

    lines: list[OrderLineRequest] | None = Field(default=None, min_length=1, max_length=500)
    requested_delivery_date: date | None = None
    shipping_address: str | None = Field(default=None, min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)

    def changed_fields(self) -> set[str]:
        """The fields sent with a value (null means "no change": dates are not cleared)."""
        return {
            name
            for name in ("lines", "requested_delivery_date", "shipping_address")
            if getattr(self, name) is not None
        }


class AmendOrderInput(Amendment, FromCaller):
    """The amendment with who asked for it: the workflow update's input."""

    requested_by: ShortText
    today: date | None = Field(
        default=None,
        description="The company's date when the API took the request (the workflow knows "
        "only UTC's): a requested delivery date before it is in the past.",
    )


class Problem(Frozen):
    """One reason an input is refused, pointing at the offending field."""

    field: str
    message: str


class ApprovalReason(Frozen):
    code: str
    message: str
    level: int = Field(description="The approval level this reason requires (1 or 2).")


class ApprovalDecision(Frozen):
    level: int
    decision: str = Field(description="`approved` or `rejected`.")
    approver: str
    role: str
    comment: str | None = None
    at: datetime


class PricedLine(BaseModel):
    """A line as entry validation priced it."""

    line_no: int
    sku: str
    name: str
    quantity: int
    list_price: Money
    unit_price: Money
    discount_pct: Money = Field(description="How far below list, in percent.")
    amount: Money


class OrderLineView(PricedLine):
    short_closed_quantity: int = 0
    reserved_quantity: int = 0
    produced_quantity: int = 0
    shipped_quantity: int = 0
    delivered_quantity: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ordered_quantity(self) -> int:
        """The same as `quantity`, named beside the other quantities."""
        return self.quantity

    @computed_field  # type: ignore[prop-decorator]
    @property
    def backordered_quantity(self) -> int:
        """Ordered, not shipped, not in stock for it yet (缺货): waits for goods."""
        return max(
            0,
            self.quantity
            - self.short_closed_quantity
            - self.shipped_quantity
            - self.reserved_quantity,
        )

    @property
    def to_ship(self) -> int:
        return self.quantity - self.short_closed_quantity - self.shipped_quantity


class ProductionOrderView(BaseModel):
    id: str
    line_no: int
    sku: str
    quantity: int
    produced_quantity: int = 0
    due_date: date
    status: ProductionOrderStatus
    created_at: datetime
    completed_at: datetime | None = None


class ShipmentLineView(BaseModel):
    line_no: int
    sku: str
    quantity: int


class ShipmentView(BaseModel):
    id: str
    status: ShipmentStatus
    lines: list[ShipmentLineView]
    created_at: datetime
    carrier: str | None = None
    tracking_no: str | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None
    signed_by: str | None = None


class InvoiceView(BaseModel):
    id: str
    amount: Money
    paid_amount: Money
    credited_amount: Money = Field(
        default=Money(0), description="Taken off by credit notes (returned goods not yet paid)."
    )
    due_date: date
    status: InvoiceStatus

    @property
    def outstanding(self) -> Money:
        return self.amount - self.paid_amount - self.credited_amount

    issued_at: datetime


class PaymentView(BaseModel):
    id: str
    invoice_id: str
    amount: Money
    method: str
    reference: str
    received_at: datetime


class CreditNoteView(BaseModel):
    id: str
    invoice_id: str
    amount: Money
    issued_at: datetime


class RefundView(BaseModel):
    id: str
    payment_id: str
    amount: Money
    refunded_at: datetime


class ChangeView(BaseModel):
    """One amendment: what changed (field: [before, after]; lines as a diff), who, why."""

    revision: int
    at: datetime
    requested_by: str
    reason: str
    fields: dict[str, list[Any]] = Field(default_factory=dict)
    lines: list[dict[str, Any]] = Field(default_factory=list)
    reapproval: bool = False
    approved_by: list[str] = Field(
        default_factory=list, description="Who approved this revision (filled once decided)."
    )
    superseded_approvals: list[str] = Field(
        default_factory=list, description="Decisions on the earlier content this change voided."
    )


class TimelineEntry(BaseModel):
    at: datetime
    event: str
    actor: str
    status: str = Field(description="The order's (or return's) status after this step.")
    detail: str | None = None


class CreditView(BaseModel):
    credit_limit: Money
    open_receivables: Money
    exposure: Money = Field(
        description="Open receivables plus this order (nothing for a prepaid order)."
    )


class EscalationView(BaseModel):
    """A ladder step that fired: reminder, escalation or action."""

    step: int
    kind: str
    level: int
    notify: list[str]
    action: str | None = None
    message: str | None = None
    at: datetime
    notification_id: str
    delivered_at: datetime | None = None


class DeadlineView(BaseModel):
    """One SLA of the order: when it is due and how it stands."""

    sla: str
    key: str
    started_at: datetime
    due_at: datetime
    status: DeadlineStatus = DeadlineStatus.ON_TRACK
    met_at: datetime | None = None
    paused_at: datetime | None = Field(default=None, description="Set while the order is on hold.")
    escalation_level: int = 0
    held_by: list[str] = Field(default_factory=list, description="Who the last step notified.")
    escalations: list[EscalationView] = Field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.sla}:{self.key}"

    @property
    def open(self) -> bool:
        return self.status not in CLOSED_DEADLINES


class HoldView(BaseModel):
    kind: str = Field(description="`manual` or `credit`.")
    reason: str
    by: str
    at: datetime
    resume_status: str = Field(description="Where the order returns on release.")


class CancellationView(BaseModel):
    reason_code: str
    by: str
    at: datetime
    comment: str | None = None


class ApprovalView(BaseModel):
    required_levels: int = 0
    reasons: list[ApprovalReason] = Field(default_factory=list)
    awaiting_level: int | None = None


class WrittenConfirmationView(BaseModel):
    """书面确认: why the order needs the customer's signed confirmation, and the signature."""

    reason: str
    required_at: datetime
    document_reference: str | None = None
    confirmed_by_customer_contact: str | None = None
    recorded_by: str | None = None
    confirmed_at: datetime | None = None


class OrderView(BaseModel):
    """Everything anyone may ask about one order: the workflow's state, served by query."""

    order_no: str
    workflow_id: str
    status: OrderStatus
    status_label: dict[str, str]
    customer_id: str
    customer_name: str | None = None
    entered_by: str
    priority: Priority
    payment_terms: str | None = None
    delivery_policy: DeliveryPolicy = DeliveryPolicy.COMPLETE
    requested_delivery_date: date | None = None
    shipping_address: str | None = None
    notes: str | None = None
    currency: str = "CNY"
    revision: int = 1
    changes: list[ChangeView] = Field(default_factory=list)
    lines: list[OrderLineView] = Field(default_factory=list)
    total: Money = Money(0)
    credit: CreditView | None = None
    approval: ApprovalView = Field(default_factory=ApprovalView)
    approvals: list[ApprovalDecision] = Field(default_factory=list)
    production_orders: list[ProductionOrderView] = Field(default_factory=list)
    shipments: list[ShipmentView] = Field(default_factory=list)
    invoices: list[InvoiceView] = Field(default_factory=list)
    payments: list[PaymentView] = Field(default_factory=list)
    credit_notes: list[CreditNoteView] = Field(default_factory=list)
    refunds: list[RefundView] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    deadlines: list[DeadlineView] = Field(default_factory=list)
    overdue: bool = False
    escalation_level: int = 0
    cancellation: CancellationView | None = None
    hold: HoldView | None = None
    return_status: str | None = Field(
        default=None, description="The latest return's status (退换货); the order's own stays."
    )
    returns: list[dict[str, str]] = Field(default_factory=list)
    waiting_for: str | None = Field(default=None, description="What the order waits on now.")
    promise: PromiseView | None = Field(
        default=None,
        description="The delivery promise made at confirmation (none for orders confirmed "
        "before promises existed, or not yet confirmed).",
    )
    written_confirmation: WrittenConfirmationView | None = Field(
        default=None, description="Set when the order needs the customer's written confirmation."
    )
    problems: list[Problem] = Field(default_factory=list)
    received_at: datetime
    updated_at: datetime
    closed: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def promise_summary(self) -> str:
        """The promise in a line: "promised 2026-12-18 (from stock)", or "no promise recorded"
        (not yet confirmed, or confirmed before promises existed)."""
        if self.promise is None:
            return "no promise recorded"
        return f"promised {self.promise.promised_date} ({self.promise.basis})"


def production_order_id(order_no: str, line_no: int, revision: int = 1) -> str:
    """The production order a short line of this revision gets (one per line and revision)."""
    return f"PO-{order_no}-{line_no}" + (f"-r{revision}" if revision > 1 else "")


def status_label(status: OrderStatus) -> dict[str, str]:
    return {"en": status.label_en, "zh": status.label_zh}


def workflow_id_for(order_no: str) -> str:
    """The order's workflow id: one workflow per order number, ever."""
    return f"order-{order_no}"


def line_diff(before: Sequence[PricedLine], after: Sequence[PricedLine]) -> list[dict[str, Any]]:
    """Lines added, removed or changed (quantity, price), by SKU."""
    old = {line.sku: line for line in before}
    new = {line.sku: line for line in after}
    diff: list[dict[str, Any]] = []
    for sku in sorted(old.keys() | new.keys()):
        was, now = old.get(sku), new.get(sku)
        if was is None and now is not None:
            diff.append(
                {
                    "sku": sku,
                    "change": "added",
                    "quantity": now.quantity,
                    "unit_price": str(now.unit_price),
                }
            )
        elif now is None and was is not None:
            diff.append({"sku": sku, "change": "removed", "quantity": was.quantity})
        elif (
            was is not None
            and now is not None
            and (was.quantity, was.unit_price) != (now.quantity, now.unit_price)
        ):
            diff.append(
                {
                    "sku": sku,
                    "change": "changed",
                    "quantity": [was.quantity, now.quantity],
                    "unit_price": [as_number(was.unit_price), as_number(now.unit_price)],
                }
            )
    return diff


def delivery_date_problem(requested: date, today: date) -> str | None:
    """Why a requested delivery date cannot be taken (the company's `today`), None if it can:
    not in the past, and within the years every deadline can be planned in (ten)."""
    if requested < today:
        return "must not be in the past"
    if requested > today + timedelta(days=MAX_DURATION_DAYS):
        return f"must be within {MAX_DURATION_DAYS} days (ten years) of today"
    return None
