"""The sales order (销售订单) as one long-lived workflow: entry to archive.

`run` reads as the process; people and systems move it on through updates (see
`order_commands.py`), each answered at once with the new state. Every wait goes through one
place (`OrderCore._wait`), which checkpoints the read model and search attributes first.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import (
        ActivityName,
        CompensateInput,
        CompensateResult,
        CreateShipmentInput,
        DeadlineRequest,
        IssueInvoiceInput,
        OrderWorkflowInput,
        PlanProductionInput,
        PlanProductionResult,
        ReserveStockInput,
        ReserveStockResult,
        Shortage,
        StockLine,
        ValidateOrderInput,
        ValidateOrderResult,
    )
    from domain.money import Money, round_money
    from domain.orders import (
        Caller,
        DeliveryPolicy,
        InvoiceView,
        OrderView,
        ShipmentLineView,
        ShipmentView,
    )
    from domain.policy import Sla
    from domain.statuses import (
        OrderStatus,
        ProductionOrderStatus,
    )
    from workflows.order_commands import OrderCommands
    from workflows.order_core import _Amended, _Cancelled


# Deadline ladders (issue 3) change the command sequence: orders started before run without.
DEADLINES_PATCH = "deadlines-v1"
# A partial order's pick list that an amendment left larger than the reservations is withdrawn.
PICK_LIST_PATCH = "partial-pick-list-follows-amendment"
# The read model and search attributes show CANCELLING while the saga undoes the steps.
CANCELLING_PATCH = "checkpoint-cancelling"


@workflow.defn
class OrderWorkflow(OrderCommands):
    @workflow.init
    def __init__(self, inp: OrderWorkflowInput) -> None:
        self._init_state(inp)

    # --- the process --------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: OrderWorkflowInput) -> OrderView:
        self._deadlines_on = workflow.patched(DEADLINES_PATCH)
        validation = await self._validate()
        if not validation.valid:
            return await self._refuse_entry(validation, inp.caller)
        self._accept(validation, caller=inp.caller)
        try:
            dispatch = DeadlineRequest(sla=Sla.DISPATCH, start=self._view.received_at)
            await self._require_approval(validation, dispatch)
            while True:  # approval to dispatch; an amendment starts it over on the new content
                try:
                    await self._wait(
                        OrderStatus.PENDING_APPROVAL,
                        self._approval_waiting_for(),
                        lambda: self._approval_done,
                    )
                    if self._rejected:
                        await self._undo("rejected")
                        return await self._close(OrderStatus.REJECTED, "order_rejected")
                    if self._view.delivery_policy is DeliveryPolicy.PARTIAL:
                        await self._fulfil_partially()
                    else:
                        await self._fulfil()
                    break
                except _Amended:
                    self._amended = False
                    if not self._approval_done:  # back to approval: nothing may be picked
                        await self._withdraw_pick_lists("awaiting approval again")
            deadlines = (
                []
                if self._view.delivery_policy is DeliveryPolicy.PARTIAL  # armed per shipment
                else [
                    DeadlineRequest(
                        sla=Sla.DELIVERY,
                        start=workflow.now(),
                        due_date=self._view.requested_delivery_date,
                    )
                ]
            )
            if not self._view.invoices:
                invoice = await self._issue_invoice()
                deadlines.append(
                    DeadlineRequest(
                        sla=Sla.INVOICE_PAYMENT, start=invoice.issued_at, due_date=invoice.due_date
                    )
                )
            await self._arm(*deadlines)
            await self._wait(OrderStatus.SHIPPED, "delivery sign-off (签收)", self._delivered)
            await self._wait(OrderStatus.DELIVERED, "payment of the invoice", self._paid)
            return await self._close(OrderStatus.COMPLETED, "order_completed")
        except _Cancelled:
            assert self._view.cancellation is not None
            if workflow.patched(CANCELLING_PATCH):
                await self._checkpoint()
            await self._undo(self._view.cancellation.reason_code)
            return await self._close(OrderStatus.CANCELLED, "order_cancelled")

    async def _fulfil(self) -> None:
        """Reserve, (prepaid: be paid), produce what is short, pick and wait for dispatch.

        Each step reconciles to the order's current content, so after an amendment the same
        steps release what is no longer needed and do what is new.
        """
        await self._reserve_stock()
        self._stop_if_cancelled()
        if self._view.payment_terms == "prepaid":
            # 款到发货: invoiced at approval; production and shipping wait for the money.
            await self._prepaid_invoice()
            await self._wait(OrderStatus.AWAITING_PAYMENT, "payment of the invoice", self._paid)
        await self._produce_shortages()
        self._stop_if_cancelled()
        await self._ship()

    async def _fulfil_partially(self) -> None:
        """缺货, `partial` delivery: ship what is reserved now and backorder the rest; each
        shipment is invoiced when it leaves (credit terms) and has its own deadlines."""
        await self._reserve_stock()
        self._stop_if_cancelled()
        if self._view.payment_terms == "prepaid":
            await self._prepaid_invoice()
            await self._wait(OrderStatus.AWAITING_PAYMENT, "payment of the invoice", self._paid)
        await self._produce_shortages(wait=False)
        self._stop_if_cancelled()
        while True:
            await self._invoice_dispatched()
            if self._all_shipped():
                break
            await self._pick_what_is_reserved()
            ready = [s.id for s in self._view.shipments if s.status == "ready"]
            progress = self._progress()
            await self._wait(
                OrderStatus.READY_TO_SHIP if ready else OrderStatus.IN_PRODUCTION,
                f"dispatch of {', '.join(ready)}" if ready else "goods for the backorder",
                lambda progress=progress: self._progress() != progress,  # type: ignore[misc]
            )
        if self._short_closed:
            await self._withdraw_pick_lists("short-closed")

    async def _pick_what_is_reserved(self) -> None:
        """One pick list at a time, for everything reserved and not yet shipped.

        A pick list asking for more than is now reserved (an amendment cut the line) is
        withdrawn and made anew: it must never ship more than the order holds.
        """
        if self._short_closed:
            return
        ready = [s for s in self._view.shipments if s.status == "ready"]
        if ready and self._exceeds_reservations(ready) and workflow.patched(PICK_LIST_PATCH):
            await self._withdraw_pick_lists("the order's lines changed")
        elif ready:
            return
        lines = [
            ShipmentLineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.reserved_quantity)
            for ln in self._view.lines
            if ln.reserved_quantity > 0
        ]
        if not lines:
            return
        backorder = sum(line.backordered_quantity for line in self._view.lines)
        await self._create_pick_list(lines, f"{backorder} backordered")

    def _exceeds_reservations(self, shipments: list[ShipmentView]) -> bool:
        reserved = {line.line_no: line.reserved_quantity for line in self._view.lines}
        return any(
            line.quantity > reserved.get(line.line_no, 0)
            for shipment in shipments
            for line in shipment.lines
        )

    async def _invoice_dispatched(self) -> None:
        """Credit terms: each dispatched shipment gets its invoice, then its deadlines."""
        prepaid = self._view.payment_terms == "prepaid"
        for shipment in self._view.shipments:
            if shipment.status not in ("dispatched", "delivered") or shipment.id in self._invoiced:
                continue
            self._invoiced.add(shipment.id)
            deadlines = [
                DeadlineRequest(
                    sla=Sla.DELIVERY,
                    key=shipment.id,
                    start=shipment.dispatched_at or workflow.now(),
                    due_date=self._view.requested_delivery_date,
                )
            ]
            if not prepaid:
                prices = {line.line_no: line.unit_price for line in self._view.lines}
                amount = sum((prices[sl.line_no] * sl.quantity for sl in shipment.lines), Money(0))
                invoice = await self._issue_invoice(
                    seq=len(self._view.invoices) + 1, amount=round_money(amount)
                )
                deadlines.append(
                    DeadlineRequest(
                        sla=Sla.INVOICE_PAYMENT,
                        key=invoice.id,
                        start=invoice.issued_at,
                        due_date=invoice.due_date,
                    )
                )
            await self._arm(*deadlines)

    async def _prepaid_invoice(self) -> None:
        live = [i for i in self._view.invoices if i.status in ("issued", "paid")]
        if live and live[-1].amount == self._view.total:
            return
        if live:  # amended before any payment: the invoice is replaced
            await self._compensate_invoices([i.id for i in live], "amended")
        invoice = await self._issue_invoice(seq=len(self._view.invoices) + 1)
        await self._arm(DeadlineRequest(sla=Sla.PREPAID_PAYMENT, start=invoice.issued_at))

    async def _validate(self) -> ValidateOrderResult:
        return await self._act(
            ActivityName.VALIDATE_ORDER,
            ValidateOrderInput(
                order_no=self._view.order_no,
                request=self._request,
                audit_id=str(workflow.uuid4()),
                at=workflow.now(),
            ),
            ValidateOrderResult,
        )

    async def _refuse_entry(
        self, validation: ValidateOrderResult, caller: Caller | None
    ) -> OrderView:
        """Not a live order: answer the submitter, then fail so the number can be reused."""
        self._view.problems = validation.problems
        self._set_status(OrderStatus.INVALID, "entry_refused", self._request.entered_by, caller)
        self._publish_search_attributes()
        self._stable_seq = self._seq
        await workflow.wait_condition(workflow.all_handlers_finished)
        raise ApplicationError(
            f"Order {self._view.order_no} failed entry validation",
            [p.model_dump() for p in validation.problems],
            type=Refusal.ORDER_INVALID,
            non_retryable=True,
        )

    async def _reserve_stock(self) -> None:
        self._stock_reserved = True
        result = await self._act(
            ActivityName.RESERVE_STOCK,
            ReserveStockInput(
                order_no=self._view.order_no,
                lines=[
                    StockLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity)
                    for ln in self._view.lines
                ],
                at=workflow.now(),
            ),
            ReserveStockResult,
        )
        for reserved in result.lines:
            self._line(reserved.line_no).reserved_quantity = reserved.reserved_quantity
        short = sum(r.short_quantity for r in result.lines)
        self._record(
            "stock_reserved", "system", f"{short} unit(s) short" if short else "all in stock"
        )

    async def _produce_shortages(self, *, wait: bool = True) -> None:
        """A production order per short line; after an amendment, ones that no longer fit are
        cancelled and replaced."""
        needs = {
            line.line_no: line.quantity - line.reserved_quantity
            for line in self._view.lines
            if line.reserved_quantity < line.quantity
        }
        planned = [po for po in self._view.production_orders if po.status == "planned"]
        kept = {
            po.line_no
            for po in planned
            if needs.get(po.line_no) == po.quantity - po.produced_quantity
        }
        stale = [po.id for po in planned if po.line_no not in kept]
        if stale:
            done = await self._act(
                ActivityName.CANCEL_PRODUCTION_ORDERS,
                CompensateInput(
                    order_no=self._view.order_no, at=workflow.now(), reason="amended", ids=stale
                ),
                CompensateResult,
            )
            for po in self._view.production_orders:
                if po.id in done.ids:
                    po.status = ProductionOrderStatus.CANCELLED
                    self._book.drop(Sla.PRODUCTION.value, po.id)
            self._record("production_orders_replaced", "system", ", ".join(done.ids))
        shortages = [
            Shortage(
                line_no=line.line_no,
                sku=line.sku,
                quantity=needs[line.line_no],
                lead_time_days=self._lead_times.get(line.line_no, 0),
            )
            for line in self._view.lines
            if line.line_no in needs and line.line_no not in kept
        ]
        if shortages:
            result = await self._act(
                ActivityName.PLAN_PRODUCTION,
                PlanProductionInput(
                    order_no=self._view.order_no,
                    shortages=shortages,
                    at=workflow.now(),
                    revision=self._view.revision,
                ),
                PlanProductionResult,
            )
            self._view.production_orders += result.production_orders
            ids = ", ".join(po.id for po in result.production_orders)
            self._record("production_ordered", "system", ids)
            await self._arm(
                *(
                    DeadlineRequest(
                        sla=Sla.PRODUCTION, key=po.id, start=po.created_at, due_date=po.due_date
                    )
                    for po in result.production_orders
                )
            )
        if needs and wait:
            open_ids = ", ".join(
                po.id for po in self._view.production_orders if po.status == "planned"
            )
            await self._wait(
                OrderStatus.IN_PRODUCTION, f"production orders {open_ids}", self._all_reserved
            )

    async def _ship(self) -> None:
        """The pick list for the order's lines; replaced when an amendment changed them."""
        wanted = [
            ShipmentLineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity)
            for ln in self._view.lines
        ]
        ready = [s for s in self._view.shipments if s.status == "ready"]
        shipment = ready[0] if ready and ready[0].lines == wanted else None
        if shipment is None:
            await self._withdraw_pick_lists("the order's lines changed")
            shipment = await self._create_pick_list(wanted)
        await self._wait(
            OrderStatus.READY_TO_SHIP, f"dispatch of shipment {shipment.id}", self._dispatched
        )

    async def _create_pick_list(
        self, lines: list[ShipmentLineView], note: str | None = None
    ) -> ShipmentView:
        """A shipment and its pick list (拣货单) for these lines."""
        shipment = await self._act(
            ActivityName.CREATE_SHIPMENT,
            CreateShipmentInput(
                order_no=self._view.order_no,
                lines=lines,
                at=workflow.now(),
                seq=len(self._view.shipments) + 1,
            ),
            ShipmentView,
        )
        self._view.shipments.append(shipment)
        self._record("shipment_created", "system", "; ".join(filter(None, [shipment.id, note])))
        return shipment

    async def _issue_invoice(self, seq: int = 1, amount: Money | None = None) -> InvoiceView:
        invoice = await self._act(
            ActivityName.ISSUE_INVOICE,
            IssueInvoiceInput(
                order_no=self._view.order_no,
                customer_id=self._view.customer_id,
                amount=self._view.total if amount is None else amount,
                payment_terms=self._view.payment_terms or "prepaid",
                at=workflow.now(),
                seq=seq,
            ),
            InvoiceView,
        )
        self._view.invoices.append(invoice)
        self._record(
            "invoice_issued", "system", f"{invoice.id}: {invoice.amount} due {invoice.due_date}"
        )
        return invoice
