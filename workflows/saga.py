"""The order saga's compensations: each undoes one kind of step and records that it did.

Each is an idempotent activity retried until it succeeds; a worker lost half-way resumes
from the history and repeats nothing already recorded. Functions of the order's state, so
cancellation, rejection, amendment and short-closing undo things the same way.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import (
        ActivityName,
        CancelInvoicesResult,
        CompensateInput,
        CompensateResult,
        RefundPaymentsResult,
    )
    from domain.statuses import (
        LIVE_INVOICES,
        OPEN_PRODUCTION,
        InvoiceStatus,
        ProductionOrderStatus,
        ShipmentStatus,
    )
    from workflows.act import act
    from workflows.order_state import OrderState


async def undo(state: OrderState, reason: str) -> None:
    """Undo every step done, in reverse order, each exactly once."""
    view = state.view
    undo = CompensateInput(order_no=view.order_no, at=workflow.now(), reason=reason)
    if state.ready_shipments():
        done = await act(ActivityName.CANCEL_SHIPMENTS, undo, CompensateResult)
        _mark_shipments(state, done.ids)
        state.record("shipments_cancelled", "system", ", ".join(done.ids) or None)
    if any(po.status in OPEN_PRODUCTION for po in view.production_orders):
        done = await act(ActivityName.CANCEL_PRODUCTION_ORDERS, undo, CompensateResult)
        _mark_production_orders(state, done.ids)
        state.record("production_orders_cancelled", "system", ", ".join(done.ids) or None)
    if view.payments:
        refunded = await act(ActivityName.REFUND_PAYMENTS, undo, RefundPaymentsResult)
        view.refunds = refunded.refunds
        state.record(
            "payments_refunded",
            "finance",
            ", ".join(f"{r.id}: {r.amount}" for r in refunded.refunds) or None,
        )
    if any(invoice.status in LIVE_INVOICES for invoice in view.invoices):
        await compensate_invoices(state, None, reason)
    if state.stock_reserved or any(line.reserved_quantity for line in view.lines):
        released = await release_reservations(state, undo)
        state.record("reservations_released", "system", ", ".join(released) or None)


async def withdraw_pick_lists(state: OrderState, reason: str) -> list[str]:
    """Open pick lists (shipments not yet left) are withdrawn; returns their ids."""
    ready = [s.id for s in state.ready_shipments()]
    if not ready:
        return []
    done = await act(
        ActivityName.CANCEL_SHIPMENTS,
        CompensateInput(order_no=state.view.order_no, at=workflow.now(), reason=reason, ids=ready),
        CompensateResult,
    )
    _mark_shipments(state, done.ids)
    state.record("pick_list_withdrawn", "system", f"{', '.join(done.ids)}: {reason}")
    return done.ids


async def cancel_production_orders(state: OrderState, ids: list[str], reason: str) -> list[str]:
    """These planned production orders are cancelled; returns those that were."""
    done = await act(
        ActivityName.CANCEL_PRODUCTION_ORDERS,
        CompensateInput(order_no=state.view.order_no, at=workflow.now(), reason=reason, ids=ids),
        CompensateResult,
    )
    _mark_production_orders(state, done.ids)
    return done.ids


async def release_reservations(state: OrderState, inp: CompensateInput) -> list[str]:
    """Every reservation of the order goes back to stock; returns the released ones."""
    done = await act(ActivityName.RELEASE_RESERVATIONS, inp, CompensateResult)
    for line in state.view.lines:
        line.reserved_quantity = 0
    return done.ids


async def compensate_invoices(state: OrderState, ids: list[str] | None, reason: str) -> None:
    """Void unpaid invoices (those in `ids`, or all), credit the paid ones."""
    view = state.view
    cancelled = await act(
        ActivityName.CANCEL_INVOICES,
        CompensateInput(order_no=view.order_no, at=workflow.now(), reason=reason, ids=ids),
        CancelInvoicesResult,
    )
    credited = {note.invoice_id for note in cancelled.credit_notes}
    for invoice in view.invoices:
        if invoice.id in cancelled.voided:
            invoice.status = InvoiceStatus.VOID
        elif invoice.id in credited:
            invoice.status = InvoiceStatus.CREDITED
    view.credit_notes += [
        n for n in cancelled.credit_notes if n.id not in {c.id for c in view.credit_notes}
    ]
    state.record(
        "invoices_cancelled",
        "finance",
        ", ".join([*cancelled.voided, *(n.id for n in cancelled.credit_notes)]) or None,
    )


def _mark_shipments(state: OrderState, ids: list[str]) -> None:
    for shipment in state.view.shipments:
        if shipment.id in ids:
            shipment.status = ShipmentStatus.CANCELLED


def _mark_production_orders(state: OrderState, ids: list[str]) -> None:
    for po in state.view.production_orders:
        if po.id in ids:
            po.status = ProductionOrderStatus.CANCELLED
