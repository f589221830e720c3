"""What people and systems send an order: decisions, reports, payments, amendments, holds,
cancellation. Each update's validator refuses early what its handler would refuse."""

from __future__ import annotations

import contextlib

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.approval import evaluate_approval
    from domain.errors import Refusal
    from domain.messages import (
        ActivityName,
        ApproveOrderInput,
        CancelOrderInput,
        CheckCreditInput,
        CompensateInput,
        CompensateResult,
        CreditCheckResult,
        CreditOrderInput,
        CreditResult,
        DeliverInput,
        DeliverShipmentInput,
        DispatchInput,
        DispatchShipmentInput,
        HoldInput,
        HoldKind,
        PaymentInput,
        RecordPaymentInput,
        RecordPaymentResult,
        RecordProductionInput,
        RecordProductionResult,
        RejectOrderInput,
        ReleaseInput,
        ReportProductionInput,
        ShortCloseInput,
        SubmitOrderInput,
        SubmitOrderResult,
        ValidateOrderInput,
        ValidateOrderResult,
    )
    from domain.money import Money, as_number, round_money
    from domain.orders import (
        AmendOrderInput,
        Caller,
        ChangeView,
        CreditNoteView,
        HoldView,
        InvoiceView,
        OrderLineRequest,
        OrderView,
        RefundView,
        ShipmentView,
        line_diff,
        status_label,
    )
    from domain.policy import Sla
    from domain.returns import RETURN_CREDITED_SIGNAL, ReturnCredited
    from domain.statuses import (
        OrderStatus,
        ProductionOrderStatus,
    )
    from workflows import rules
    from workflows.order_core import OrderCore


# A prepaid order's short-closed backorder is credited and refunded.
SHORT_CLOSE_CREDIT_PATCH = "short-close-credits-prepaid"


