"""The order workflow's state and plumbing: waits and checkpoints, approvals, the saga's
compensations, the conditions the process waits on. `OrderCommands` adds what people send,
`OrderWorkflow` the process itself."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from domain.approval import ApprovalFacts, evaluate_approval
    from domain.messages import (
        ActivityName,
        AuditRecord,
        CancelInvoicesResult,
        CompensateInput,
        CompensateResult,
        DeadlineRequest,
        OrderWorkflowInput,
        RefundPaymentsResult,
        SaveOrderViewInput,
        ValidateOrderResult,
    )
    from domain.money import Money
    from domain.orders import (
        ApprovalDecision,
        ApprovalView,
        Caller,
        CancellationView,
        ChangeView,
        OrderLineView,
        OrderView,
        ShipmentView,
        TimelineEntry,
        status_label,
    )
    from domain.policy import Sla
    from domain.statuses import (
        InvoiceStatus,
        OrderStatus,
        ProductionOrderStatus,
        ShipmentStatus,
    )
    from workflows import rules
    from workflows import search_attributes as sa
    from workflows.deadlines import DeadlineBook
    from workflows.ladders import DeadlineLadders

R = TypeVar("R")

# A new delivery date re-arms each shipment's delivery deadline under its own key.
REARM_PATCH = "rearm-delivery-by-key"


class OrderCore(DeadlineLadders[OrderView]):
    def _init_state(self, inp: OrderWorkflowInput) -> None:
        now = workflow.now()
        request = inp.request
        self._request = request
        self._fingerprint = inp.fingerprint
        self._view = OrderView(
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
        self._lead_times: dict[int, int] = {}
        self._approval_done = False
        self._rejected = False
        self._submissions = 0
        self._payments = 0
        self._busy: set[str] = set()  # shipments / production orders an update is working on
        self._payment_lock = asyncio.Lock()
        self._amend_lock = asyncio.Lock()
        self._amended = False  # set by an amendment; the fulfilment loop starts over
        self._stock_reserved = False  # reservations may exist in the store: undo releases them
        self._short_closed = False
        self._invoiced: set[str] = set()  # shipments invoiced (partial delivery)
        self._approved: ApprovedContent | None = None
        self._pending_change: ChangeView | None = None  # an amendment awaiting its approval
        self._seq = 0  # bumped by every change to the view
        self._saved_seq = -1  # what the read model holds
        self._stable_seq = -1  # the last change the run has caught up with at a wait
        self._audit: list[AuditRecord] = []
        self._published: dict[str, object] = {}
        self._deadlines_on = False
        self._book = DeadlineBook(self._view)
        self._customer_group: str | None = None
        self._ladders: list[asyncio.Task[None]] = []
        self._outbox: list[asyncio.Task[None]] = []
        self._closing = False
        self._credit_hold_placed = False

    def _accept(
        self,
        validation: ValidateOrderResult,
        event: str = "order_received",
        caller: Caller | None = None,
    ) -> None:
        view = self._view
        view.customer_name = validation.customer_name
        self._customer_group = validation.customer_group
        view.delivery_policy = validation.delivery_policy
        view.payment_terms = validation.payment_terms
        view.total = validation.total
        view.credit = validation.credit
        view.lines = [
            OrderLineView(**line.model_dump(exclude={"lead_time_days"}))
            for line in validation.lines
        ]
        self._lead_times = {line.line_no: line.lead_time_days for line in validation.lines}
        self._record(event, self._request.entered_by, f"total {view.total}", caller)

    def _facts(self, validation: ValidateOrderResult) -> ApprovalFacts:
        credit = validation.credit
        return ApprovalFacts(
            total=validation.total,
            lines=list(validation.lines),
            credit_limit=credit.credit_limit if credit else validation.total,
            credit_exposure=credit.exposure if credit else validation.total,
            priority=self._request.priority,
            payment_terms=validation.payment_terms,
            customer_payment_terms=validation.customer_payment_terms,
            credit_hold=validation.credit_hold,
        )

    async def _require_approval(
        self, validation: ValidateOrderResult, *deadlines: DeadlineRequest
    ) -> bool:
        """Run the approval rules on the order's content; True if people must decide.

        `deadlines` start together with the approval's own (one planning step).
        """
        requirement = evaluate_approval(self._facts(validation), validation.policy)
        self._view.approval = ApprovalView(
            required_levels=requirement.levels, reasons=requirement.reasons
        )
        if requirement.levels == 0:
            self._add_decision(0, "approved", "system", "system", "no approval rule applies")
            self._approval_done = True
            self._note_approved()
            self._meet(Sla.APPROVAL)
            await self._arm(*deadlines)
            return False
        self._approval_done = False
        self._view.approval.awaiting_level = 1
        self._view.waiting_for = self._approval_waiting_for()
        reasons = ", ".join(r.code for r in requirement.reasons)
        self._record("approval_required", "system", f"levels {requirement.levels}: {reasons}")
        await self._arm(*deadlines, DeadlineRequest(sla=Sla.APPROVAL, start=workflow.now()))
        return True

    def _note_approved(self) -> None:
        """What the approval covered, to tell later amendments that raise risk from others."""
        view = self._view
        if self._pending_change is not None:  # the amended revision is now approved
            self._pending_change.approved_by = [d.approver for d in view.approvals]
            self._pending_change = None
        self._approved = ApprovedContent(
            levels=view.approval.required_levels,
            total=view.total,
            max_discount=max((line.discount_pct for line in view.lines), default=Money(0)),
            reasons=[r.code for r in view.approval.reasons],
        )

    async def _withdraw_pick_lists(self, reason: str) -> list[str]:
        ready = [s.id for s in self._view.shipments if s.status == "ready"]
        if not ready:
            return []
        done = await self._act(
            ActivityName.CANCEL_SHIPMENTS,
            CompensateInput(
                order_no=self._view.order_no, at=workflow.now(), reason=reason, ids=ready
            ),
            CompensateResult,
        )
        for shipment in self._view.shipments:
            if shipment.id in done.ids:
                shipment.status = ShipmentStatus.CANCELLED
        self._record("pick_list_withdrawn", "system", f"{', '.join(done.ids)}: {reason}")
        return done.ids

    async def _close(self, status: OrderStatus, event: str) -> OrderView:
        """归档: ladders stop, notifications go out, the final state goes to the read model."""
        self._closing = True
        self._book.cancel_all(workflow.now())
        self._set_status(status, event, "system")
        self._view.waiting_for = None
        await asyncio.gather(*self._ladders)
        await asyncio.gather(*self._outbox)
        self._view.closed = True
        self._record("order_archived", "system")
        await self._checkpoint()
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._seq != self._saved_seq:  # an update finished its work after the archive
            await self._checkpoint()
        return self._view

    async def _undo(self, reason: str) -> None:
        """The saga's compensations: undo every step done, in reverse order, each exactly once.

        Each is an idempotent activity retried until it succeeds; a worker lost half-way
        resumes from the history and repeats nothing already recorded.
        """
        undo = CompensateInput(order_no=self._view.order_no, at=workflow.now(), reason=reason)
        view = self._view
        if any(shipment.status == "ready" for shipment in view.shipments):
            done = await self._act(ActivityName.CANCEL_SHIPMENTS, undo, CompensateResult)
            for shipment in view.shipments:
                if shipment.id in done.ids:
                    shipment.status = ShipmentStatus.CANCELLED
            self._record("shipments_cancelled", "system", ", ".join(done.ids) or None)
        if any(po.status == "planned" for po in view.production_orders):
            done = await self._act(ActivityName.CANCEL_PRODUCTION_ORDERS, undo, CompensateResult)
            for po in view.production_orders:
                if po.id in done.ids:
                    po.status = ProductionOrderStatus.CANCELLED
            self._record("production_orders_cancelled", "system", ", ".join(done.ids) or None)
        if view.payments:
            refunded = await self._act(ActivityName.REFUND_PAYMENTS, undo, RefundPaymentsResult)
            view.refunds = refunded.refunds
            self._record(
                "payments_refunded",
                "finance",
                ", ".join(f"{r.id}: {r.amount}" for r in refunded.refunds) or None,
            )
        if any(invoice.status in ("issued", "paid") for invoice in view.invoices):
            await self._compensate_invoices(None, reason)
        if self._stock_reserved or any(line.reserved_quantity for line in view.lines):
            done = await self._act(ActivityName.RELEASE_RESERVATIONS, undo, CompensateResult)
            for line in view.lines:
                line.reserved_quantity = 0
            self._record("reservations_released", "system", ", ".join(done.ids) or None)

    async def _compensate_invoices(self, ids: list[str] | None, reason: str) -> None:
        """Void unpaid invoices (those in `ids`, or all), credit the paid ones."""
        cancelled = await self._act(
            ActivityName.CANCEL_INVOICES,
            CompensateInput(
                order_no=self._view.order_no, at=workflow.now(), reason=reason, ids=ids
            ),
            CancelInvoicesResult,
        )
        credited = {note.invoice_id for note in cancelled.credit_notes}
        for invoice in self._view.invoices:
            if invoice.id in cancelled.voided:
                invoice.status = InvoiceStatus.VOID
            elif invoice.id in credited:
                invoice.status = InvoiceStatus.CREDITED
        self._view.credit_notes += [
            n for n in cancelled.credit_notes if n.id not in {c.id for c in self._view.credit_notes}
        ]
        self._record(
            "invoices_cancelled",
            "finance",
            ", ".join([*cancelled.voided, *(n.id for n in cancelled.credit_notes)]) or None,
        )

    async def _rearm_delivery(self) -> None:
        """A new requested delivery date moves every open delivery deadline: the order's, or
        (partial delivery) each dispatched shipment's, under its own key."""
        open_ = [d for d in self._view.deadlines if d.sla == Sla.DELIVERY and d.open]
        if not open_:
            return
        if any(d.key != "order" for d in open_) and workflow.patched(REARM_PATCH):
            keyed = [(d.key, d.started_at) for d in open_]
        else:  # before the patch: the first one, re-armed as the order's
            keyed = [("order", open_[0].started_at)]
        await self._arm(
            *(
                DeadlineRequest(
                    sla=Sla.DELIVERY,
                    key=key,
                    start=start,
                    due_date=self._view.requested_delivery_date,
                )
                for key, start in keyed
            )
        )

    def _stop_if_cancelled(self) -> None:
        if self._view.cancellation is not None:
            raise _Cancelled

    def _request_cancel(
        self,
        reason_code: str,
        by: str,
        comment: str | None = None,
        caller: Caller | None = None,
    ) -> None:
        if self._view.cancellation is not None or self._closing:
            return
        self._view.cancellation = CancellationView(
            reason_code=reason_code, by=by, at=workflow.now(), comment=comment
        )
        self._view.hold = None  # a frozen order can still be cancelled
        self._set_status(OrderStatus.CANCELLING, "cancellation_requested", by, caller)

    # --- conditions -------------------------------------------------------------------------

    def _progress(self) -> tuple[object, ...]:
        return (
            tuple(s.status for s in self._view.shipments),
            tuple((line.reserved_quantity, line.to_ship) for line in self._view.lines),
            self._short_closed,
        )

    def _all_shipped(self) -> bool:
        return all(line.to_ship <= 0 for line in self._view.lines)

    def _all_reserved(self) -> bool:
        return all(line.reserved_quantity >= line.quantity for line in self._view.lines)

    def _dispatched(self) -> bool:
        shipments = self._view.shipments
        return any(s.status in ("dispatched", "delivered") for s in shipments) and not any(
            s.status == "ready" for s in shipments
        )

    def _delivered(self) -> bool:
        return all(s.status in ("delivered", "cancelled") for s in self._view.shipments)

    def _paid(self) -> bool:
        live = [i for i in self._view.invoices if i.status in ("issued", "paid")]
        return bool(live) and all(i.status == "paid" for i in live)

    # --- plumbing ----------------------------------------------------------------------------

    async def _wait(self, status: OrderStatus, waiting_for: str, done: Callable[[], bool]) -> None:
        """Wait until `done()`, keeping the read model and ops' view current meanwhile.

        A cancellation (an expired deadline, later a person) ends any wait.
        """
        if done() and self._view.cancellation is None and self._view.hold is None:
            return
        if self._view.cancellation is None:
            self._set_status(status, f"status_{status.lower()}", "system")
            self._view.waiting_for = waiting_for
        while True:
            await self._checkpoint()
            await workflow.wait_condition(
                lambda: (
                    (done() and self._view.hold is None)
                    or self._seq != self._saved_seq
                    or self._view.cancellation is not None
                    or self._amended
                )
            )
            if self._view.cancellation is not None:
                raise _Cancelled
            if self._amended and not self._dispatched():
                raise _Amended
            if done() and self._view.hold is None:  # an order on hold does nothing
                self._view.waiting_for = None
                return

    async def _checkpoint(self) -> None:
        """Save the view and audit entries, publish search attributes: the order is stable."""
        self._publish_search_attributes()
        if self._seq != self._saved_seq:
            seq, audit = self._seq, self._audit
            escalations, resolutions = self._book.escalations, self._book.resolutions
            self._audit, self._book.escalations, self._book.resolutions = [], [], []
            await self._act(
                ActivityName.SAVE_ORDER_VIEW,
                SaveOrderViewInput(
                    view=self._view,
                    seq=seq,
                    fingerprint=self._fingerprint,
                    audit=audit,
                    escalations=escalations,
                    resolutions=resolutions,
                ),
                type(None),
            )
            self._saved_seq = seq
        self._stable_seq = self._saved_seq

    async def _settled(self) -> OrderView:
        """Let the run catch up with an update's change, then answer with the new state."""
        target = self._seq
        await workflow.wait_condition(lambda: self._stable_seq >= target or self._view.closed)
        return self._view

    def _publish_search_attributes(self) -> None:
        view = self._view
        values: dict[str, object] = {
            "status": view.status.value,
            "customer": view.customer_id,
            "total": float(view.total),
        }
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.ORDER_STATUS.value_set(view.status.value),
            sa.CUSTOMER_ID.value_set(view.customer_id),
            sa.ORDER_TOTAL.value_set(float(view.total)),
        ]
        if self._deadlines_on:
            values |= {"overdue": view.overdue, "level": view.escalation_level}
            updates += [
                sa.OVERDUE.value_set(view.overdue),
                sa.ESCALATION_LEVEL.value_set(view.escalation_level),
            ]
        if values != self._published:
            workflow.upsert_search_attributes(updates)
            self._published = values
        waiting = f"\n\n**Waiting for:** {view.waiting_for}" if view.waiting_for else ""
        overdue = (
            f"\n\n**Overdue:** escalation level {view.escalation_level}" if view.overdue else ""
        )
        workflow.set_current_details(
            f"**{view.status.label_en} ({view.status.label_zh})**{waiting}{overdue}"
        )

    def _set_status(
        self, status: OrderStatus, event: str, actor: str, caller: Caller | None = None
    ) -> None:
        hold = self._view.hold
        if hold is not None and status not in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
            hold.resume_status = status.value  # on release the order resumes here
            return
        if status is not self._view.status:
            self._view.status = status
            self._view.status_label = status_label(status)
            self._record(event, actor, caller=caller)
            workflow.logger.info(
                "order_status_changed", extra={"status": status.value, "by": actor}
            )

    def _record(
        self, event: str, actor: str, detail: str | None = None, caller: Caller | None = None
    ) -> None:
        """The event on the timeline and the audit chain; `caller` for a command's effect."""
        now = workflow.now()
        self._view.timeline.append(
            TimelineEntry(at=now, event=event, actor=actor, status=self._view.status, detail=detail)
        )
        self._view.updated_at = now
        self._audit.append(
            AuditRecord(
                id=str(workflow.uuid4()),
                at=now,
                order_no=self._view.order_no,
                action=event,
                actor=actor,
                outcome="ok",
                detail={"detail": detail} if detail else {},
                role=caller.role if caller else "",
                source=caller.source if caller else "",
            )
        )
        self._seq += 1

    def _add_decision(
        self,
        level: int,
        decision: str,
        approver: str,
        role: str,
        comment: str | None,
        caller: Caller | None = None,
    ) -> None:
        self._view.approvals.append(
            ApprovalDecision(
                level=level,
                decision=decision,
                approver=approver,
                role=role,
                comment=comment,
                at=workflow.now(),
            )
        )
        self._record(
            f"order_{decision}",
            approver,
            f"level {level}" + (f": {comment}" if comment else ""),
            caller,
        )

    def _approval_waiting_for(self) -> str:
        level = self._view.approval.awaiting_level or 1
        return f"approval by {rules.LEVEL_NAMES[level]}"

    def _line(self, line_no: int) -> OrderLineView:
        return next(line for line in self._view.lines if line.line_no == line_no)

    def _replace_shipment(self, updated: ShipmentView) -> None:
        self._view.shipments = [updated if s.id == updated.id else s for s in self._view.shipments]

    async def _act_on(self, item: str, name: str, arg: BaseModel, result_type: type[R]) -> R:
        """Run an activity on one shipment or production order, which other commands see
        as busy meanwhile."""
        self._busy.add(item)
        try:
            return await self._act(name, arg, result_type)
        finally:
            self._busy.discard(item)

    def _deadline_priority(self) -> str:
        return self._view.priority.value

    def _deadline_status(self) -> str:
        return self._view.status.value


class _Cancelled(Exception):
    """Raised out of a wait when the order is being cancelled."""


class _Amended(Exception):
    """Raised out of a wait when the order's lines changed: fulfilment starts over."""


class ApprovedContent(BaseModel):
    """What an approval covered."""

    levels: int
    total: Money
    max_discount: Money
    reasons: list[str]
