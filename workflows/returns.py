"""A return or exchange (退换货) as its own workflow, linked to its order by number.

Why its own workflow and not a child of the order's: orders archive when they complete (and
free the worker's cache); returns come days or weeks later. A return started on its own
works the same whether its order is still open (delivered, awaiting payment) or archived,
and its status reaches the order's view through the read model, so the order never moves
backwards. The after-sales SLA (24 hours to answer) escalates like every other deadline.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import (
        ActivityName,
        CreditResult,
        DeadlineRequest,
        DeliverInput,
        DeliverShipmentInput,
        DispatchInput,
        DispatchShipmentInput,
    )
    from domain.orders import ShipmentView, TimelineEntry, workflow_id_for
    from domain.policy import Sla
    from domain.returns import (
        RETURN_CREDITED_SIGNAL,
        InspectReturnInput,
        ReceiveReturnInput,
        RefuseReturnInput,
        ReturnCredited,
        ReturnDecision,
        ReturnDecisionInput,
        ReturnResolution,
        ReturnStatus,
        ReturnStepInput,
        ReturnView,
        ReturnWorkflowInput,
        SaveReturnInput,
    )
    from domain.statuses import GONE_SHIPMENTS, ShipmentStatus
    from workflows.act import act
    from workflows.ladders import DeadlineLadder

# A credit note that settles part of an unpaid invoice is applied to it, and the order told.
CREDIT_SETTLES_PATCH = "return-credit-settles-invoice"
# A return whose inspection accepted nothing ends there.
NOTHING_ACCEPTED_PATCH = "return-nothing-accepted"


@workflow.defn
class ReturnWorkflow:
    @workflow.init
    def __init__(self, inp: ReturnWorkflowInput) -> None:
        self._view = inp.view
        self._fingerprint = inp.fingerprint
        self._seq = 0
        self._saved_seq = -1
        self._closing = False
        self._deadlines = DeadlineLadder(
            self._view,
            record=self._record,
            changed=self._changed,
            status=lambda: self._view.status.value,
            customer_group=lambda: inp.view.customer_group,
        )

    @workflow.run
    async def run(self, inp: ReturnWorkflowInput) -> ReturnView:
        view = self._view
        self._record("return_requested", view.requested_by, view.reason)
        await self._deadlines.arm(
            DeadlineRequest(sla=Sla.AFTER_SALES, key=view.return_no, start=view.requested_at)
        )
        await self._wait(lambda: view.decision is not None)
        if view.status is ReturnStatus.REFUSED:
            return await self._close(ReturnStatus.REFUSED)
        await self._wait(lambda: view.status is ReturnStatus.RECEIVED)
        await self._wait(lambda: view.status is ReturnStatus.INSPECTED)
        nothing = not any(line.accepted_quantity for line in view.lines)
        if nothing and workflow.patched(NOTHING_ACCEPTED_PATCH):
            # Nothing to restock, credit or replace: no empty credit note, no empty shipment.
            self._record("nothing_accepted", "warehouse", "no goods accepted at inspection")
            return await self._close(ReturnStatus.COMPLETED)
        step = ReturnStepInput(view=view, at=workflow.now())
        await act(ActivityName.RESTOCK_RETURN, step, type(None))
        self._record("return_restocked", "warehouse")
        if view.resolution is ReturnResolution.REFUND:
            credit = await act(ActivityName.CREDIT_RETURN, step, CreditResult)
            view.credit_note, view.refund = credit.credit_note, credit.refund
            refunded = f"; refund {credit.refund.amount}" if credit.refund else ""
            self._record(
                "return_credited", "finance", f"credit note {credit.credit_note.amount}{refunded}"
            )
            if credit.settles_debt and workflow.patched(CREDIT_SETTLES_PATCH):
                await self._tell_order(credit)
            return await self._close(ReturnStatus.COMPLETED)
        view.replacement = await act(ActivityName.SHIP_REPLACEMENT, step, ShipmentView)
        self._set(ReturnStatus.REPLACEMENT_READY, "replacement_ready", "warehouse")
        await self._wait(lambda: self._replacement(*GONE_SHIPMENTS))
        self._set(ReturnStatus.REPLACEMENT_SHIPPED, "replacement_shipped", "warehouse")
        await self._wait(lambda: self._replacement(ShipmentStatus.DELIVERED))
        return await self._close(ReturnStatus.COMPLETED)

    # --- people and the warehouse ------------------------------------------------------------

    @workflow.update
    async def approve(self, inp: ReturnDecisionInput) -> ReturnView:
        self._expect(ReturnStatus.REQUESTED, "approved")
        self._decide("approved", inp.by, inp.comment, ReturnStatus.APPROVED)
        return await self._settled()

    @approve.validator
    def _check_approve(self, inp: ReturnDecisionInput) -> None:
        self._expect(ReturnStatus.REQUESTED, "approved")

    @workflow.update
    async def refuse(self, inp: RefuseReturnInput) -> ReturnView:
        self._expect(ReturnStatus.REQUESTED, "refused")
        self._decide("refused", inp.by, inp.reason, ReturnStatus.REFUSED)
        return await self._settled()

    @refuse.validator
    def _check_refuse(self, inp: RefuseReturnInput) -> None:
        self._expect(ReturnStatus.REQUESTED, "refused")

    @workflow.update
    async def receive(self, inp: ReceiveReturnInput) -> ReturnView:
        self._expect(ReturnStatus.APPROVED, "received")
        self._set(ReturnStatus.RECEIVED, "return_goods_received", inp.by)
        return await self._settled()

    @receive.validator
    def _check_receive(self, inp: ReceiveReturnInput) -> None:
        self._expect(ReturnStatus.APPROVED, "received")

    @workflow.update
    async def inspect(self, inp: InspectReturnInput) -> ReturnView:
        accepted = self._check_inspection(inp)
        left = dict(accepted)
        for line in self._view.lines:
            # A SKU that comes back from several order lines is accepted line by line in the
            # return's order (cheapest first): each unit is credited once, at its line's price.
            line.accepted_quantity = min(line.quantity, left[line.sku])
            left[line.sku] -= line.accepted_quantity
        detail = ", ".join(f"{sku} {qty}" for sku, qty in accepted.items())
        self._set(ReturnStatus.INSPECTED, "return_inspected", inp.by, f"accepted {detail}")
        return await self._settled()

    @inspect.validator
    def _check_inspect(self, inp: InspectReturnInput) -> None:
        self._check_inspection(inp)

    @workflow.update
    async def dispatch(self, inp: DispatchInput) -> ReturnView:
        shipment = self._check_replacement(inp.shipment_id, ShipmentStatus.READY)
        view = self._view
        view.replacement = await act(
            ActivityName.DISPATCH_SHIPMENT,
            DispatchShipmentInput(
                order_no=view.return_no,
                shipment_id=shipment.id,
                carrier=inp.carrier,
                tracking_no=inp.tracking_no,
                at=workflow.now(),
            ),
            ShipmentView,
        )
        self._record(
            "replacement_dispatched", inp.dispatched_by, f"{inp.carrier} {inp.tracking_no}"
        )
        return await self._settled()

    @dispatch.validator
    def _check_dispatch(self, inp: DispatchInput) -> None:
        self._check_replacement(inp.shipment_id, ShipmentStatus.READY)

    @workflow.update
    async def deliver(self, inp: DeliverInput) -> ReturnView:
        shipment = self._check_replacement(inp.shipment_id, ShipmentStatus.DISPATCHED)
        self._view.replacement = await act(
            ActivityName.DELIVER_SHIPMENT,
            DeliverShipmentInput(
                order_no=self._view.return_no,
                shipment_id=shipment.id,
                signed_by=inp.signed_by,
                at=workflow.now(),
            ),
            ShipmentView,
        )
        self._record("replacement_delivered", inp.reported_by or inp.signed_by)
        return await self._settled()

    @deliver.validator
    def _check_deliver(self, inp: DeliverInput) -> None:
        self._check_replacement(inp.shipment_id, ShipmentStatus.DISPATCHED)

    @workflow.query
    def view(self) -> ReturnView:
        return self._view

    # --- rules ---------------------------------------------------------------------------

    def _expect(self, status: ReturnStatus, verb: str) -> None:
        if self._view.status is not status or self._closing:
            raise ApplicationError(
                f"Return {self._view.return_no} is {self._view.status}; it cannot be {verb} now",
                type=Refusal.INVALID_STATE,
            )

    def _check_inspection(self, inp: InspectReturnInput) -> dict[str, int]:
        self._expect(ReturnStatus.RECEIVED, "inspected")
        lines = self._view.lines
        if inp.lines is not None:
            accepted = {line.sku: line.accepted_quantity for line in inp.lines}
        elif inp.accepted_quantity is not None and len({line.sku for line in lines}) == 1:
            # One SKU, even when its units come from several order lines.
            accepted = {lines[0].sku: inp.accepted_quantity}
        else:
            raise ApplicationError(
                "Send accepted_quantity for a one-line return, or lines with each SKU",
                [{"field": "lines", "message": "one accepted quantity per returned SKU"}],
                type=Refusal.INVALID,
            )
        returned: dict[str, int] = {}
        for line in lines:
            returned[line.sku] = returned.get(line.sku, 0) + line.quantity
        problems = [
            {"field": f"lines[{i}]", "message": f"{sku}: accept 0 to {quantity}"}
            for i, (sku, quantity) in enumerate(returned.items())
            if not 0 <= accepted.get(sku, -1) <= quantity
        ]
        if problems or set(accepted) - {line.sku for line in lines}:
            raise ApplicationError(
                "Accepted quantities must cover the returned SKUs, within what was returned",
                problems or [{"field": "lines", "message": "unknown SKU"}],
                type=Refusal.INVALID,
            )
        return accepted

    def _check_replacement(self, shipment_id: str, expected: ShipmentStatus) -> ShipmentView:
        shipment = self._view.replacement
        if shipment is None or shipment.id != shipment_id:
            raise ApplicationError(
                f"Shipment {shipment_id} is not this return's replacement", type=Refusal.NOT_FOUND
            )
        if shipment.status != expected:
            raise ApplicationError(
                f"Replacement {shipment_id} is {shipment.status}", type=Refusal.INVALID_STATE
            )
        return shipment

    async def _tell_order(self, credit: CreditResult) -> None:
        """The order still waiting for its payment learns what it no longer owes."""
        order = workflow.get_external_workflow_handle(workflow_id_for(self._view.order_no))
        try:
            await order.signal(
                RETURN_CREDITED_SIGNAL,
                ReturnCredited(
                    return_no=self._view.return_no,
                    credit_note=credit.credit_note,
                    invoices=credit.invoices,
                ),
            )
        except FailureError:  # the order closed meanwhile: it owes nothing, nothing to tell
            self._record("order_not_told", "system", "the order had closed")

    def _replacement(self, *statuses: ShipmentStatus) -> bool:
        return self._view.replacement is not None and self._view.replacement.status in statuses

    # --- plumbing --------------------------------------------------------------------------

    def _decide(self, decision: str, by: str, comment: str | None, status: ReturnStatus) -> None:
        self._view.decision = ReturnDecision(
            decision=decision, by=by, at=workflow.now(), comment=comment
        )
        self._deadlines.meet(Sla.AFTER_SALES)
        self._set(status, f"return_{decision}", by, comment)

    def _set(self, status: ReturnStatus, event: str, actor: str, detail: str | None = None) -> None:
        self._view.status = status
        self._view.status_label = status.labels
        self._record(event, actor, detail)

    def _record(self, event: str, actor: str, detail: str | None = None) -> None:
        now = workflow.now()
        self._view.timeline.append(
            TimelineEntry(at=now, event=event, actor=actor, status=self._view.status, detail=detail)
        )
        self._view.updated_at = now
        self._seq += 1

    def _changed(self) -> None:
        self._seq += 1

    async def _wait(self, done: Callable[[], bool]) -> None:
        while not done():
            await self._checkpoint()
            await workflow.wait_condition(lambda: done() or self._seq != self._saved_seq)

    async def _settled(self) -> ReturnView:
        target = self._seq
        await workflow.wait_condition(lambda: self._saved_seq >= target or self._view.closed)
        return self._view

    async def _checkpoint(self) -> None:
        if self._seq == self._saved_seq:
            return
        seq = self._seq
        escalations, resolutions = self._deadlines.take_log()
        await act(
            ActivityName.SAVE_RETURN,
            SaveReturnInput(
                view=self._view,
                at=workflow.now(),
                fingerprint=self._fingerprint,
                escalations=escalations,
                resolutions=resolutions,
            ),
            type(None),
        )
        self._saved_seq = seq

    async def _close(self, status: ReturnStatus) -> ReturnView:
        self._closing = True
        self._deadlines.close(workflow.now())
        if self._view.status is not status:
            self._set(status, f"return_{status.lower()}", "system")
        await self._deadlines.finished()
        self._view.closed = True
        self._record("return_closed", "system")
        await self._checkpoint()
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._checkpoint()
        return self._view
