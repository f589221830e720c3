"""Order statuses with the labels users know, in English and Chinese."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order stands. The stable ones are what users and integrators see."""

    RECEIVED = "RECEIVED"
    INVALID = "INVALID"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    CONFIRMED = "CONFIRMED"
    AWAITING_CONFIRMATION = "AWAITING_CONFIRMATION"
    AWAITING_PAYMENT = "AWAITING_PAYMENT"
    IN_PRODUCTION = "IN_PRODUCTION"
    READY_TO_SHIP = "READY_TO_SHIP"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    REJECTED = "REJECTED"
    ON_HOLD = "ON_HOLD"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"

    @property
    def label_en(self) -> str:
        return _LABELS[self][0]

    @property
    def label_zh(self) -> str:
        return _LABELS[self][1]


_LABELS: dict[OrderStatus, tuple[str, str]] = {
    OrderStatus.RECEIVED: ("Received", "已接收"),
    OrderStatus.INVALID: ("Invalid entry", "录入无效"),
    OrderStatus.PENDING_APPROVAL: ("Pending approval", "待审核"),
    OrderStatus.CONFIRMED: ("Confirmed", "已确认"),
    OrderStatus.AWAITING_CONFIRMATION: ("Awaiting written confirmation", "待书面确认"),
    OrderStatus.AWAITING_PAYMENT: ("Awaiting payment", "待付款"),
    OrderStatus.IN_PRODUCTION: ("In production", "生产中"),
    OrderStatus.READY_TO_SHIP: ("Ready to ship", "待发货"),
    OrderStatus.SHIPPED: ("Shipped", "已发货"),
    OrderStatus.DELIVERED: ("Delivered", "已签收"),
    OrderStatus.COMPLETED: ("Completed", "已完成"),
    OrderStatus.REJECTED: ("Rejected", "已拒绝"),
    OrderStatus.ON_HOLD: ("On hold", "冻结"),
    OrderStatus.CANCELLING: ("Cancelling", "取消中"),
    OrderStatus.CANCELLED: ("Cancelled", "已取消"),
}


class DeliveryPolicy(StrEnum):
    COMPLETE = "complete"  # ship when everything is ready
    PARTIAL = "partial"  # ship what is ready now, backorder the rest (缺货)


# The statuses below are `StrEnum`s: each member *is* its string, so the JSON of the views that
# carry them (history payloads, the read model, HTTP answers) stays what it was when they were
# bare strings, and code comparing with the strings keeps working.


class ShipmentStatus(StrEnum):
    """A shipment's pick list, from the warehouse to the customer's signature."""

    READY = "ready"  # pick list out, goods not yet left
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"  # signed for (签收)
    CANCELLED = "cancelled"  # pick list withdrawn


class InvoiceStatus(StrEnum):
    """An invoice, from issue to settlement or cancellation."""

    ISSUED = "issued"  # something is outstanding
    PAID = "paid"  # settled: paid, or paid and credited
    VOID = "void"  # cancelled before any payment
    CREDITED = "credited"  # cancelled after payment: a credit note took it back


class ProductionOrderStatus(StrEnum):
    """A production order for a line's shortage."""

    PLANNED = "planned"
    PARTIALLY_COMPLETED = "partially_completed"  # some of its quantity reported produced
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ReservationStatus(StrEnum):
    """Stock held for an order line."""

    ACTIVE = "active"
    SHIPPED = "shipped"
    RELEASED = "released"


class DeadlineStatus(StrEnum):
    """How one SLA of an order (or a return) stands."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # a reminder fired
    BREACHED = "breached"  # an escalation fired
    MET = "met"
    CANCELLED = "cancelled"


# Invoices that still count: an order is paid when every live invoice is.
LIVE_INVOICES = frozenset({InvoiceStatus.ISSUED, InvoiceStatus.PAID})
# Shipments whose goods have left the warehouse.
GONE_SHIPMENTS = frozenset({ShipmentStatus.DISPATCHED, ShipmentStatus.DELIVERED})
# Production orders still to produce: cancelled with their sales order, replaced on amendment.
OPEN_PRODUCTION = frozenset(
    {ProductionOrderStatus.PLANNED, ProductionOrderStatus.PARTIALLY_COMPLETED}
)
# Deadlines no longer chased.
CLOSED_DEADLINES = frozenset({DeadlineStatus.MET, DeadlineStatus.CANCELLED})
