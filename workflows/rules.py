"""The rules behind the order workflow's update validators: who may do what, and when.

Pure functions of the order's state, so a validator and its handler apply the same rule.
Each refusal is an ApplicationError whose `type` the API maps to an HTTP status.
"""

from __future__ import annotations

from datetime import date

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import PaymentInput, ReportProductionInput
    from domain.orders import (
        AmendOrderInput,
        InvoiceView,
        OrderView,
        ProductionOrderView,
        ShipmentView,
        delivery_date_problem,
    )
    from domain.statuses import (
        GONE_SHIPMENTS,
        OPEN_PRODUCTION,
        InvoiceStatus,
        OrderStatus,
        ShipmentStatus,
    )

LEVEL_NAMES = {1: "level 1 (supervisor)", 2: "level 2 (manager)"}
# In the busy set while an amendment is decided and until the run has reconciled the pick
# list with it: nothing may be dispatched from a pick list that is about to change.
AMENDING = "order:amending"


def check_decision(view: OrderView, approver: str, role: str, role_level: int) -> None:
    """Who may decide now: the awaited level or higher, never the order's own author, and a
    different person at each level (separation of duties)."""
    awaiting = view.approval.awaiting_level
    if view.status is not OrderStatus.PENDING_APPROVAL or awaiting is None:
        raise ApplicationError(
            f"Order {view.order_no} is {view.status}, not awaiting an approval decision",
            type=Refusal.INVALID_STATE,
        )
    if role_level < awaiting:
        raise ApplicationError(
            f"The order awaits a {LEVEL_NAMES[awaiting]} decision; role {role} cannot decide it",
            type=Refusal.FORBIDDEN,
        )
    who = approver.casefold()
    if who == view.entered_by.casefold():
        raise ApplicationError(
            f"{approver} entered this order and cannot decide on it (separation of duties)",
            type=Refusal.FORBIDDEN,
        )
    if any(d.approver.casefold() == who for d in view.approvals):
        raise ApplicationError(
            f"{approver} already decided at an earlier level; the next level needs another person",
            type=Refusal.FORBIDDEN,
        )


def check_open(view: OrderView, *, on_hold_too: bool = False) -> None:
    """Nothing moves an order that is being cancelled or has ended, nor one on hold."""
    if view.closed or view.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED):
        raise ApplicationError(
            f"Order {view.order_no} is {view.status}; it accepts no more commands",
            type=Refusal.INVALID_STATE,
        )
    if view.hold is not None and not on_hold_too:
        raise ApplicationError(
            f"Order {view.order_no} is on hold ({view.hold.reason}); release it first",
            type=Refusal.INVALID_STATE,
        )


def check_amendable(view: OrderView, inp: AmendOrderInput, closing: bool, today: date) -> None:
    """What may still change, and until when (修改)."""
    check_open(view)
    if closing:
        raise ApplicationError(f"Order {view.order_no} is closing", type=Refusal.INVALID_STATE)
    changed = inp.changed_fields()
    if not changed:
        raise ApplicationError(
            "Nothing to change: send lines, requested_delivery_date or shipping_address",
            type=Refusal.INVALID,
        )
    shipped = [s.id for s in view.shipments if s.status in GONE_SHIPMENTS]
    if shipped and changed & {"lines", "shipping_address"}:
        raise ApplicationError(
            f"Goods of order {view.order_no} have shipped ({', '.join(shipped)}): its lines and "
            f"address can no longer change. Request a return: POST /orders/{view.order_no}/returns",
            type=Refusal.INVALID_STATE,
        )
    if "lines" in changed and view.payments:
        raise ApplicationError(
            f"Order {view.order_no} has payments: its lines cannot change. Cancel it (the "
            "payments are refunded) and enter a new order",
            type=Refusal.INVALID_STATE,
        )
    if "requested_delivery_date" in changed:
        if view.shipments and all(s.status == ShipmentStatus.DELIVERED for s in view.shipments):
            raise ApplicationError(
                f"Order {view.order_no} has been delivered", type=Refusal.INVALID_STATE
            )
        wrong = inp.requested_delivery_date and delivery_date_problem(
            inp.requested_delivery_date, today
        )
        if wrong:
            raise ApplicationError(
                f"Requested delivery date {inp.requested_delivery_date} {wrong}",
                [{"field": "requested_delivery_date", "message": wrong}],
                type=Refusal.INVALID,
            )


def check_short_close(view: OrderView, closing: bool) -> None:
    """Short-closing ends a backorder: something shipped, something still to ship."""
    check_open(view)
    if closing:
        raise ApplicationError(f"Order {view.order_no} is closing", type=Refusal.INVALID_STATE)
    if not any(s.status in GONE_SHIPMENTS for s in view.shipments):
        raise ApplicationError(
            f"Nothing of order {view.order_no} has shipped yet: cancel it instead",
            type=Refusal.INVALID_STATE,
        )
    if all(line.to_ship <= 0 for line in view.lines):
        raise ApplicationError(
            f"Everything of order {view.order_no} has shipped; nothing is left to close",
            type=Refusal.INVALID_STATE,
        )


def check_holdable(view: OrderView, closing: bool) -> None:
    check_open(view)
    if closing:
        raise ApplicationError(
            f"Order {view.order_no} is closing; it can no longer be put on hold",
            type=Refusal.INVALID_STATE,
        )


def check_confirmable(view: OrderView) -> None:
    """The customer's written confirmation is taken only while the order waits for it."""
    written = view.written_confirmation
    if (
        view.status is not OrderStatus.AWAITING_CONFIRMATION
        or written is None
        or written.document_reference is not None
    ):
        raise ApplicationError(
            f"Order {view.order_no} is {view.status}, not awaiting the customer's written "
            "confirmation",
            type=Refusal.INVALID_STATE,
        )


