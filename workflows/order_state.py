"""The order workflow's state, in one model: the order's view plus what the run remembers.

Pure bookkeeping, no awaiting: the workflow (workflows/order.py) changes this state and
decides; the timeline, the audit chain and the conditions the process waits on live here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pydantic import BaseModel
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import AuditRecord, OrderWorkflowInput, ValidateOrderResult
    from domain.money import Money
    from domain.orders import (
        Caller,
        CancellationView,
        ChangeView,
        OrderLineView,
        OrderRequest,
        OrderView,
        ShipmentView,
        TimelineEntry,
        status_label,
    )
    from domain.statuses import (
        GONE_SHIPMENTS,
        LIVE_INVOICES,
        InvoiceStatus,
        OrderStatus,
        ShipmentStatus,
    )


class ApprovedContent(BaseModel):
    """What an approval covered: an amendment asking for more needs a new one."""

    levels: int
    total: Money
    max_discount: Money
    reasons: list[str]


@dataclass
class OrderState:
    """Everything the order workflow knows; `view` is what queries and updates answer."""

    request: OrderRequest
    fingerprint: str
    view: OrderView
    lead_times: dict[int, int] = field(default_factory=dict)  # per line, from validation
    customer_group: str | None = None  # whose SLAs apply, from validation
    approval_done: bool = False
    rejected: bool = False
    submissions: int = 0
    payments: int = 0
    busy: set[str] = field(default_factory=set)  # shipments / production orders being updated
    payment_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    amend_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    amended: bool = False  # an amendment changed the order: the run reconciles fulfilment
    stock_reserved: bool = False  # reservations may exist in the store: undo releases them
    short_closed: bool = False
    invoiced: set[str] = field(default_factory=set)  # shipments invoiced (partial delivery)
    approved: ApprovedContent | None = None
    pending_change: ChangeView | None = None  # an amendment awaiting its approval
    seq: int = 0  # bumped by every change to the view
    saved_seq: int = -1  # what the read model holds
    stable_seq: int = -1  # the last change the run has caught up with at a wait
    audit: list[AuditRecord] = field(default_factory=list)  # not yet saved
    published: dict[str, object] = field(default_factory=dict)  # search attributes as set
    closing: bool = False

    @classmethod
    def received(cls, inp: OrderWorkflowInput) -> OrderState:
        """A new order, as entered: `RECEIVED`."""
        now, request = workflow.now(), inp.request
        view = OrderView(
            order_no=inp.order_no,
            workflow_id=workflow.info().workflow_id,
            status=OrderStatus.RECEIVED,
            status_label=status_label(OrderStatus.RECEIVED),
            customer_id=request.customer_id,
            entered_by=request.entered_by,
            priority=request.priority,
            payment_terms=request.payment_terms,
            requested_delivery_date=request.requested_delivery_date,
            shipping_address=request.shipping_address,
            notes=request.notes,
            received_at=now,
            updated_at=now,
        )
        return cls(request=request, fingerprint=inp.fingerprint, view=view)

    def changed(self) -> None:
        """The view changed outside the timeline (a deadline): a checkpoint is due."""
        self.seq += 1

    def accept(
        self,
        validation: ValidateOrderResult,
        event: str = "order_received",
        caller: Caller | None = None,
    ) -> None:
        """The validated (priced) content becomes the order's."""
        view = self.view
        view.customer_name = validation.customer_name
        self.customer_group = validation.customer_group
        view.delivery_policy = validation.delivery_policy
        view.payment_terms = validation.payment_terms
        view.total = validation.total
        view.credit = validation.credit
        view.lines = [
            OrderLineView(**line.model_dump(exclude={"lead_time_days"}))
            for line in validation.lines
        ]
        self.lead_times = {line.line_no: line.lead_time_days for line in validation.lines}
        self.record(event, self.request.entered_by, f"total {view.total}", caller)

    def set_status(
        self, status: OrderStatus, event: str, actor: str, caller: Caller | None = None
    ) -> None:
        """Move to `status`; an order on hold only learns where to resume on release."""
        hold = self.view.hold
        if hold is not None and status not in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
            hold.resume_status = status.value
            return
        if status is not self.view.status:
            self.view.status = status
            self.view.status_label = status_label(status)
            self.record(event, actor, caller=caller)
            workflow.logger.info(
                "order_status_changed", extra={"status": status.value, "by": actor}
            )

    def record(
        self,
        event: str,
        actor: str,
        detail: str | None = None,
        caller: Caller | None = None,
        outcome: str = "ok",
    ) -> None:
        """The event on the timeline and the audit chain; `caller` for a command's effect,
        `outcome` as the API audits a command (`refused:409` for one the order refused)."""
        now = workflow.now()
        self.view.timeline.append(
            TimelineEntry(at=now, event=event, actor=actor, status=self.view.status, detail=detail)
        )
        self.view.updated_at = now
        self.audit.append(
            AuditRecord(
                id=str(workflow.uuid4()),
                at=now,
                order_no=self.view.order_no,
                action=event,
                actor=actor,
                outcome=outcome,
                detail={"detail": detail} if detail else {},
                role=caller.role if caller else "",
                source=caller.source if caller else "",
            )
        )
        self.seq += 1

    def request_cancel(
        self, reason_code: str, by: str, comment: str | None = None, caller: Caller | None = None
    ) -> None:
        """The cancellation starts (once): the run's next wait ends and the saga runs."""
        if self.view.cancellation is not None or self.closing:
            return
        self.view.cancellation = CancellationView(
            reason_code=reason_code, by=by, at=workflow.now(), comment=comment
        )
        self.view.hold = None  # a frozen order can still be cancelled
        self.set_status(OrderStatus.CANCELLING, "cancellation_requested", by, caller)

    def amending(self) -> bool:
        """An amendment is being decided, or the run has not yet reconciled the pick list
        with one: nothing may be dispatched meanwhile."""
        return self.amend_lock.locked() or self.amended

    def line(self, line_no: int) -> OrderLineView:
        return next(line for line in self.view.lines if line.line_no == line_no)

    def replace_shipment(self, updated: ShipmentView) -> None:
        self.view.shipments = [updated if s.id == updated.id else s for s in self.view.shipments]

    def ready_shipments(self) -> list[ShipmentView]:
        """Shipments whose pick list is out and whose goods have not left."""
        return [s for s in self.view.shipments if s.status == ShipmentStatus.READY]

    # --- what the process waits for ------------------------------------------------------

    def progress(self) -> tuple[object, ...]:
        """Changes when a partial order's shipments, reservations or backorder move."""
        return (
            tuple(s.status for s in self.view.shipments),
            tuple((line.reserved_quantity, line.to_ship) for line in self.view.lines),
            self.short_closed,
        )

    def all_shipped(self) -> bool:
        return all(line.to_ship <= 0 for line in self.view.lines)

    def all_reserved(self) -> bool:
        return all(line.reserved_quantity >= line.quantity for line in self.view.lines)

    def dispatched(self) -> bool:
        """Goods have left and no pick list is still open."""
        shipments = self.view.shipments
        return any(s.status in GONE_SHIPMENTS for s in shipments) and not any(
            s.status == ShipmentStatus.READY for s in shipments
        )

    def delivered(self) -> bool:
        return all(
            s.status in (ShipmentStatus.DELIVERED, ShipmentStatus.CANCELLED)
            for s in self.view.shipments
        )

    def paid(self) -> bool:
        live = [i for i in self.view.invoices if i.status in LIVE_INVOICES]
        return bool(live) and all(i.status == InvoiceStatus.PAID for i in live)
