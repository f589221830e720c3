"""The sales order (销售订单) as one long-lived workflow: entry to archive.

`run` reads as the lifecycle (DOMAIN.md): enter, approve, reserve, produce, ship, deliver,
settle, archive. People and systems move the order on through updates, each answered at once
with the new state. The class holds its state (`OrderState`) and its deadline ladder
(`DeadlineLadder`); each step in the world is a function of the state (`order_steps`,
`saga`, `approval`), each command's rule a pure function (`rules`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import (
        ApproveOrderInput,
        CancelOrderInput,
        ConfirmOrderInput,
        DeadlineRequest,
        DeliverInput,
        DispatchInput,
        HoldInput,
        HoldKind,
        OrderWorkflowInput,
        PaymentInput,
        RejectOrderInput,
        ReleaseInput,
        ReportProductionInput,
        ShortCloseInput,
        SubmitOrderInput,
        SubmitOrderResult,
    )
    from domain.orders import (
        AmendOrderInput,
        DeliveryPolicy,
        OrderView,
    )
    from domain.policy import Sla
    from domain.returns import RETURN_CREDITED_SIGNAL, ReturnCredited
    from domain.statuses import (
        OrderStatus,
        ProductionOrderStatus,
    )
    from workflows import amendment, approval, confirmation, order_steps, payments, rules, saga
    from workflows.fulfilment import Fulfilment
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

# Deadline ladders (issue 3) change the command sequence: orders started before run without.
DEADLINES_PATCH = "deadlines-v1"
# The read model and search attributes show CANCELLING while the saga undoes the steps.
CANCELLING_PATCH = "checkpoint-cancelling"
# A Temporal cancellation request (the UI's "Request Cancellation", `temporal workflow
# cancel`) is a business cancellation: the saga runs as for POST /cancel. Before, the run
# ended CANCELED at once with nothing undone.
TEMPORAL_CANCEL_PATCH = "temporal-cancel-runs-saga"


class _Cancelled(Exception):
    """Out of any wait once a cancellation was requested (a person, an expired deadline)."""


class _Amended(Exception):
    """Out of a wait before dispatch once an amendment changed the order (`amend` sets
    `amended`): `run` starts approval and fulfilment over on the new content."""


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, inp: OrderWorkflowInput) -> None:
        self._state = s = OrderState.received(inp)
        self._deadlines = DeadlineLadder(
            s.view,
            record=s.record,
            changed=s.changed,
            status=lambda: s.view.status.value,
            priority=lambda: s.view.priority.value,
            customer_group=lambda: s.customer_group,
            expire=lambda reason, what: s.request_cancel(reason, "system", what),
            enabled=False,  # until `run` knows whether this order started before deadlines
            breached=self._breached,
        )
        self._fulfilment = Fulfilment(
            s, self._deadlines, wait=self._wait, stop_if_cancelled=self._stop_if_cancelled
        )

    # --- the process --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> OrderView:
        """The process, shielded: Temporal's cancellation request becomes the business's
        (`order_steps.cancel_from_temporal`); local activities in flight finish, the saga
        runs and the run completes with the CANCELLED order, its number still taken."""
        s, process = self._state, asyncio.create_task(self._process(inp))
        cancelled_in_temporal = False
        while True:
            try:
                view = await asyncio.shield(process)
                break
            except asyncio.CancelledError:
                if process.done():  # the process itself was cancelled: nothing to shield
                    raise
                if not workflow.patched(TEMPORAL_CANCEL_PATCH):
                    process.cancel()  # orders started before: the run ends as it did
                    await process
                cancelled_in_temporal = True
                order_steps.cancel_from_temporal(s, workflow.cancellation_reason() or None)
        if cancelled_in_temporal and s.seq != s.saved_seq:  # refused as the order closed
            await order_steps.checkpoint(s, self._deadlines)
        return view

    async def _process(self, inp: OrderWorkflowInput) -> OrderView:
        s, view = self._state, self._state.view
        self._deadlines.enabled = workflow.patched(DEADLINES_PATCH)
        validation = await order_steps.validate(s, s.request)
        if not validation.valid:
            return await order_steps.refuse_entry(s, self._deadlines, validation, inp.caller)
        s.accept(validation, caller=inp.caller)
        try:
            dispatch = DeadlineRequest(sla=Sla.DISPATCH, start=view.received_at)
            await approval.require(s, self._deadlines, validation, dispatch)
            while True:  # approval to dispatch; an amendment starts it over on the new content
                try:
                    await self._wait(
                        OrderStatus.PENDING_APPROVAL,
                        approval.waiting_for(view),
                        lambda: s.approval_done,
                    )
                    if s.rejected:
                        await saga.undo(s, "rejected")
                        return await self._close(OrderStatus.REJECTED, "order_rejected")
                    if view.delivery_policy is DeliveryPolicy.PARTIAL:
                        await self._fulfilment.partially()
                    else:
                        await self._fulfilment.whole()
                    break
                except _Amended:
                    s.amended = False
                    if not s.approval_done:  # back to approval: nothing may be picked
                        await saga.withdraw_pick_lists(s, "awaiting approval again")
            await self._fulfilment.invoice_and_chase()  # the delivery and payment clocks
            await self._wait(OrderStatus.SHIPPED, "delivery sign-off (签收)", s.delivered)
            await self._wait(OrderStatus.DELIVERED, "payment of the invoice", s.paid)
            return await self._close(OrderStatus.COMPLETED, "order_completed")
        except _Cancelled:
            assert view.cancellation is not None
            if workflow.patched(CANCELLING_PATCH):
                await order_steps.checkpoint(s, self._deadlines)
            await saga.undo(s, view.cancellation.reason_code)
            return await self._close(OrderStatus.CANCELLED, "order_cancelled")

    # --- the two ends: entry refused, archive ----------------------------------------------

    async def _close(self, status: OrderStatus, event: str) -> OrderView:
        """归档: ladders stop, notifications go out, the final state goes to the read model."""
        s = self._state
        s.closing = True
        self._deadlines.close(workflow.now())
        s.set_status(status, event, "system")
        s.view.waiting_for = None
        await self._deadlines.finished()
        s.view.closed = True
        s.record("order_archived", "system")
        await order_steps.checkpoint(s, self._deadlines)
        await workflow.wait_condition(workflow.all_handlers_finished)
        if s.seq != s.saved_seq:  # an update finished its work after the archive
            await order_steps.checkpoint(s, self._deadlines)
        return s.view

    async def _breached(self, sla: Sla, key: str) -> None:
        """A production order runs late: the order is promised again (sales are notified by
        the production ladder's escalation)."""
        if sla is Sla.PRODUCTION:
            reason = f"production order {key} late"
            await confirmation.repromise(self._state, reason, self._deadlines)

    def _stop_if_cancelled(self) -> None:
        if self._state.view.cancellation is not None:
            raise _Cancelled

    # --- waits and checkpoints ------------------------------------------------------------

    async def _wait(self, status: OrderStatus, waiting_for: str, done: Callable[[], bool]) -> None:
        """Wait until `done()`, keeping the read model and ops' view current meanwhile.

        A cancellation ends any wait (`_Cancelled`); an amendment one before dispatch
        (`_Amended`). An order on hold does nothing until released.
        """
        s, view = self._state, self._state.view
        if done() and view.cancellation is None and view.hold is None:
            return
        if view.cancellation is None:
            s.set_status(status, f"status_{status.lower()}", "system")
            view.waiting_for = waiting_for
        while True:
            await order_steps.checkpoint(s, self._deadlines)
            await workflow.wait_condition(
                lambda: (
                    (done() and view.hold is None)
                    or s.seq != s.saved_seq
                    or view.cancellation is not None
                    or s.amended
                )
            )
            if view.cancellation is not None:
                raise _Cancelled
            if s.amended and not s.dispatched():
                raise _Amended
            if done() and view.hold is None:
                view.waiting_for = None
                return

    async def _settled(self) -> OrderView:
        """Let the run catch up with an update's change, then answer with the new state."""
        s, target = self._state, self._state.seq
        await workflow.wait_condition(lambda: s.stable_seq >= target or s.view.closed)
        return s.view

    # --- what people and systems send: each validator refuses early what its handler would ---

    @workflow.update
    async def submit(self, inp: SubmitOrderInput) -> SubmitOrderResult:
        """Submitting (or resubmitting) the order: answered once entry is decided."""
        s = self._state
        first = s.submissions == 0
        s.submissions += 1
        await workflow.wait_condition(lambda: s.stable_seq >= 0)
        return SubmitOrderResult(created=first, order=s.view)

    @submit.validator
    def _check_submit(self, inp: SubmitOrderInput) -> None:
        if inp.fingerprint != self._state.fingerprint:
            raise ApplicationError(
                f"Order number {self._state.view.order_no} was already submitted with "
                "different content",
                type=Refusal.CONFLICT,
            )

    @workflow.update
    async def approve(self, inp: ApproveOrderInput) -> OrderView:
        s = self._state
        rules.check_decision(s.view, inp.approver, inp.role.value, inp.role.level)
        approval.approve(s, self._deadlines, inp)  # the next level, or approved
        return await self._settled()

    @approve.validator
    def _check_approve(self, inp: ApproveOrderInput) -> None:
        rules.check_decision(self._state.view, inp.approver, inp.role.value, inp.role.level)

    @workflow.update
    async def reject(self, inp: RejectOrderInput) -> OrderView:
        s = self._state
        rules.check_decision(s.view, inp.approver, inp.role.value, inp.role.level)
        approval.reject(s, self._deadlines, inp)  # `run` undoes what was done and closes
        return await self._settled()

    @reject.validator
    def _check_reject(self, inp: RejectOrderInput) -> None:
        rules.check_decision(self._state.view, inp.approver, inp.role.value, inp.role.level)

    @workflow.update
    async def report_production(self, inp: ReportProductionInput) -> OrderView:
        po = rules.check_production(self._state.view, self._state.busy, inp)
        updated = await order_steps.record_production(self._state, po, inp)
        if updated.status == ProductionOrderStatus.COMPLETED:
            self._deadlines.meet(Sla.PRODUCTION, key=po.id)
        return await self._settled()

    @report_production.validator
    def _check_report_production(self, inp: ReportProductionInput) -> None:
        rules.check_production(self._state.view, self._state.busy, inp)

    @workflow.update
    async def dispatch(self, inp: DispatchInput) -> OrderView:
        s = self._state
        shipment = rules.check_dispatch(s.view, s.busy, inp.shipment_id, amending=s.amending())
        await order_steps.dispatch_shipment(s, shipment, inp)
        if s.all_shipped():
            self._deadlines.meet(Sla.DISPATCH)
        return await self._settled()

    @dispatch.validator
    def _check_dispatch(self, inp: DispatchInput) -> None:
        s = self._state
        rules.check_dispatch(s.view, s.busy, inp.shipment_id, amending=s.amending())

    @workflow.update
    async def deliver(self, inp: DeliverInput) -> OrderView:
        s = self._state
        shipment = rules.check_delivery(s.view, s.busy, inp.shipment_id)
        updated = await order_steps.deliver_shipment(s, shipment, inp)
        self._deadlines.meet(Sla.DELIVERY, key=updated.id)
        if s.delivered() and s.all_shipped():
            self._deadlines.meet(Sla.DELIVERY)
        return await self._settled()

    @deliver.validator
    def _check_deliver(self, inp: DeliverInput) -> None:
        s = self._state
        rules.check_delivery(s.view, s.busy, inp.shipment_id)

    @workflow.update
    async def pay(self, inp: PaymentInput) -> OrderView:
        s = self._state
        # Payments to one order queue up; each is checked against what is outstanding once
        # the ones before it are booked, so two at once can never overpay.
        async with s.payment_lock:
            if rules.already_paid(s.view, inp):
                return s.view  # the same payment reported again: counted once
            invoice = rules.check_payment(s.view, inp)
            invoice = await payments.record_payment(s, invoice, inp)
            await payments.settle(s, self._deadlines, [invoice])
        if s.view.hold is not None and s.view.hold.kind == HoldKind.CREDIT:
            with contextlib.suppress(ApplicationError):  # still short of credit: stays held
                await payments.release_hold(
                    s, self._deadlines, "payment", f"payment {inp.reference} received"
                )
        return await self._settled()

    @pay.validator
    def _check_pay(self, inp: PaymentInput) -> None:
        if not rules.already_paid(self._state.view, inp):
            rules.check_payment(self._state.view, inp)

    @workflow.signal(name=RETURN_CREDITED_SIGNAL)
    async def return_credited(self, inp: ReturnCredited) -> None:
        """A return's credit note took returned goods off what the order still owed (the
        return workflow sends this; the order may now be settled without another payment)."""
        s = self._state
        if s.view.closed:
            return
        async with s.payment_lock:
            touched = payments.take_credit(s, inp.credit_note, inp.invoices)
            note = inp.credit_note
            s.record(
                "return_credited", "finance", f"{note.id} for return {inp.return_no}: {note.amount}"
            )
            await payments.settle(s, self._deadlines, touched)

    @workflow.update
    async def amend(self, inp: AmendOrderInput) -> OrderView:
        """修改: a new revision. New lines are validated like a new order and the approval rules
        run again: the order awaits approval at the level the new content needs."""
        s, view = self._state, self._state.view
        async with s.amend_lock:
            rules.check_amendable(view, inp, s.closing, inp.today or workflow.now().date())
            change = amendment.new_revision(s, inp)
            if "lines" in inp.changed_fields() and inp.lines is not None:
                await amendment.change_lines(s, self._deadlines, inp.lines, change)
                s.amended = True  # `run` reconciles reservations, production and pick list
            amendment.change_fields(s, inp, change)
            if "requested_delivery_date" in change.fields:
                await self._fulfilment.rearm_delivery()
            amendment.record(s, inp, change)
        return await self._settled()

    @amend.validator
    def _check_amend(self, inp: AmendOrderInput) -> None:
        s = self._state
        rules.check_amendable(s.view, inp, s.closing, inp.today or workflow.now().date())

    @workflow.update
    async def short_close(self, inp: ShortCloseInput) -> OrderView:
        """What has not shipped will not; the order goes on with what was shipped."""
        async with self._state.amend_lock:
            rules.check_short_close(self._state.view, self._state.closing)
            await self._fulfilment.short_close(inp)
        return await self._settled()

    @short_close.validator
    def _check_short_close(self, inp: ShortCloseInput) -> None:
        rules.check_short_close(self._state.view, self._state.closing)

    @workflow.update
    async def hold(self, inp: HoldInput) -> OrderView:
        """冻结: the order stops where it is and its deadlines pause."""
        rules.check_holdable(self._state.view, self._state.closing)
        order_steps.hold(self._state, self._deadlines, inp)
        return await self._settled()

    @hold.validator
    def _check_hold(self, inp: HoldInput) -> None:
        rules.check_holdable(self._state.view, self._state.closing)

    @workflow.update
    async def release(self, inp: ReleaseInput) -> OrderView:
        """Release re-checks credit (a credit hold stays while it fails) and resumes the order."""
        rules.check_releasable(self._state.view)
        await payments.release_hold(self._state, self._deadlines, inp.by, inp.comment, inp.caller)
        return await self._settled()

    @release.validator
    def _check_release(self, inp: ReleaseInput) -> None:
        rules.check_releasable(self._state.view)

    @workflow.update
    async def cancel(self, inp: CancelOrderInput) -> OrderView:
        """Cancel until goods ship; answered when every step has been undone."""
        s = self._state
        if s.view.cancellation is None:
            rules.check_cancellable(s.view, s.closing)
            s.request_cancel(inp.reason_code.value, inp.by, inp.comment, inp.caller)
        await workflow.wait_condition(lambda: s.view.closed)
        return s.view

    @cancel.validator
    def _check_cancel(self, inp: CancelOrderInput) -> None:
        if self._state.view.cancellation is None:
            rules.check_cancellable(self._state.view, self._state.closing)

    @workflow.update
    async def confirm(self, inp: ConfirmOrderInput) -> OrderView:
        """书面确认: the customer's signed confirmation; the order goes on to fulfilment."""
        rules.check_confirmable(self._state.view)
        confirmation.record_written(self._state, self._deadlines, inp)
        return await self._settled()

    @confirm.validator
    def _check_confirm(self, inp: ConfirmOrderInput) -> None:
        rules.check_confirmable(self._state.view)

    @workflow.query
    def view(self) -> OrderView:
        return self._state.view
