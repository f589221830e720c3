"""Repairing an order whose workflow run was ended from outside (terminated, timed out,
failed): no code of the order ran at its end, so its saga never did. The repair undoes, from
the database's own records, what the saga would have undone, closes the order's read-model row
as CANCELLED (`terminated_repaired`) and records the repair on the audit chain, all in one
transaction.

What the repair does not do, on purpose:
- Refund money. A refund is finance's decision and pays money out; the repair reports what was
  paid and refunded so far, and the invoices left open, for finance to settle.
- Take back goods that left: shipments dispatched or delivered stay so, and once goods have
  left, the order's invoices stay as they are (they bill those goods; voiding them would forgive
  the debt). Only a pick list still `ready` is withdrawn.

Whether the run really is over is the caller's to check (Temporal knows, the database does
not); the repair refuses only what the database can tell: an unknown order, or one that
finished (its row is closed) other than by an earlier repair.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from domain.audit import AuditSeal
from domain.messages import AuditRecord, Resolution, SaveOrderViewInput
from domain.money import Money
from domain.orders import CancellationView, OrderView, TimelineEntry, status_label
from domain.statuses import (
    DeadlineStatus,
    InvoiceStatus,
    OrderStatus,
    ProductionOrderStatus,
    ShipmentStatus,
)
from store import audit, billing, production, shipments, stock
from store.db import Database
from store.queries import lock_order
from store.read_model import save_views

REPAIRED = "terminated_repaired"  # the reason code of a repaired order's cancellation
# The repaired row's `seq` jumps this far: a save of the ended run still in flight when it
# ended (a few at most, each the next `seq`) lands after the repair and must not overwrite it.
SEQ_GAP = 1000

_ORDERS = SQLModel.metadata.tables["orderrecord"]
_PAYMENTS = SQLModel.metadata.tables["payment"]
_REFUNDS = SQLModel.metadata.tables["refund"]
_ORDER_ROW = (
    sa_select(_ORDERS.c.seq, _ORDERS.c.closed, _ORDERS.c.fingerprint, _ORDERS.c.view)
    .where(_ORDERS.c.order_no == bindparam("order_no"))
    .with_for_update()
)
_SHIPPED = (
    sa_select(shipments.SHIPMENTS.c.id)
    .where(
        shipments.SHIPMENTS.c.order_no == bindparam("order_no"),
        shipments.SHIPMENTS.c.return_no.is_(None),
        shipments.SHIPMENTS.c.status.in_([ShipmentStatus.DISPATCHED, ShipmentStatus.DELIVERED]),
    )
    .order_by(shipments.SHIPMENTS.c.id)
)
_OPEN_INVOICES = (
    sa_select(billing.INVOICES.c.id)
    .where(
        billing.INVOICES.c.order_no == bindparam("order_no"),
        billing.INVOICES.c.status.in_([InvoiceStatus.ISSUED, InvoiceStatus.PAID]),
    )
    .order_by(billing.INVOICES.c.id)
)
_PAYMENTS_OF = (
    sa_select(_PAYMENTS.c.id, _PAYMENTS.c.amount)
    .where(_PAYMENTS.c.order_no == bindparam("order_no"))
    .order_by(_PAYMENTS.c.received_at, _PAYMENTS.c.id)
)
_REFUNDS_OF = sa_select(_REFUNDS.c.amount).where(_REFUNDS.c.order_no == bindparam("order_no"))


class RepairRefused(Exception):
    """The database says there is nothing to repair: `status` is the HTTP status that says
    why (404 unknown order, 409 finished)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RepairRecord(BaseModel):
    """What a repair found and did; the detail of its audit entry, and what a second repair
    of the same order answers."""

    order_no: str
    run_status: str
    status: OrderStatus = OrderStatus.CANCELLED
    reason_code: str = REPAIRED
    repaired_by: str
    repaired_at: datetime
    reason: str
    shipments_withdrawn: list[str] = Field(default_factory=list)
    production_orders_cancelled: list[str] = Field(default_factory=list)
    invoices_voided: list[str] = Field(default_factory=list)
    reservations_released: list[str] = Field(default_factory=list)
    shipments_shipped: list[str] = Field(default_factory=list)
    invoices_left_open: list[str] = Field(default_factory=list)
    payments: list[str] = Field(default_factory=list)
    paid: Money = Money(0)
    refunded: Money = Money(0)

    def undid_anything(self) -> bool:
        return bool(
            self.shipments_withdrawn
            or self.production_orders_cancelled
            or self.invoices_voided
            or self.reservations_released
        )


def entry_id(order_no: str) -> str:
    """The repair's audit entry: one per order, so its detail is the first repair's answer."""
    return f"repair-{order_no}"


async def repair_order(
    db: Database,
    order_no: str,
    *,
    run_status: str,
    by: str,
    role: str,
    source: str,
    reason: str,
    at: datetime,
) -> RepairRecord:
    """Undo what the order's records hold open and close it as CANCELLED (`REPAIRED`), in one
    transaction. Each step is idempotent: a second repair finds nothing left to undo and
    answers what the first one recorded."""
    return await db.write(
        _repair, db.audit_seal, order_no, run_status, by, role, source, reason, at
    )


