"""The order's steps in the world: each runs one activity and writes its outcome into the
order's state (view and timeline). Which step runs when is the workflow's decision
(workflows/order.py); compensations are in workflows/saga.py.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import (
        ActivityName,
        CreateShipmentInput,
        DeliverInput,
        DeliverShipmentInput,
        DispatchInput,
        DispatchShipmentInput,
        HoldInput,
        IssueInvoiceInput,
        PlanProductionInput,
        PlanProductionResult,
        RecordProductionInput,
        RecordProductionResult,
        ReportProductionInput,
        ReserveStockInput,
        ReserveStockResult,
        SaveOrderViewInput,
        Shortage,
        StockLine,
        ValidateOrderInput,
        ValidateOrderResult,
    )
    from domain.money import Money
    from domain.orders import (
        Caller,
        HoldView,
        InvoiceView,
        OrderRequest,
        OrderView,
        ProductionOrderView,
        ShipmentLineView,
        ShipmentView,
        status_label,
    )
    from domain.statuses import OrderStatus
    from workflows import rules
    from workflows import search_attributes as sa
    from workflows.act import act
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

R = TypeVar("R")

# A refused entry completes its run (status INVALID) instead of failing it: a typo is a
# business outcome, not a red failure on ops' screen. The API keeps the number free.
ENTRY_REFUSED_PATCH = "entry-refused-completes"
# Who cancels when ops ask Temporal to (the UI's "Request Cancellation"), and why.
TEMPORAL_ACTOR = "temporal"
TEMPORAL_CANCEL_REASON = "cancelled_in_temporal"


async def validate(state: OrderState, request: OrderRequest) -> ValidateOrderResult:
    """Entry validation and pricing of this content (a new order's, or an amendment's)."""
    return await act(
        ActivityName.VALIDATE_ORDER,
        ValidateOrderInput(
            order_no=state.view.order_no,
            request=request,
            audit_id=str(workflow.uuid4()),
            at=workflow.now(),
        ),
        ValidateOrderResult,
    )


async def refuse_entry(
    state: OrderState,
    deadlines: DeadlineLadder,
    validation: ValidateOrderResult,
    caller: Caller | None,
) -> OrderView:
    """Not a live order: answer the submitter, then end the run with the refused view (no
    read-model row, so the API lets the number be used again). Orders started before the
    patch failed their run."""
    state.view.problems = validation.problems
    state.set_status(OrderStatus.INVALID, "entry_refused", state.request.entered_by, caller)
    state.published = sa.publish(state.view, state.published, deadlines=deadlines.enabled)
    state.stable_seq = state.seq
    await workflow.wait_condition(workflow.all_handlers_finished)
    if workflow.patched(ENTRY_REFUSED_PATCH):
        return state.view
    raise ApplicationError(
        f"Order {state.view.order_no} failed entry validation",
        [p.model_dump() for p in validation.problems],
        type=Refusal.ORDER_INVALID,
        non_retryable=True,
    )


def cancel_from_temporal(state: OrderState, reason: str | None) -> None:
    """A cancellation requested in Temporal, as POST /cancel would run it: by "temporal",
    the request's reason as comment. Refused, and recorded so, once goods have shipped or
    the order is closing (as the API refuses it); nothing to do if one is under way, or for
    a refused entry (not an order)."""
    view = state.view
    if view.closed or view.cancellation is not None or view.status is OrderStatus.INVALID:
        return
    try:
        rules.check_cancellable(state.view, state.closing)
    except ApplicationError as refusal:
        detail = "; ".join(filter(None, [reason, refusal.message]))
        state.record("cancellation_refused", TEMPORAL_ACTOR, detail, outcome="refused:409")
        return
    state.request_cancel(TEMPORAL_CANCEL_REASON, TEMPORAL_ACTOR, reason)


async def reserve_stock(state: OrderState) -> None:
    """Reserve each line's quantity (reconciled to the order's current lines)."""
    state.stock_reserved = True
    view = state.view
    result = await act(
        ActivityName.RESERVE_STOCK,
        ReserveStockInput(
            order_no=view.order_no,
            lines=[
                StockLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity) for ln in view.lines
            ],
            at=workflow.now(),
        ),
        ReserveStockResult,
    )
    for reserved in result.lines:
        state.line(reserved.line_no).reserved_quantity = reserved.reserved_quantity
    short = sum(r.short_quantity for r in result.lines)
    state.record("stock_reserved", "system", f"{short} unit(s) short" if short else "all in stock")


async def plan_production(
    state: OrderState, shortages: list[Shortage]
) -> list[ProductionOrderView]:
    """A production order per shortage; returns the new ones."""
    view = state.view
    result = await act(
        ActivityName.PLAN_PRODUCTION,
        PlanProductionInput(
            order_no=view.order_no, shortages=shortages, at=workflow.now(), revision=view.revision
        ),
        PlanProductionResult,
    )
    view.production_orders += result.production_orders
    state.record("production_ordered", "system", ", ".join(p.id for p in result.production_orders))
    return result.production_orders


async def create_pick_list(
    state: OrderState, lines: list[ShipmentLineView], note: str | None = None
) -> ShipmentView:
    """A shipment and its pick list (拣货单) for these lines."""
    shipment = await act(
        ActivityName.CREATE_SHIPMENT,
        CreateShipmentInput(
            order_no=state.view.order_no,
            lines=lines,
            at=workflow.now(),
            seq=len(state.view.shipments) + 1,
        ),
        ShipmentView,
    )
    state.view.shipments.append(shipment)
    state.record("shipment_created", "system", "; ".join(filter(None, [shipment.id, note])))
    return shipment


async def issue_invoice(
    state: OrderState, seq: int = 1, amount: Money | None = None
) -> InvoiceView:
    """An invoice for `amount` (the order's total by default)."""
    view = state.view
    invoice = await act(
        ActivityName.ISSUE_INVOICE,
        IssueInvoiceInput(
            order_no=view.order_no,
            customer_id=view.customer_id,
            amount=view.total if amount is None else amount,
            payment_terms=view.payment_terms or "prepaid",
            at=workflow.now(),
            seq=seq,
        ),
        InvoiceView,
    )
    view.invoices.append(invoice)
    state.record(
        "invoice_issued", "system", f"{invoice.id}: {invoice.amount} due {invoice.due_date}"
    )
    return invoice


async def record_production(
    state: OrderState, po: ProductionOrderView, inp: ReportProductionInput
) -> ProductionOrderView:
    """Production reported on `po` (cumulative); what it made is reserved for its line."""
    produced = inp.produced_quantity or po.quantity
    result = await _act_on(
        state,
        po.id,
        ActivityName.RECORD_PRODUCTION,
        RecordProductionInput(
            order_no=state.view.order_no,
            production_order_id=po.id,
            produced_quantity=produced,
            at=workflow.now(),
        ),
        RecordProductionResult,
    )
    updated = result.production_order
    state.view.production_orders = [
        updated if p.id == po.id else p for p in state.view.production_orders
    ]
    line = state.line(po.line_no)
    line.produced_quantity = updated.produced_quantity
    line.reserved_quantity = result.line_reserved_quantity
    detail = f"{po.id}: {produced} of {po.quantity} produced"
    state.record("production_reported", inp.reported_by, detail, inp.caller)
    return updated


async def dispatch_shipment(
    state: OrderState, shipment: ShipmentView, inp: DispatchInput
) -> ShipmentView:
    """The shipment's goods left: what it carries is shipped, no longer reserved."""
    updated = await _act_on(
        state,
        shipment.id,
        ActivityName.DISPATCH_SHIPMENT,
        DispatchShipmentInput(
            order_no=state.view.order_no,
            shipment_id=shipment.id,
            carrier=inp.carrier,
            tracking_no=inp.tracking_no,
            at=workflow.now(),
        ),
        ShipmentView,
    )
    state.replace_shipment(updated)
    for line in updated.lines:
        state.line(line.line_no).shipped_quantity += line.quantity
        state.line(line.line_no).reserved_quantity -= line.quantity
    detail = f"{updated.id} via {inp.carrier} {inp.tracking_no}"
    state.record("shipment_dispatched", inp.dispatched_by, detail, inp.caller)
    return updated


async def deliver_shipment(
    state: OrderState, shipment: ShipmentView, inp: DeliverInput
) -> ShipmentView:
    """The customer signed for the shipment (签收)."""
    updated = await _act_on(
        state,
        shipment.id,
        ActivityName.DELIVER_SHIPMENT,
        DeliverShipmentInput(
            order_no=state.view.order_no,
            shipment_id=shipment.id,
            signed_by=inp.signed_by,
            at=workflow.now(),
        ),
        ShipmentView,
    )
    state.replace_shipment(updated)
    for line in updated.lines:
        state.line(line.line_no).delivered_quantity += line.quantity
    state.record(
        "shipment_delivered",
        inp.reported_by or inp.signed_by,
        f"{updated.id} signed by {inp.signed_by}",
        inp.caller,
    )
    return updated


def hold(state: OrderState, deadlines: DeadlineLadder, inp: HoldInput) -> None:
    """冻结: the order stops where it is (to resume there) and its deadlines pause."""
    view, now = state.view, workflow.now()
    view.hold = HoldView(
        kind=inp.kind.value,
        reason=inp.reason,
        by=inp.by,
        at=now,
        resume_status=view.status.value,
    )
    view.status = OrderStatus.ON_HOLD
    view.status_label = status_label(OrderStatus.ON_HOLD)
    deadlines.pause(now)
    state.record("order_held", inp.by, f"{inp.kind.value}: {inp.reason}", inp.caller)


async def checkpoint(state: OrderState, deadlines: DeadlineLadder) -> None:
    """Save the view, audit entries and escalations, publish search attributes: the order is
    stable up to here."""
    state.published = sa.publish(state.view, state.published, deadlines=deadlines.enabled)
    if state.seq != state.saved_seq:
        seq, audit = state.seq, state.audit
        state.audit = []
        escalations, resolutions = deadlines.take_log()
        await act(
            ActivityName.SAVE_ORDER_VIEW,
            SaveOrderViewInput(
                view=state.view,
                seq=seq,
                fingerprint=state.fingerprint,
                audit=audit,
                escalations=escalations,
                resolutions=resolutions,
            ),
            type(None),
        )
        state.saved_seq = seq
    state.stable_seq = state.saved_seq


async def _act_on(
    state: OrderState, item: str, name: str, arg: BaseModel, result_type: type[R]
) -> R:
    """Run an activity on one shipment or production order, which other commands see
    as busy meanwhile."""
    state.busy.add(item)
    try:
        return await act(name, arg, result_type)
    finally:
        state.busy.discard(item)
