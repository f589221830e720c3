"""Order statuses with the labels users know, in English and Chinese."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order stands. The stable ones are what users and integrators see."""

    RECEIVED = "RECEIVED"
    INVALID = "INVALID"
    PENDING_APPROVAL = "PENDING_APPROVAL"
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
