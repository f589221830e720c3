"""The HTTP contract of orders and returns: the answers clients read, apart from the Temporal
contract (`domain.orders.OrderView`, `domain.returns.ReturnView`) they are built from.

The shapes are today's, field for field. A field added here is an HTTP change only: it needs a
source in `order_public` / `return_public`, never a new field in a workflow's state or a history
payload; a field added to a workflow's view stays inside until it is added here.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.money import Money
from domain.orders import DeliveryPolicy, OrderView, Priority
from domain.returns import ReturnResolution, ReturnStatus, ReturnView
from domain.statuses import OrderStatus


class _Closed(BaseModel):
    """Parts published as closed objects (`additionalProperties: false`), as they always were."""

    model_config = ConfigDict(extra="forbid")


class ProblemPublic(_Closed):
    """One reason an input is refused, pointing at the offending field."""

    field: str
    message: str


class ApprovalReasonPublic(_Closed):
    code: str
    message: str
    level: int = Field(description="The approval level this reason requires (1 or 2).")


class ApprovalDecisionPublic(_Closed):
    level: int
    decision: str = Field(description="`approved` or `rejected`.")
    approver: str
    role: str
    comment: str | None = None
    at: datetime


class OrderLinePublic(BaseModel):
    line_no: int
    sku: str
    name: str
    quantity: int
    list_price: Money
    unit_price: Money
    discount_pct: Money = Field(description="How far below list, in percent.")
    amount: Money
    short_closed_quantity: int = 0
    reserved_quantity: int = 0
    produced_quantity: int = 0
    shipped_quantity: int = 0
    delivered_quantity: int = 0

    ordered_quantity: int = Field(
        description="The same as `quantity`, named beside the other quantities.",
        json_schema_extra={"readOnly": True},
    )
    backordered_quantity: int = Field(
        description="Ordered, not shipped, not in stock for it yet (缺货): waits for goods.",
        json_schema_extra={"readOnly": True},
    )


class OrderProductionOrderPublic(BaseModel):
    id: str
    line_no: int
    sku: str
    quantity: int
    produced_quantity: int = 0
    due_date: date
    status: str = Field(description="`planned`, `completed` or `cancelled`.")
    created_at: datetime
    completed_at: datetime | None = None


class ShipmentLinePublic(BaseModel):
    line_no: int
    sku: str
    quantity: int


class OrderShipmentPublic(BaseModel):
    id: str
    status: str = Field(description="`ready`, `dispatched`, `delivered` or `cancelled`.")
    lines: list[ShipmentLinePublic]
    created_at: datetime
    carrier: str | None = None
    tracking_no: str | None = None
    dispatched_at: datetime | None = None
    delivered_at: datetime | None = None
    signed_by: str | None = None


class InvoicePublic(BaseModel):
    id: str
    amount: Money
    paid_amount: Money
    credited_amount: Money = Field(
        default=Money(0), description="Taken off by credit notes (returned goods not yet paid)."
    )
    due_date: date
    status: str = Field(
        description="`issued`, `paid` (settled: paid, or paid and credited), `void` or `credited`."
    )
    issued_at: datetime


class PaymentPublic(BaseModel):
    id: str
    invoice_id: str
    amount: Money
    method: str
    reference: str
    received_at: datetime


class CreditNotePublic(BaseModel):
    id: str
    invoice_id: str
    amount: Money
    issued_at: datetime


class RefundPublic(BaseModel):
    id: str
    payment_id: str
    amount: Money
    refunded_at: datetime


class ChangePublic(BaseModel):
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


class TimelineEntryPublic(BaseModel):
    at: datetime
    event: str
    actor: str
    status: str = Field(description="The order's (or return's) status after this step.")
    detail: str | None = None


class CreditPublic(BaseModel):
    credit_limit: Money
    open_receivables: Money
    exposure: Money = Field(
        description="Open receivables plus this order (nothing for a prepaid order)."
    )


class EscalationPublic(BaseModel):
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


class DeadlinePublic(BaseModel):
    """One SLA of the order: when it is due and how it stands."""

    sla: str
    key: str
    started_at: datetime
    due_at: datetime
    status: str = Field(
        default="on_track", description="`on_track`, `at_risk`, `breached`, `met` or `cancelled`."
    )
    met_at: datetime | None = None
    paused_at: datetime | None = Field(default=None, description="Set while the order is on hold.")
    escalation_level: int = 0
    held_by: list[str] = Field(default_factory=list, description="Who the last step notified.")
    escalations: list[EscalationPublic] = Field(default_factory=list)


class HoldPublic(BaseModel):
    kind: str = Field(description="`manual` or `credit`.")
    reason: str
    by: str
    at: datetime
    resume_status: str = Field(description="Where the order returns on release.")


class CancellationPublic(BaseModel):
    reason_code: str
    by: str
    at: datetime
    comment: str | None = None


class ApprovalPublic(BaseModel):
    required_levels: int = 0
    reasons: list[ApprovalReasonPublic] = Field(default_factory=list)
    awaiting_level: int | None = None


class PromisePartPublic(BaseModel):
    quantity: int
    ship_date: date
    delivery_date: date
    basis: str
    basis_zh: str


class LinePromisePublic(BaseModel):
    line_no: int
    sku: str
    quantity: int
    ship_date: date
    delivery_date: date
    basis: str = Field(description='In words: "from stock", "after production order PO-… due …".')
    basis_zh: str
    parts: list[PromisePartPublic] = Field(default_factory=list)


class ShipmentPromisePublic(BaseModel):
    ship_date: date
    delivery_date: date
    lines: list[int]


class PromiseChangePublic(BaseModel):
    at: datetime
    old: date
    new: date
    reason: str


class PromisePublic(BaseModel):
    """The delivery promise (交期承诺) made at confirmation."""

    confirmed_at: datetime
    revision: int = Field(default=1, description="The order's revision it was made for.")
    first_promised_date: date = Field(
        description="Never changes after confirmation: what on-time delivery is measured by."
    )
    promised_date: date = Field(description="The current promise; moves are in `history`.")
    ship_date: date
    first_delivery_date: date
    basis: str
    basis_zh: str
    delivery_policy: DeliveryPolicy
    lines: list[LinePromisePublic] = Field(default_factory=list)
    shipments: list[ShipmentPromisePublic] = Field(default_factory=list)
    history: list[PromiseChangePublic] = Field(default_factory=list)
    earliest_possible_date: date | None = Field(
        default=None, description="Set when the requested delivery date is earlier than this."
    )
    warning: str | None = None


class WrittenConfirmationPublic(BaseModel):
    """书面确认: why the customer must sign, and (once recorded) the signed document."""

    reason: str
    required_at: datetime
    document_reference: str | None = None
    confirmed_by_customer_contact: str | None = None
    recorded_by: str | None = None
    confirmed_at: datetime | None = None


class OrderPublic(BaseModel):
    """Everything anyone may ask about one order (`GET /orders/{order_no}`, every command's
    answer)."""

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
    changes: list[ChangePublic] = Field(default_factory=list)
    lines: list[OrderLinePublic] = Field(default_factory=list)
    total: Money = Money(0)
    credit: CreditPublic | None = None
    approval: ApprovalPublic = Field(default_factory=ApprovalPublic)
    approvals: list[ApprovalDecisionPublic] = Field(default_factory=list)
    production_orders: list[OrderProductionOrderPublic] = Field(default_factory=list)
    shipments: list[OrderShipmentPublic] = Field(default_factory=list)
    invoices: list[InvoicePublic] = Field(default_factory=list)
    payments: list[PaymentPublic] = Field(default_factory=list)
    credit_notes: list[CreditNotePublic] = Field(default_factory=list)
    refunds: list[RefundPublic] = Field(default_factory=list)
    timeline: list[TimelineEntryPublic] = Field(default_factory=list)
    deadlines: list[DeadlinePublic] = Field(default_factory=list)
    overdue: bool = False
    escalation_level: int = 0
    cancellation: CancellationPublic | None = None
    hold: HoldPublic | None = None
    return_status: str | None = Field(
        default=None, description="The latest return's status (退换货); the order's own stays."
    )
    returns: list[dict[str, str]] = Field(default_factory=list)
    waiting_for: str | None = Field(default=None, description="What the order waits on now.")
    promise: PromisePublic | None = None
    written_confirmation: WrittenConfirmationPublic | None = None
    problems: list[ProblemPublic] = Field(default_factory=list)
    received_at: datetime
    updated_at: datetime
    closed: bool = False
    promise_summary: str = Field(
        default="no promise recorded",
        description='"promised <date> (<basis>)", or "no promise recorded".',
    )


class ReturnLinePublic(BaseModel):
    sku: str
    name: str
    line_no: int = Field(description="The order line the goods come from.")
    quantity: int
    unit_price: Money
    accepted_quantity: int | None = None


class ReturnDecisionPublic(BaseModel):
    decision: str
    by: str
    at: datetime
    comment: str | None = None


class ReturnPublic(BaseModel):
    return_no: str
    workflow_id: str
    order_no: str
    customer_id: str
    customer_group: str | None = Field(default=None, description="Its SLA tier.")
    status: ReturnStatus
    status_label: dict[str, str]
    resolution: ReturnResolution
    reason: str
    requested_by: str
    lines: list[ReturnLinePublic]
    decision: ReturnDecisionPublic | None = None
    credit_note: CreditNotePublic | None = None
    refund: RefundPublic | None = None
    replacement: OrderShipmentPublic | None = None
    timeline: list[TimelineEntryPublic] = Field(default_factory=list)
    deadlines: list[DeadlinePublic] = Field(default_factory=list)
    overdue: bool = False
    escalation_level: int = 0
    requested_at: datetime
    updated_at: datetime
    closed: bool = False


def order_public(view: OrderView) -> OrderPublic:
    """The HTTP answer for an order, from the workflow's view (query, update answer or the
    read model's archived copy)."""
    return OrderPublic.model_validate(view, from_attributes=True)


def return_public(view: ReturnView) -> ReturnPublic:
    """The HTTP answer for a return, from the return workflow's view."""
    return ReturnPublic.model_validate(view, from_attributes=True)


class OverdueDeadline(BaseModel):
    """A breached deadline, as `GET /reports/overdue` and an overdue order in `GET /orders`
    show it."""

    order_no: str
    customer_id: str
    sla: str
    key: str
    due_at: datetime
    overdue_seconds: int
    overdue_for: str
    escalation_level: int
    held_by: list[str]
