"""One input and one result model per workflow, update and activity: the Temporal contract.

New fields always get defaults, so histories of orders already running still decode.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.approval import ApprovalPolicy
from domain.money import Money
from domain.orders import (
    ApproverRole,
    CreditNoteView,
    CreditView,
    DeliveryPolicy,
    FromCaller,
    InvoiceView,
    OrderRequest,
    OrderView,
    PaymentView,
    PricedLine,
    Problem,
    ProductionOrderView,
    RefundView,
    ShipmentLineView,
    ShortText,
)
from domain.policy import Sla, StepAction, StepKind
from domain.promise import OrderPromise, Receipt

# --- the order workflow and the updates people send it -------------------------------------


class OrderWorkflowInput(FromCaller):
    order_no: str
    request: OrderRequest
    fingerprint: str


class SubmitOrderInput(BaseModel):
    """Delivered with the start (update-with-start) and with every resubmission of the number."""

    fingerprint: str


class SubmitOrderResult(BaseModel):
    created: bool = Field(description="False when this order number was already submitted.")
    order: OrderView


class Body(BaseModel):
    """A request body: unknown fields are refused (who acts comes from the token, never here)."""

    model_config = ConfigDict(extra="forbid")


class Approval(Body):
    """`POST /orders/{order_no}/approve`: the decision at the caller's level."""

    comment: str | None = Field(default=None, max_length=2000)


class ApproveOrderInput(Approval, FromCaller):
    approver: ShortText
    role: ApproverRole


class Rejection(Body):
    """`POST /orders/{order_no}/reject`."""

    reason: str = Field(min_length=1, max_length=2000)


class RejectOrderInput(Rejection, FromCaller):
    approver: ShortText
    role: ApproverRole


class ProductionReport(Body):
    """`POST /production-orders/{id}/complete`: the plant reports what it has produced."""

    produced_quantity: int | None = Field(
        default=None, gt=0, le=10**9, description="Produced so far; the whole order when absent."
    )


class ReportProductionInput(ProductionReport, FromCaller):
    production_order_id: str
    reported_by: ShortText = "production"


class DispatchDetails(Body):
    carrier: ShortText
    tracking_no: ShortText


class DispatchInput(DispatchDetails, FromCaller):
    shipment_id: str
    dispatched_by: ShortText = "warehouse"


class DeliveryDetails(Body):
    signed_by: ShortText = Field(description="Who signed for the goods at the customer (签收).")


class DeliverInput(DeliveryDetails, FromCaller):
    shipment_id: str
    reported_by: ShortText | None = None


class PaymentDetails(Body):
    amount: Money = Field(gt=0, le=10**12, decimal_places=2)
    method: ShortText = Field(description="e.g. bank_transfer, card, cash, cheque.")
    reference: ShortText = Field(
        description="The bank or payment reference; a payment with a reference already recorded "
        "on this order is not counted twice."
    )


class PaymentInput(PaymentDetails, FromCaller):
    recorded_by: ShortText | None = None


# --- activities --------------------------------------------------------------------------


class ValidateOrderInput(BaseModel):
    order_no: str
    request: OrderRequest
    audit_id: str
    at: datetime


class ValidatedLine(PricedLine):
    lead_time_days: int


class ValidateOrderResult(BaseModel):
    problems: list[Problem] = Field(default_factory=list)
    customer_name: str | None = None
    customer_group: str | None = None
    delivery_policy: DeliveryPolicy = DeliveryPolicy.COMPLETE
    credit_hold: bool = False
    payment_terms: str | None = None
    customer_payment_terms: str | None = None
    lines: list[ValidatedLine] = Field(default_factory=list)
    total: Money = Money(0)
    credit: CreditView | None = None
    policy: ApprovalPolicy = Field(default_factory=ApprovalPolicy)

    @property
    def valid(self) -> bool:
        return not self.problems


class StockLine(BaseModel):
    line_no: int
    sku: str
    quantity: int


class ReserveStockInput(BaseModel):
    order_no: str
    lines: list[StockLine]
    at: datetime


class LineReservation(BaseModel):
    line_no: int
    sku: str
    reserved_quantity: int
    short_quantity: int


class ReserveStockResult(BaseModel):
    lines: list[LineReservation]


class Shortage(BaseModel):
    line_no: int
    sku: str
    quantity: int
    lead_time_days: int


class PromiseLineInput(BaseModel):
    """A line as confirmation promises it: what is reserved, what is coming for it."""

    line_no: int
    sku: str
    quantity: int
    reserved_quantity: int
    lead_time_days: int
    receipts: list[Receipt] = Field(default_factory=list)


class PromiseOrderInput(BaseModel):
    """Confirmation (确认): the promise for the order as reserved now."""

    order_no: str
    customer_id: str
    customer_group: str | None = None
    priority: str = "normal"
    delivery_policy: DeliveryPolicy
    revision: int = 1
    requested_delivery_date: date | None = None
    total: Money = Money(0)
    non_standard_terms: bool = False
    lines: list[PromiseLineInput]
    at: datetime