class OrderCommands(OrderCore):
    # --- updates: how people move the order on ----------------------------------------------

    @workflow.update
    async def submit(self, inp: SubmitOrderInput) -> SubmitOrderResult:
        """Submitting (or resubmitting) the order: answered once entry is decided."""
        first = self._submissions == 0
        self._submissions += 1
        await workflow.wait_condition(lambda: self._stable_seq >= 0)
        return SubmitOrderResult(created=first, order=self._view)

    @submit.validator
    def _check_submit(self, inp: SubmitOrderInput) -> None:
        if inp.fingerprint != self._fingerprint:
            raise ApplicationError(
                f"Order number {self._view.order_no} was already submitted with different content",
                type=Refusal.CONFLICT,
            )

    @workflow.update
    async def approve(self, inp: ApproveOrderInput) -> OrderView:
        rules.check_decision(self._view, inp.approver, inp.role.value, inp.role.level)
        level = self._view.approval.awaiting_level or 0
        self._add_decision(level, "approved", inp.approver, inp.role.value, inp.comment, inp.caller)
        if level < self._view.approval.required_levels:
            self._view.approval.awaiting_level = level + 1
            self._view.waiting_for = self._approval_waiting_for()
        else:
            self._view.approval.awaiting_level = None
            self._approval_done = True
            self._note_approved()
            self._meet(Sla.APPROVAL)
        return await self._settled()

    @approve.validator
    def _check_approve(self, inp: ApproveOrderInput) -> None:
        rules.check_decision(self._view, inp.approver, inp.role.value, inp.role.level)

    @workflow.update
    async def reject(self, inp: RejectOrderInput) -> OrderView:
        rules.check_decision(self._view, inp.approver, inp.role.value, inp.role.level)
        level = self._view.approval.awaiting_level or 0
        self._add_decision(level, "rejected", inp.approver, inp.role.value, inp.reason, inp.caller)
        self._view.approval.awaiting_level = None
        self._rejected = self._approval_done = True
        self._meet(Sla.APPROVAL)
        return await self._settled()

    @reject.validator
    def _check_reject(self, inp: RejectOrderInput) -> None:
        rules.check_decision(self._view, inp.approver, inp.role.value, inp.role.level)

    @workflow.update
    async def report_production(self, inp: ReportProductionInput) -> OrderView:
        po = rules.check_production(self._view, self._busy, inp)
        produced = inp.produced_quantity or po.quantity
        result = await self._act_on(
            po.id,
            ActivityName.RECORD_PRODUCTION,
            RecordProductionInput(
                order_no=self._view.order_no,
                production_order_id=po.id,
                produced_quantity=produced,
                at=workflow.now(),
            ),
            RecordProductionResult,
        )
        self._view.production_orders = [
            result.production_order if p.id == po.id else p for p in self._view.production_orders
        ]
        line = self._line(po.line_no)
        line.produced_quantity = result.production_order.produced_quantity
        line.reserved_quantity = result.line_reserved_quantity
        if result.production_order.status == "completed":
            self._meet(Sla.PRODUCTION, key=po.id)
        self._record(
            "production_reported",
            inp.reported_by,
            f"{po.id}: {produced} of {po.quantity} produced",
            inp.caller,
        )
        return await self._settled()

    @report_production.validator
    def _check_report_production(self, inp: ReportProductionInput) -> None:
        rules.check_production(self._view, self._busy, inp)

    @workflow.update
    async def dispatch(self, inp: DispatchInput) -> OrderView:
        shipment = rules.check_shipment(
            self._view, self._dispatch_busy(), inp.shipment_id, "ready", "dispatched"
        )
        updated = await self._act_on(
            shipment.id,
            ActivityName.DISPATCH_SHIPMENT,
            DispatchShipmentInput(
                order_no=self._view.order_no,
                shipment_id=shipment.id,
                carrier=inp.carrier,
                tracking_no=inp.tracking_no,
                at=workflow.now(),
            ),
            ShipmentView,
        )
        self._replace_shipment(updated)
        for line in updated.lines:
            self._line(line.line_no).shipped_quantity += line.quantity
            self._line(line.line_no).reserved_quantity -= line.quantity
        if self._all_shipped():
            self._meet(Sla.DISPATCH)
        self._record(
            "shipment_dispatched",
            inp.dispatched_by,
            f"{updated.id} via {inp.carrier} {inp.tracking_no}",
            inp.caller,
        )
        return await self._settled()

    @dispatch.validator
    def _check_dispatch(self, inp: DispatchInput) -> None:
        rules.check_shipment(
            self._view, self._dispatch_busy(), inp.shipment_id, "ready", "dispatched"
        )

    def _dispatch_busy(self) -> set[str]:
        """What a dispatch must wait for: shipments being updated, and an amendment that is
        being decided or whose pick list the run has not yet reconciled."""
        amending = self._amend_lock.locked() or self._amended
        return self._busy | {rules.AMENDING} if amending else self._busy

    @workflow.update
    async def deliver(self, inp: DeliverInput) -> OrderView:
        shipment = rules.check_shipment(
            self._view, self._busy, inp.shipment_id, "dispatched", "delivered"
        )
        updated = await self._act_on(
            shipment.id,
            ActivityName.DELIVER_SHIPMENT,
            DeliverShipmentInput(
                order_no=self._view.order_no,
                shipment_id=shipment.id,
                signed_by=inp.signed_by,
                at=workflow.now(),
            ),
            ShipmentView,
        )
        self._replace_shipment(updated)
        for line in updated.lines:
            self._line(line.line_no).delivered_quantity += line.quantity
        self._meet(Sla.DELIVERY, key=updated.id)
        if self._delivered() and self._all_shipped():
            self._meet(Sla.DELIVERY)
        self._record(
            "shipment_delivered",
            inp.reported_by or inp.signed_by,
            f"{updated.id} signed by {inp.signed_by}",
            inp.caller,
        )
        return await self._settled()

    @deliver.validator
    def _check_deliver(self, inp: DeliverInput) -> None:
        rules.check_shipment(self._view, self._busy, inp.shipment_id, "dispatched", "delivered")

    @workflow.update
    async def pay(self, inp: PaymentInput) -> OrderView:
        # Payments to one order queue up; each is checked against what is outstanding once
        # the ones before it are booked, so two at once can never overpay.
        async with self._payment_lock:
            if rules.already_paid(self._view, inp):
                return self._view  # the same payment reported again: counted once
            invoice = rules.check_payment(self._view, inp)
            self._payments += 1
            result = await self._act(
                ActivityName.RECORD_PAYMENT,
                RecordPaymentInput(
                    order_no=self._view.order_no,
                    invoice_id=invoice.id,
                    payment_id=f"PAY-{self._view.order_no}-{self._payments}",
                    amount=inp.amount,
                    method=inp.method,
                    reference=inp.reference,
                    at=workflow.now(),
                ),
                RecordPaymentResult,
            )
            self._view.payments.append(result.payment)
            self._view.invoices = [
                result.invoice if i.id == result.invoice.id else i for i in self._view.invoices
            ]
            self._record(
                "payment_recorded",
                inp.recorded_by or "finance",
                f"{result.payment.amount} by {inp.method} ref {inp.reference}",
                inp.caller,
            )
            await self._settled_invoices([result.invoice])
        if self._view.hold is not None and self._view.hold.kind == HoldKind.CREDIT:
            with contextlib.suppress(ApplicationError):  # still short of credit: stays held
                await self._unhold("payment", f"payment {inp.reference} received")
        return await self._settled()

    @pay.validator
    def _check_pay(self, inp: PaymentInput) -> None:
        if not rules.already_paid(self._view, inp):
            rules.check_payment(self._view, inp)

    @workflow.signal(name=RETURN_CREDITED_SIGNAL)
    async def return_credited(self, inp: ReturnCredited) -> None:
        """A return's credit note took returned goods off what the order still owed (the
        return workflow sends this; the order may now be settled without another payment)."""
        if self._view.closed:
            return
        async with self._payment_lock:
            touched = self._take_credit(inp.credit_note, inp.invoices)
            self._record(
                "return_credited",
                "finance",
                f"{inp.credit_note.id} for return {inp.return_no}: {inp.credit_note.amount}",
            )
            await self._settled_invoices(touched)

    def _take_credit(
        self, note: CreditNoteView, invoices: list[InvoiceView], refund: RefundView | None = None
    ) -> list[InvoiceView]:
        """A credit note, the invoices it changed and its refund, into the view (once each);
        returns those invoices."""
        fresh = {invoice.id: invoice for invoice in invoices}
        self._view.invoices = [fresh.get(i.id, i) for i in self._view.invoices]
        if note.id not in {n.id for n in self._view.credit_notes}:
            self._view.credit_notes.append(note)
        if refund is not None and refund.id not in {r.id for r in self._view.refunds}:
            self._view.refunds.append(refund)
        return [i for i in self._view.invoices if i.id in fresh]

    async def _settled_invoices(self, invoices: list[InvoiceView]) -> None:
        """Invoices paid (or credited) in full meet their deadlines; all of them, the order's."""
        for invoice in invoices:
            if invoice.status == "paid":
                self._meet(Sla.INVOICE_PAYMENT, key=invoice.id)
        if self._paid():
            self._meet(Sla.PREPAID_PAYMENT)
            self._meet(Sla.INVOICE_PAYMENT)
            await self._release_credit_hold()

    @workflow.update
    async def amend(self, inp: AmendOrderInput) -> OrderView:
        """修改: a new revision. New lines are validated like a new order and the approval rules
        run again: the order awaits approval at the level the new content needs."""
        async with self._amend_lock:
            rules.check_amendable(
                self._view, inp, self._closing, inp.today or workflow.now().date()
            )
            view, changed = self._view, inp.changed_fields()
            change = ChangeView(
                revision=view.revision + 1,
                at=workflow.now(),
                requested_by=inp.requested_by,
                reason=inp.reason,
            )
            if "lines" in changed and inp.lines is not None:
                await self._amend_lines(inp.lines, change)
            for field in ("requested_delivery_date", "shipping_address"):
                if field in changed and getattr(view, field) != getattr(inp, field):
                    change.fields[field] = [getattr(view, field), getattr(inp, field)]
                    setattr(view, field, getattr(inp, field))
            if "requested_delivery_date" in change.fields:
                await self._rearm_delivery()
            view.revision = change.revision
            view.changes.append(change)
            self._record(
                "order_amended",
                inp.requested_by,
                f"revision {change.revision}: {inp.reason}",
                inp.caller,
            )
        return await self._settled()

    @amend.validator
    def _check_amend(self, inp: AmendOrderInput) -> None:
        rules.check_amendable(self._view, inp, self._closing, inp.today or workflow.now().date())

    async def _amend_lines(self, lines: list[OrderLineRequest], change: ChangeView) -> None:
        """New lines for an order awaiting approval: validate, re-price, re-run the rules."""
        request = self._request.model_copy(update={"lines": lines})
        validation = await self._act(
            ActivityName.VALIDATE_ORDER,
            ValidateOrderInput(
                order_no=self._view.order_no,
                request=request,
                audit_id=str(workflow.uuid4()),
                at=workflow.now(),
            ),
            ValidateOrderResult,
        )
        if not validation.valid:
            raise ApplicationError(
                "The amended order does not pass entry validation",
                [p.model_dump() for p in validation.problems],
                type=Refusal.INVALID,
            )
        change.lines = line_diff(self._view.lines, validation.lines)
        change.fields["total"] = [as_number(self._view.total), as_number(validation.total)]
        self._request = request
        before = {(ln.line_no, ln.sku): ln for ln in self._view.lines}
        self._accept(validation, event="lines_amended")
        for line in self._view.lines:  # what is held stays held until the run reconciles
            old = before.get((line.line_no, line.sku))
            if old is not None:
                line.reserved_quantity = old.reserved_quantity
                line.produced_quantity = old.produced_quantity
        if self._approval_done and not self._raises_risk(validation):
            change.approved_by = [d.approver for d in self._view.approvals]
            change.reapproval = False  # less or equal risk: the approval stands
        else:
            # Decisions were for the old content: the new revision is decided afresh.
            change.superseded_approvals = [d.approver for d in self._view.approvals]
            self._view.approvals = []
            self._pending_change = change
            change.reapproval = await self._require_approval(validation)
        self._amended = True  # the run reconciles reservations, production and pick list

    def _raises_risk(self, validation: ValidateOrderResult) -> bool:
        """More than what was approved: a higher total or level, a deeper discount, a new
        reason (credit, rush, terms). Less or the same keeps the approval."""
        requirement = evaluate_approval(self._facts(validation), validation.policy)
        if requirement.levels == 0:
            return False
        baseline = self._approved
        if baseline is None:
            return True
        discount = max((line.discount_pct for line in validation.lines), default=Money(0))
        return (
            requirement.levels > baseline.levels
            or validation.total > baseline.total
            or discount > baseline.max_discount
            or not {r.code for r in requirement.reasons} <= set(baseline.reasons)
        )

    @workflow.update
    async def short_close(self, inp: ShortCloseInput) -> OrderView:
        """What has not shipped will not: pick lists withdrawn, production cancelled, stock
        released; the order goes on with what was shipped."""
        async with self._amend_lock:
            rules.check_short_close(self._view, self._closing)
            self._short_closed = True
            await self._withdraw_pick_lists("short-closed")
            planned = [po.id for po in self._view.production_orders if po.status == "planned"]
            if planned:
                done = await self._act(
                    ActivityName.CANCEL_PRODUCTION_ORDERS,
                    CompensateInput(
                        order_no=self._view.order_no,
                        at=workflow.now(),
                        reason="short-closed",
                        ids=planned,
                    ),
                    CompensateResult,
                )
                for po in self._view.production_orders:
                    if po.id in done.ids:
                        po.status = ProductionOrderStatus.CANCELLED
                        self._book.drop(Sla.PRODUCTION.value, po.id)
            await self._act(
                ActivityName.RELEASE_RESERVATIONS,
                CompensateInput(
                    order_no=self._view.order_no, at=workflow.now(), reason="short-closed"
                ),
                CompensateResult,
            )
            closed, value = [], Money(0)
            for line in self._view.lines:
                line.reserved_quantity = 0
                if line.to_ship > 0:
                    closed.append(f"{line.sku} {line.to_ship}")
                    value += line.unit_price * line.to_ship
                    line.short_closed_quantity += line.to_ship
            self._meet(Sla.DISPATCH)
            self._record("short_closed", inp.by, f"{', '.join(closed)}: {inp.reason}", inp.caller)
            prepaid = self._view.payment_terms == "prepaid"  # invoiced in full up front
            if prepaid and value > 0 and workflow.patched(SHORT_CLOSE_CREDIT_PATCH):
                await self._credit_short_closed(round_money(value), inp.reason)
        return await self._settled()

    async def _credit_short_closed(self, value: Money, reason: str) -> None:
        """What a prepaid customer paid for and will not get is credited and refunded."""
        credit = await self._act(
            ActivityName.CREDIT_ORDER,
            CreditOrderInput(
                order_no=self._view.order_no,
                credit_id=f"{self._view.order_no}-SC",
                amount=value,
                reason=f"short-closed: {reason}",
                at=workflow.now(),
            ),
            CreditResult,
        )
        self._take_credit(credit.credit_note, credit.invoices, credit.refund)
        refunded = f"; refund {credit.refund.amount}" if credit.refund else ""
        self._record("short_close_credited", "finance", f"credit note {value}{refunded}")

    @short_close.validator
    def _check_short_close(self, inp: ShortCloseInput) -> None:
        rules.check_short_close(self._view, self._closing)

    @workflow.update
    async def hold(self, inp: HoldInput) -> OrderView:
        """冻结: the order stops where it is and its deadlines pause."""
        rules.check_holdable(self._view, self._closing)
        now = workflow.now()
        self._view.hold = HoldView(
            kind=inp.kind.value,
            reason=inp.reason,
            by=inp.by,
            at=now,
            resume_status=self._view.status.value,
        )
        self._view.status = OrderStatus.ON_HOLD
        self._view.status_label = status_label(OrderStatus.ON_HOLD)
        self._book.pause_all(now)
        self._record("order_held", inp.by, f"{inp.kind.value}: {inp.reason}", inp.caller)
        return await self._settled()

    @hold.validator
    def _check_hold(self, inp: HoldInput) -> None:
        rules.check_holdable(self._view, self._closing)

    @workflow.update
    async def release(self, inp: ReleaseInput) -> OrderView:
        """Release re-checks credit (a credit hold stays while it fails) and resumes the order."""
        rules.check_releasable(self._view)
        await self._unhold(inp.by, inp.comment, inp.caller)
        return await self._settled()

    @release.validator
    def _check_release(self, inp: ReleaseInput) -> None:
        rules.check_releasable(self._view)

    async def _unhold(self, by: str, comment: str | None, caller: Caller | None = None) -> bool:
        """Lift the hold if credit allows (a manual hold always lifts). True if lifted."""
        hold = self._view.hold
        assert hold is not None
        uninvoiced = self._view.total - sum((i.amount for i in self._view.invoices), Money(0))
        check = await self._act(
            ActivityName.CHECK_CREDIT,
            CheckCreditInput(
                customer_id=self._view.customer_id,
                order_no=self._view.order_no,
                uninvoiced_amount=max(uninvoiced, Money(0)),
            ),
            CreditCheckResult,
        )
        credit = check.credit
        summary = f"credit exposure {credit.exposure} of limit {credit.credit_limit}" + (
            "; customer on credit hold" if check.on_credit_hold else ""
        )
        if hold.kind == HoldKind.CREDIT and not check.ok:
            raise ApplicationError(
                f"Order {self._view.order_no} stays on credit hold: {summary}",
                type=Refusal.INVALID_STATE,
            )
        if self._view.hold is not hold:  # released (or cancelled) meanwhile by another command
            return False
        self._view.hold = None
        self._view.credit = credit
        status = OrderStatus(hold.resume_status)
        self._view.status = status
        self._view.status_label = status_label(status)
        self._record("order_released", by, "; ".join(filter(None, [comment, summary])), caller)
        self._resume_ladders(self._book.resume_all(workflow.now()))
        return True

    @workflow.update
    async def cancel(self, inp: CancelOrderInput) -> OrderView:
        """Cancel until goods ship; answered when every step has been undone."""
        if self._view.cancellation is None:
            rules.check_cancellable(self._view, self._closing)
            self._request_cancel(inp.reason_code.value, inp.by, inp.comment, inp.caller)
        await workflow.wait_condition(lambda: self._view.closed)
        return self._view

    @cancel.validator
    def _check_cancel(self, inp: CancelOrderInput) -> None:
        if self._view.cancellation is None:
            rules.check_cancellable(self._view, self._closing)

    @workflow.query
    def view(self) -> OrderView:
        return self._view