def check_releasable(view: OrderView) -> None:
    if view.hold is None:
        raise ApplicationError(f"Order {view.order_no} is not on hold", type=Refusal.INVALID_STATE)


def check_cancellable(view: OrderView, closing: bool) -> None:
    """An order can be cancelled until goods ship; after that it is a return."""
    if view.closed or closing:
        raise ApplicationError(
            f"Order {view.order_no} is {view.status} and closing; it can no longer be cancelled",
            type=Refusal.INVALID_STATE,
        )
    shipped = [s.id for s in view.shipments if s.status in GONE_SHIPMENTS]
    if shipped:
        raise ApplicationError(
            f"Goods of order {view.order_no} have shipped ({', '.join(shipped)}); it can no "
            f"longer be cancelled. Request a return instead: POST /orders/{view.order_no}/returns",
            type=Refusal.INVALID_STATE,
        )


def check_production(
    view: OrderView, busy: set[str], inp: ReportProductionInput
) -> ProductionOrderView:
    """A report on an open (planned or partially completed) production order of this order;
    reports are cumulative."""
    check_open(view)
    po = next((p for p in view.production_orders if p.id == inp.production_order_id), None)
    if po is None:
        raise ApplicationError(
            f"Production order {inp.production_order_id} is not part of order {view.order_no}",
            type=Refusal.NOT_FOUND,
        )
    if po.id in busy:
        raise ApplicationError(
            f"Production order {po.id} is being updated by another request; try again",
            type=Refusal.INVALID_STATE,
        )
    if po.status not in OPEN_PRODUCTION or view.closed:
        raise ApplicationError(
            f"Production order {po.id} is already {po.status}", type=Refusal.INVALID_STATE
        )
    produced = inp.produced_quantity or po.quantity
    if produced < po.produced_quantity:
        raise ApplicationError(
            f"{po.id} already reported {po.produced_quantity} produced; reports are cumulative",
            type=Refusal.INVALID,
        )
    return po


def check_shipment(
    view: OrderView,
    busy: set[str],
    shipment_id: str,
    expected: ShipmentStatus,
    verb: ShipmentStatus,
) -> ShipmentView:
    """A shipment of this order in the state the command needs."""
    check_open(view)
    shipment = next((s for s in view.shipments if s.id == shipment_id), None)
    if shipment is None:
        raise ApplicationError(
            f"Shipment {shipment_id} is not part of order {view.order_no}",
            type=Refusal.NOT_FOUND,
        )
    if shipment.id in busy:
        raise ApplicationError(
            f"Shipment {shipment_id} is being updated by another request; try again",
            type=Refusal.INVALID_STATE,
        )
    if verb is ShipmentStatus.DISPATCHED and AMENDING in busy:
        raise ApplicationError(
            f"Order {view.order_no} is being amended; its pick list may change: try again",
            type=Refusal.INVALID_STATE,
        )
    if shipment.status != expected:
        raise ApplicationError(
            f"Shipment {shipment_id} is {shipment.status}; it cannot be {verb} now",
            type=Refusal.INVALID_STATE,
        )
    if verb is ShipmentStatus.DISPATCHED and view.status is not OrderStatus.READY_TO_SHIP:
        raise ApplicationError(
            f"Order {view.order_no} is {view.status}; its goods can leave once it is READY_TO_SHIP",
            type=Refusal.INVALID_STATE,
        )
    return shipment


def check_dispatch(
    view: OrderView, busy: set[str], shipment_id: str, *, amending: bool
) -> ShipmentView:
    """A ready shipment may leave, but not while an amendment may change its pick list."""
    busy = busy | {AMENDING} if amending else busy
    return check_shipment(view, busy, shipment_id, ShipmentStatus.READY, ShipmentStatus.DISPATCHED)


def check_delivery(view: OrderView, busy: set[str], shipment_id: str) -> ShipmentView:
    """A dispatched shipment may be signed for."""
    return check_shipment(
        view, busy, shipment_id, ShipmentStatus.DISPATCHED, ShipmentStatus.DELIVERED
    )


def check_payment(view: OrderView, inp: PaymentInput) -> InvoiceView:
    """The open invoice a payment goes to; never more than is outstanding."""
    check_open(view, on_hold_too=True)  # money is welcome even while the order is frozen
    invoice = next(
        (i for i in view.invoices if i.status == InvoiceStatus.ISSUED),
        None,
    )
    if invoice is None:
        state = "is fully paid" if view.invoices else "has no invoice yet"
        raise ApplicationError(
            f"Order {view.order_no} {state}; no payment is due",
            type=Refusal.INVALID_STATE,
        )
    outstanding = invoice.outstanding
    if inp.amount > outstanding:
        raise ApplicationError(
            f"Payment {inp.amount} exceeds the outstanding {outstanding} on {invoice.id}",
            type=Refusal.INVALID,
        )
    return invoice


def already_paid(view: OrderView, inp: PaymentInput) -> bool:
    """True when this payment (same reference, same amount) is recorded already.

    The same reference with another amount is a different payment claiming an existing
    reference: refused, so a typo never silently disappears.
    """
    recorded = next((p for p in view.payments if p.reference == inp.reference), None)
    if recorded is None:
        return False
    if recorded.amount != inp.amount:
        raise ApplicationError(
            f"Payment reference {inp.reference} was already recorded with amount {recorded.amount}",
            type=Refusal.CONFLICT,
        )
    return True