class PromiseOrderResult(BaseModel):
    promise: OrderPromise
    too_soon_needs_approval: bool = Field(
        default=False,
        description="The policy makes a requested date before the promise an approval reason.",
    )
    written_confirmation: str | None = Field(
        default=None, description="Why the customer must confirm in writing (None: no need)."
    )


class PlanProductionInput(BaseModel):
    order_no: str
    shortages: list[Shortage]
    at: datetime
    revision: int = Field(
        default=1, description="Production orders of later revisions get an -r<n> id."
    )


class PlanProductionResult(BaseModel):
    production_orders: list[ProductionOrderView]


class RecordProductionInput(BaseModel):
    order_no: str
    production_order_id: str
    produced_quantity: int = Field(description="Cumulative quantity produced so far.")
    at: datetime


class RecordProductionResult(BaseModel):
    production_order: ProductionOrderView
    line_reserved_quantity: int


class CreateShipmentInput(BaseModel):
    order_no: str
    lines: list[ShipmentLineView]
    at: datetime
    seq: int = 1


class DispatchShipmentInput(BaseModel):
    order_no: str
    shipment_id: str
    carrier: str
    tracking_no: str
    at: datetime


class DeliverShipmentInput(BaseModel):
    order_no: str
    shipment_id: str
    signed_by: str
    at: datetime


class IssueInvoiceInput(BaseModel):
    order_no: str
    customer_id: str
    amount: Money
    payment_terms: str
    at: datetime
    seq: int = 1


class RecordPaymentInput(BaseModel):
    order_no: str
    invoice_id: str
    payment_id: str
    amount: Money
    method: str
    reference: str
    at: datetime


class RecordPaymentResult(BaseModel):
    payment: PaymentView
    invoice: InvoiceView


class DeadlineRequest(BaseModel):
    """Start an SLA's clock: `due_date` is the order's own date for it, where it has one."""

    sla: Sla
    key: str = "order"
    start: datetime
    due_date: date | None = None


class PlanDeadlinesInput(BaseModel):
    order_no: str
    customer_group: str | None = None
    priority: str = "normal"
    requests: list[DeadlineRequest]


class PlannedStep(BaseModel):
    index: int
    at: datetime
    kind: StepKind
    level: int = 0
    notify: list[str] = Field(default_factory=list)
    action: StepAction | None = None
    message: str | None = None


class DeadlinePlan(BaseModel):
    """When an SLA is due and when each rung of its ladder fires, in UTC."""

    sla: Sla
    key: str
    start: datetime
    due_at: datetime
    steps: list[PlannedStep]

    @property
    def name(self) -> str:
        return f"{self.sla}:{self.key}"


class PlanDeadlinesResult(BaseModel):
    plans: list[DeadlinePlan]


class Notification(BaseModel):
    """What a fired step tells the people concerned (webhook body and log event)."""

    id: str = Field(description="Stable per order, SLA, arming and step: receivers dedupe on it.")
    order_no: str
    customer_id: str
    status: str
    sla: Sla
    key: str
    step: int
    kind: StepKind
    level: int
    notify: list[str]
    action: StepAction | None = None
    message: str | None = None
    due_at: datetime
    fired_at: datetime


class CreditHoldInput(BaseModel):
    customer_id: str
    order_no: str
    at: datetime
    reason: str = ""


class CompensateInput(BaseModel):
    """Undo one kind of step for a cancelled order."""

    order_no: str
    at: datetime
    reason: str
    ids: list[str] | None = Field(default=None, description="Only these (all when absent).")


class CompensateResult(BaseModel):
    ids: list[str] = Field(default_factory=list, description="What was undone now.")


class CreditOrderInput(BaseModel):
    """A credit note for part of an order (a short-closed backorder that was paid for)."""

    order_no: str
    credit_id: str = Field(description="The credit note's id; its refund's derives from it.")
    amount: Money
    reason: str
    at: datetime


class CreditResult(BaseModel):
    """A credit note, first taken off what the order owes, the rest refunded."""

    credit_note: CreditNoteView
    refund: RefundView | None = None
    invoices: list[InvoiceView] = Field(
        default_factory=list, description="The order's invoices after the credit was applied."
    )

    @property
    def settles_debt(self) -> bool:
        """Whether the credit took anything off what the order owed (not only refunded)."""
        refunded = self.refund.amount if self.refund else 0
        return self.credit_note.amount > refunded


class RefundPaymentsResult(BaseModel):
    refunds: list[RefundView] = Field(default_factory=list)


class CancelInvoicesResult(BaseModel):
    voided: list[str] = Field(default_factory=list)
    credit_notes: list[CreditNoteView] = Field(default_factory=list)


class HoldKind(StrEnum):
    MANUAL = "manual"
    CREDIT = "credit"  # released by a payment or by finance, once credit checks out


class Hold(Body):
    """`POST /orders/{order_no}/hold` (冻结)."""

    reason: str = Field(min_length=1, max_length=500)
    kind: HoldKind = HoldKind.MANUAL