def _repair(
    conn: Connection,
    seal: AuditSeal,
    order_no: str,
    run_status: str,
    by: str,
    role: str,
    source: str,
    reason: str,
    at: datetime,
) -> RepairRecord:
    lock_order(conn, order_no)
    row = (conn.execute(_ORDER_ROW, {"order_no": order_no})).first()
    if row is None:
        raise RepairRefused(404, f"Order {order_no} not found")
    view = OrderView.model_validate(row.view)
    cancellation = view.cancellation
    repaired = bool(row.closed and cancellation and cancellation.reason_code == REPAIRED)
    if row.closed and not repaired:
        raise RepairRefused(
            409, f"Order {order_no} finished as {view.status.value}: nothing to repair"
        )
    record = RepairRecord(
        order_no=order_no, run_status=run_status, repaired_by=by, repaired_at=at, reason=reason
    )
    _undo(conn, record)
    if repaired:
        first = audit.detail_of(conn, entry_id(order_no))
        if not record.undid_anything() and first is not None:
            return RepairRecord.model_validate(first)
        # Something came back after the first repair (a step still running when the run
        # ended): this repair undid it, and is recorded beside the first.
        audit.append_records(conn, seal, [_audit(record, role, source, at.isoformat())])
        return record
    save_views(conn, seal, [_closed(view, record, row.seq, row.fingerprint, role, source)])
    return record


def _undo(conn: Connection, record: RepairRecord) -> None:
    """The saga's compensations, in its order (pick lists, production, invoices, stock), from
    the database's records; and what is left for finance."""
    order_no, key = record.order_no, {"order_no": record.order_no}
    record.shipments_withdrawn = shipments.withdraw_ready(conn, order_no)
    record.production_orders_cancelled = production.cancel_open(conn, order_no, record.repaired_at)
    record.shipments_shipped = list((conn.execute(_SHIPPED, key)).scalars())
    if not record.shipments_shipped:  # else the invoices bill goods the customer has
        record.invoices_voided = billing.void_unpaid(conn, order_no)
    record.reservations_released = stock.release_order(conn, order_no, record.repaired_at)
    record.invoices_left_open = list((conn.execute(_OPEN_INVOICES, key)).scalars())
    payments = (conn.execute(_PAYMENTS_OF, key)).all()
    record.payments = [f"{payment.id}: {payment.amount}" for payment in payments]
    record.paid = sum((payment.amount for payment in payments), Decimal(0))
    refunds = (conn.execute(_REFUNDS_OF, key)).scalars()
    record.refunded = sum(refunds, Decimal(0))


def _audit(record: RepairRecord, role: str, source: str, suffix: str = "") -> AuditRecord:
    return AuditRecord(
        id=entry_id(record.order_no) + (f"-{suffix}" if suffix else ""),
        at=record.repaired_at,
        order_no=record.order_no,
        action="order_repaired",
        actor=record.repaired_by,
        outcome="ok",
        detail=record.model_dump(mode="json"),
        role=role,
        source=source,
    )


def _closed(
    view: OrderView, record: RepairRecord, seq: int, fingerprint: str, role: str, source: str
) -> SaveOrderViewInput:
    """The order's last view as the saga would have left it: CANCELLED and closed, what was
    undone marked so, its deadlines ended."""
    at = record.repaired_at
    view.status = OrderStatus.CANCELLED
    view.status_label = status_label(OrderStatus.CANCELLED)
    view.cancellation = CancellationView(
        reason_code=REPAIRED, by=record.repaired_by, at=at, comment=record.reason
    )
    view.hold = None
    view.waiting_for = None
    for shipment in view.shipments:
        if shipment.id in record.shipments_withdrawn:
            shipment.status = ShipmentStatus.CANCELLED
    for po in view.production_orders:
        if po.id in record.production_orders_cancelled:
            po.status = ProductionOrderStatus.CANCELLED
    for invoice in view.invoices:
        if invoice.id in record.invoices_voided:
            invoice.status = InvoiceStatus.VOID
    for line in view.lines:
        line.reserved_quantity = 0
    resolutions: list[Resolution] = []
    for deadline in view.deadlines:  # as the order's own end would (a breach stays on record)
        if deadline.open:
            if deadline.escalations:
                resolutions.append(
                    Resolution(order_no=view.order_no, sla=deadline.sla, key=deadline.key, at=at)
                )
            if deadline.status is not DeadlineStatus.BREACHED:
                deadline.status = DeadlineStatus.CANCELLED
    view.overdue, view.escalation_level = False, 0
    view.timeline.append(
        TimelineEntry(
            at=at,
            event="order_repaired",
            actor=record.repaired_by,
            status=OrderStatus.CANCELLED.value,
            detail=f"workflow run {record.run_status}: {record.reason}"[:500],
        )
    )
    view.updated_at = at
    view.closed = True
    return SaveOrderViewInput(
        view=view,
        seq=seq + SEQ_GAP,
        fingerprint=fingerprint,
        audit=[_audit(record, role, source)],
        resolutions=resolutions,
    )
