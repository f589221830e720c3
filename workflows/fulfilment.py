"""Fulfilment (确认/执行): reserve, produce what is short, pick and invoice what leaves.

A helper object the order workflow holds, as it holds its deadline ladder. Each step
reconciles to the order's current content, so after an amendment the same steps release what
is no longer needed and do what is new. The workflow's own `wait` does every waiting, so a
cancellation or an amendment ends a wait here exactly as in the workflow's `run`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import CompensateInput, DeadlineRequest, Shortage, ShortCloseInput
    from domain.money import Money, round_money
    from domain.orders import DeliveryPolicy, OrderView, ShipmentLineView, ShipmentView
    from domain.policy import Sla
    from domain.statuses import (
        GONE_SHIPMENTS,
        LIVE_INVOICES,
        OPEN_PRODUCTION,
        OrderStatus,
    )
    from workflows import approval, confirmation, order_steps, payments, saga
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

# A partial order's pick list that an amendment left larger than the reservations is withdrawn.
PICK_LIST_PATCH = "partial-pick-list-follows-amendment"
# A prepaid order's short-closed backorder is credited and refunded.
SHORT_CLOSE_CREDIT_PATCH = "short-close-credits-prepaid"
# A new delivery date re-arms each shipment's delivery deadline under its own key.
REARM_PATCH = "rearm-delivery-by-key"

Wait = Callable[[OrderStatus, str, Callable[[], bool]], Awaitable[None]]


class Fulfilment:
    """How an approved order gets its goods out: whole (one shipment) or partially.

    Args:
        state: The order's state.
        deadlines: The order's deadline ladder (production, delivery, payment clocks).
        wait: The workflow's wait: sets the status, checkpoints, ends on cancel or amend.
        stop_if_cancelled: Ends the step at once if a cancellation came in meanwhile.
    """

    def __init__(
        self,
        state: OrderState,
        deadlines: DeadlineLadder,
        *,
        wait: Wait,
        stop_if_cancelled: Callable[[], None],
    ) -> None:
        self._state = state
        self._deadlines = deadlines
        self._wait = wait
        self._stop_if_cancelled = stop_if_cancelled

    async def whole(self) -> None:
        """Reserve, (prepaid: be paid), produce what is short, pick and wait for dispatch.

        Each step reconciles to the order's current content, so after an amendment the same
        steps release what is no longer needed and do what is new.
        """
        s = self._state
        await order_steps.reserve_stock(s)
        self._stop_if_cancelled()
        await self._confirm()
        if s.view.payment_terms == "prepaid":
            # 款到发货: invoiced at approval; production and shipping wait for the money.
            await self._prepaid_invoice()
            await self._wait(OrderStatus.AWAITING_PAYMENT, "payment of the invoice", s.paid)
        await self._produce_shortages()
        self._stop_if_cancelled()
        wanted = [
            ShipmentLineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity)
            for ln in s.view.lines
        ]
        ready = s.ready_shipments()
        shipment = ready[0] if ready and ready[0].lines == wanted else None
        if shipment is None:  # none yet, or an amendment changed the lines: a new pick list
            await saga.withdraw_pick_lists(s, "the order's lines changed")
            shipment = await order_steps.create_pick_list(s, wanted)
        await self._wait(
            OrderStatus.READY_TO_SHIP, f"dispatch of shipment {shipment.id}", s.dispatched
        )

    async def partially(self) -> None:
        """缺货, `partial` delivery: ship what is reserved now and backorder the rest; each
        shipment is invoiced when it leaves (credit terms) and has its own deadlines."""
        s = self._state
        await order_steps.reserve_stock(s)
        self._stop_if_cancelled()
        await self._confirm()
        if s.view.payment_terms == "prepaid":
            await self._prepaid_invoice()
            await self._wait(OrderStatus.AWAITING_PAYMENT, "payment of the invoice", s.paid)
        await self._produce_shortages(wait=False)
        self._stop_if_cancelled()
        while True:
            await self._invoice_dispatched()
            if s.all_shipped():
                break
            await self._pick_what_is_reserved()
            ready = [shipment.id for shipment in s.ready_shipments()]
            progress = s.progress()
            await self._wait(
                OrderStatus.READY_TO_SHIP if ready else OrderStatus.IN_PRODUCTION,
                f"dispatch of {', '.join(ready)}" if ready else "goods for the backorder",
                lambda progress=progress: s.progress() != progress,  # type: ignore[misc]
            )
        if s.short_closed:
            await saga.withdraw_pick_lists(s, "short-closed")

    async def _confirm(self) -> None:
        """确认: the promise, the first time; re-promised after an amendment. A requested date
        the policy wants approved sends the order back to approval (as an amendment would)."""
        s = self._state
        promise = s.view.promise
        reason = (
            "confirmation"
            if promise is None
            else "amendment"
            if promise.revision != s.view.revision
            else "approval came back"
        )
        outcome = await confirmation.confirm(s, self._deadlines, reason)
        if outcome.back_to_approval:
            s.amended = True  # the wait ends at once: `run` starts over at approval
            waiting_for = approval.waiting_for(s.view)
            await self._wait(OrderStatus.PENDING_APPROVAL, waiting_for, lambda: False)
        why = outcome.written_confirmation
        if why and await confirmation.require_written(s, self._deadlines, why):
            await self._wait(
                OrderStatus.AWAITING_CONFIRMATION,
                "the customer's written confirmation (书面确认)",
                lambda: confirmation.written_confirmed(s),
            )

    async def _pick_what_is_reserved(self) -> None:
        """One pick list at a time, for everything reserved and not yet shipped.

        A pick list asking for more than is now reserved (an amendment cut the line) is
        withdrawn and made anew: it must never ship more than the order holds.
        """
        s = self._state
        if s.short_closed:
            return
        ready = s.ready_shipments()
        if ready and _exceeds_reservations(s, ready) and workflow.patched(PICK_LIST_PATCH):
            await saga.withdraw_pick_lists(s, "the order's lines changed")
        elif ready:
            return
        lines = [
            ShipmentLineView(line_no=ln.line_no, sku=ln.sku, quantity=ln.reserved_quantity)
            for ln in s.view.lines
            if ln.reserved_quantity > 0
        ]
        if lines:
            backorder = sum(line.backordered_quantity for line in s.view.lines)
            await order_steps.create_pick_list(s, lines, f"{backorder} backordered")

    async def _invoice_dispatched(self) -> None:
        """Each dispatched shipment gets its delivery deadline and (credit terms) its invoice."""
        s, view = self._state, self._state.view
        for shipment in view.shipments:
            if shipment.status not in GONE_SHIPMENTS or shipment.id in s.invoiced:
                continue
            s.invoiced.add(shipment.id)
            deadlines = [
                DeadlineRequest(
                    sla=Sla.DELIVERY,
                    key=shipment.id,
                    start=shipment.dispatched_at or workflow.now(),
                    due_date=delivery_due(view),
                )
            ]
            if view.payment_terms != "prepaid":
                prices = {line.line_no: line.unit_price for line in view.lines}
                amount = sum((prices[sl.line_no] * sl.quantity for sl in shipment.lines), Money(0))
                invoice = await order_steps.issue_invoice(
                    s, seq=len(view.invoices) + 1, amount=round_money(amount)
                )
                deadlines.append(
                    DeadlineRequest(
                        sla=Sla.INVOICE_PAYMENT,
                        key=invoice.id,
                        start=invoice.issued_at,
                        due_date=invoice.due_date,
                    )
                )
            await self._deadlines.arm(*deadlines)

    async def _prepaid_invoice(self) -> None:
        """款到发货: one invoice for the total; an amendment before payment replaces it."""
        s = self._state
        live = [i for i in s.view.invoices if i.status in LIVE_INVOICES]
        if live and live[-1].amount == s.view.total:
            return
        if live:
            await saga.compensate_invoices(s, [i.id for i in live], "amended")
        invoice = await order_steps.issue_invoice(s, seq=len(s.view.invoices) + 1)
        await self._deadlines.arm(DeadlineRequest(sla=Sla.PREPAID_PAYMENT, start=invoice.issued_at))

    async def _produce_shortages(self, *, wait: bool = True) -> None:
        """A production order per short line; after an amendment, ones that no longer fit are
        cancelled and replaced."""
        s, view = self._state, self._state.view
        needs = {
            line.line_no: line.quantity - line.reserved_quantity
            for line in view.lines
            if line.reserved_quantity < line.quantity
        }
        planned = [po for po in view.production_orders if po.status in OPEN_PRODUCTION]
        kept = {
            po.line_no
            for po in planned
            if needs.get(po.line_no) == po.quantity - po.produced_quantity
        }
        stale = [po.id for po in planned if po.line_no not in kept]
        if stale:
            done = await saga.cancel_production_orders(s, stale, "amended")
            for po_id in done:
                self._deadlines.drop(Sla.PRODUCTION, po_id)
            s.record("production_orders_replaced", "system", ", ".join(done))
        shortages = [
            Shortage(
                line_no=line.line_no,
                sku=line.sku,
                quantity=needs[line.line_no],
                lead_time_days=s.lead_times.get(line.line_no, 0),
            )
            for line in view.lines
            if line.line_no in needs and line.line_no not in kept
        ]
        if shortages:
            ordered = await order_steps.plan_production(s, shortages)
            await self._deadlines.arm(
                *(
                    DeadlineRequest(
                        sla=Sla.PRODUCTION, key=po.id, start=po.created_at, due_date=po.due_date
                    )
                    for po in ordered
                )
            )
        if needs and wait:
            open_ids = ", ".join(
                po.id for po in view.production_orders if po.status in OPEN_PRODUCTION
            )
            await self._wait(
                OrderStatus.IN_PRODUCTION, f"production orders {open_ids}", s.all_reserved
            )

    async def invoice_and_chase(self) -> None:
        """Goods left: the order is invoiced if it is not yet (credit terms, whole delivery)
        and its delivery and payment deadlines start (partial: armed per shipment)."""
        s, view = self._state, self._state.view
        deadlines = (
            []
            if view.delivery_policy is DeliveryPolicy.PARTIAL
            else [
                DeadlineRequest(sla=Sla.DELIVERY, start=workflow.now(), due_date=delivery_due(view))
            ]
        )
        if not view.invoices:
            invoice = await order_steps.issue_invoice(s)
            deadlines.append(
                DeadlineRequest(
                    sla=Sla.INVOICE_PAYMENT, start=invoice.issued_at, due_date=invoice.due_date
                )
            )
        await self._deadlines.arm(*deadlines)

    async def short_close(self, inp: ShortCloseInput) -> None:
        """What has not shipped will not: pick lists withdrawn, production cancelled, stock
        released; the order goes on with what was shipped (a prepaid one gets the rest back)."""
        s, view = self._state, self._state.view
        s.short_closed = True
        await saga.withdraw_pick_lists(s, "short-closed")
        planned = [po.id for po in view.production_orders if po.status in OPEN_PRODUCTION]
        if planned:
            for po_id in await saga.cancel_production_orders(s, planned, "short-closed"):
                self._deadlines.drop(Sla.PRODUCTION, po_id)
        await saga.release_reservations(
            s, CompensateInput(order_no=view.order_no, at=workflow.now(), reason="short-closed")
        )
        closed, value = [], Money(0)
        for line in view.lines:
            if line.to_ship > 0:
                closed.append(f"{line.sku} {line.to_ship}")
                value += line.unit_price * line.to_ship
                line.short_closed_quantity += line.to_ship
        self._deadlines.meet(Sla.DISPATCH)
        s.record("short_closed", inp.by, f"{', '.join(closed)}: {inp.reason}", inp.caller)
        prepaid = view.payment_terms == "prepaid"  # invoiced in full up front
        if prepaid and value > 0 and workflow.patched(SHORT_CLOSE_CREDIT_PATCH):
            await payments.credit_short_closed(s, round_money(value), inp.reason)

    async def rearm_delivery(self) -> None:
        """A new requested delivery date moves every open delivery deadline: the order's, or
        (partial delivery) each dispatched shipment's, under its own key."""
        view = self._state.view
        open_ = [d for d in view.deadlines if d.sla == Sla.DELIVERY and d.open]
        if not open_:
            return
        if any(d.key != "order" for d in open_) and workflow.patched(REARM_PATCH):
            keyed = [(d.key, d.started_at) for d in open_]
        else:  # before the patch: the first one, re-armed as the order's
            keyed = [("order", open_[0].started_at)]
        await self._deadlines.arm(
            *(
                DeadlineRequest(sla=Sla.DELIVERY, key=key, start=start, due_date=delivery_due(view))
                for key, start in keyed
            )
        )


def delivery_due(view: OrderView) -> date | None:
    """The delivery deadline's date: the promised date (what the customer was told), or the
    requested one when the customer asked for a later day (the goods are due then, not
    earlier); the requested date alone for orders confirmed before promises existed."""
    requested = view.requested_delivery_date
    if view.promise is None:
        return requested
    return max(view.promise.promised_date, requested or view.promise.promised_date)


def _exceeds_reservations(state: OrderState, shipments: list[ShipmentView]) -> bool:
    """A pick list asks for more of a line than is reserved for it."""
    reserved = {line.line_no: line.reserved_quantity for line in state.view.lines}
    return any(
        line.quantity > reserved.get(line.line_no, 0)
        for shipment in shipments
        for line in shipment.lines
    )