class HoldInput(Hold, FromCaller):
    by: ShortText


class WrittenConfirmation(Body):
    """`POST /orders/{order_no}/confirm`: the customer's signed order confirmation (书面确认)."""

    document_reference: ShortText = Field(description="The signed document's reference.")
    confirmed_by_customer_contact: ShortText = Field(description="Who signed for the customer.")


class ConfirmOrderInput(WrittenConfirmation, FromCaller):
    by: ShortText


class Release(Body):
    """`POST /orders/{order_no}/release`."""

    comment: str | None = Field(default=None, max_length=2000)


class ReleaseInput(Release, FromCaller):
    by: ShortText


class CheckCreditInput(BaseModel):
    customer_id: str
    order_no: str
    uninvoiced_amount: Money = Field(description="This order's amount not yet on an invoice.")


class CreditCheckResult(BaseModel):
    credit: CreditView
    on_credit_hold: bool

    @property
    def ok(self) -> bool:
        return not self.on_credit_hold and self.credit.exposure <= self.credit.credit_limit


class ShortClose(Body):
    """`POST /orders/{order_no}/short-close`: what has not shipped will not ship."""

    reason: str = Field(min_length=1, max_length=2000)


class ShortCloseInput(ShortClose, FromCaller):
    by: ShortText


class CancelReason(StrEnum):
    """Why a person cancels an order (deadline expiries add `approval_expired`,
    `payment_expired` and `confirmation_expired`). A customer refusing to sign the written
    confirmation is `customer_request`."""

    CUSTOMER_REQUEST = "customer_request"
    DUPLICATE_ORDER = "duplicate_order"
    PRICING_ERROR = "pricing_error"
    OUT_OF_STOCK = "out_of_stock"
    CREDIT_RISK = "credit_risk"
    OTHER = "other"


class Cancellation(Body):
    """`POST /orders/{order_no}/cancel`: allowed until goods ship."""

    reason_code: CancelReason
    comment: str | None = Field(default=None, max_length=2000)


class CancelOrderInput(Cancellation, FromCaller):
    by: ShortText


class EscalationRecord(BaseModel):
    """A row of the escalation log."""

    id: str
    order_no: str
    sla: str
    key: str
    step: int
    kind: str
    level: int
    notify: list[str]
    due_at: datetime
    fired_at: datetime


class Resolution(BaseModel):
    """A deadline caught up: its escalation-log rows get their resolved time.

    `ids` names the rows (a re-armed deadline resolves its old arming's steps, not the new
    one's); without it, every unresolved row of the deadline.
    """

    order_no: str
    sla: str
    key: str
    at: datetime
    ids: list[str] | None = None


class AuditRecord(BaseModel):
    id: str
    at: datetime
    order_no: str
    action: str
    actor: str
    outcome: str
    detail: dict[str, Any] = Field(default_factory=dict)
    role: str = ""  # the caller's, for the effect of a command sent through the API
    source: str = ""


class SaveOrderViewInput(BaseModel):
    """The read model follows the workflow: written at every point the order waits."""

    view: OrderView
    seq: int
    fingerprint: str
    audit: list[AuditRecord] = Field(default_factory=list)
    escalations: list[EscalationRecord] = Field(default_factory=list)
    resolutions: list[Resolution] = Field(default_factory=list)


class ActivityName:
    """Activity names, so the workflow can call them without importing the database code."""

    VALIDATE_ORDER = "validate_order"
    RESERVE_STOCK = "reserve_stock"
    PLAN_PRODUCTION = "plan_production"
    RECORD_PRODUCTION = "record_production"
    CREATE_SHIPMENT = "create_shipment"
    DISPATCH_SHIPMENT = "dispatch_shipment"
    DELIVER_SHIPMENT = "deliver_shipment"
    ISSUE_INVOICE = "issue_invoice"
    RECORD_PAYMENT = "record_payment"
    SAVE_ORDER_VIEW = "save_order_view"
    PLAN_DEADLINES = "plan_deadlines"
    SEND_NOTIFICATION = "send_notification"
    PLACE_CREDIT_HOLD = "place_credit_hold"
    RELEASE_CREDIT_HOLD = "release_credit_hold"
    CANCEL_PRODUCTION_ORDERS = "cancel_production_orders"
    RELEASE_RESERVATIONS = "release_reservations"
    CHECK_CREDIT = "check_credit"
    SAVE_RETURN = "save_return"
    RESTOCK_RETURN = "restock_return"
    CREDIT_RETURN = "credit_return"
    SHIP_REPLACEMENT = "ship_replacement"
    CANCEL_SHIPMENTS = "cancel_shipments"
    REFUND_PAYMENTS = "refund_payments"
    CANCEL_INVOICES = "cancel_invoices"
    CREDIT_ORDER = "credit_order"
    CHECKPOINT_AUDIT = "checkpoint_audit"
    PROMISE_ORDER = "promise_order"
