"""The commands a person may give an order from its page: which ones the order and the
person's role allow now, each form's fields, and the workflow input it becomes.

Each is validated by the API's own request body (`api.bodies`) and sent through the API's own
command path (`api.commands.Commands`, or the service a route calls: `api.operations` for a
shipment, `api.return_entry` for a return), so audit, idempotency and 409/422 are the API's."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from api import operations
from api.bodies import (
    Amendment,
    Approval,
    Body,
    Cancellation,
    DeliveryDetails,
    DispatchDetails,
    Hold,
    PaymentDetails,
    Rejection,
    Release,
    ReturnSubmission,
    ShortClose,
    WrittenConfirmation,
)
from api.commands import Commands
from api.deps import TemporalConnection
from api.principal import Principal
from api.return_entry import request_return
from api.schemas import OrderPublic
from domain.auth import Permission, Role, allows
from domain.calendar import BusinessCalendar
from domain.contract import OrderUpdate
from domain.messages import (
    ApproveOrderInput,
    CancelOrderInput,
    CancelReason,
    ConfirmOrderInput,
    HoldInput,
    PaymentInput,
    RejectOrderInput,
    ReleaseInput,
    ShortCloseInput,
)
from domain.orders import ApproverRole, FromCaller
from domain.returns import ReturnResolution
from domain.statuses import GONE_SHIPMENTS, OrderStatus, ShipmentStatus
from settings import Settings
from store.db import Database

S = OrderStatus
CANCELLABLE = {
    S.RECEIVED,
    S.PENDING_APPROVAL,
    S.CONFIRMED,
    S.AWAITING_CONFIRMATION,
    S.AWAITING_PAYMENT,
    S.IN_PRODUCTION,
    S.READY_TO_SHIP,
    S.ON_HOLD,
}
HOLDABLE = CANCELLABLE - {S.ON_HOLD}
AMENDABLE = HOLDABLE | {S.SHIPPED}
RETURNABLE = {S.IN_PRODUCTION, S.READY_TO_SHIP, S.SHIPPED, S.DELIVERED, S.COMPLETED}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str  # a msgid
    # text, textarea, number, date, select; "lines": the order's lines with a quantity each
    # (amend: the new quantity, return: how many come back); "shipment": one of the order's
    # shipments in `shipment_status`, which names the command's target, not a body field.
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    shipment_status: str = ""


@dataclass(frozen=True)
class Action:
    name: str  # the URL segment: POST /app/orders/{order_no}/{name}
    label: str  # a msgid
    permission: Permission
    update: OrderUpdate
    body: type[Body]
    build: Callable[[Principal, Body], FromCaller] | None
    allowed_now: Callable[[OrderPublic, Principal], bool]
    fields: tuple[FormField, ...] = field(default=())
    settled: OrderStatus | None = None
    style: str = ""  # "secondary", "contrast": how its button looks
    # A command that is not one update of the order's own (`build`): the API's service for it.
    perform: Perform | None = None


@dataclass(frozen=True)
class Sending:
    """What an action needs to be sent: the API's command path under the form's idempotency
    key, and what the API's services take."""

    commands: Commands
    db: Database
    temporal: TemporalConnection
    settings: Settings
    calendar: BusinessCalendar
    order_no: str
    form: dict[str, str]
    idempotency_key: str | None


Perform = Callable[[Sending, Principal, Body], Awaitable[object]]


def _may_decide(order: OrderPublic, principal: Principal) -> bool:
    level = order.approval.awaiting_level
    if order.status is not S.PENDING_APPROVAL or level is None:
        return False
    if principal.role is Role.APPROVER_L1 and level != 1:
        return False
    decided = {decision.approver for decision in order.approvals}
    return principal.name != order.entered_by and principal.name not in decided


def _approver(principal: Principal) -> ApproverRole:
    return ApproverRole(principal.role.value)


def _approve(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, Approval)
    return ApproveOrderInput(approver=p.name, role=_approver(p), comment=b.comment)


def _reject(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, Rejection)
    return RejectOrderInput(approver=p.name, role=_approver(p), reason=b.reason)


def _hold(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, Hold)
    return HoldInput(reason=b.reason, kind=b.kind, by=p.name)


def _confirm(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, WrittenConfirmation)
    return ConfirmOrderInput(**b.model_dump(), by=p.name)


def _release(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, Release)
    return ReleaseInput(comment=b.comment, by=p.name)


def _cancel(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, Cancellation)
    return CancelOrderInput(reason_code=b.reason_code, comment=b.comment, by=p.name)


def _pay(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, PaymentDetails)
    return PaymentInput(**b.model_dump(), recorded_by=p.name)


def _open(order: OrderPublic) -> bool:
    return not order.closed


def _movable(order: OrderPublic) -> bool:
    return _open(order) and order.hold is None


def _has_shipment(order: OrderPublic, status: str) -> bool:
    return any(shipment.status == status for shipment in order.shipments)


async def _amend(sending: Sending, p: Principal, b: Body) -> object:
    assert isinstance(b, Amendment)
    arg = b.to_input(p.name, sending.calendar)
    return await sending.commands.update(p, sending.order_no, OrderUpdate.AMEND, arg)


def _short_close(p: Principal, b: Body) -> FromCaller:
    assert isinstance(b, ShortClose)
    return ShortCloseInput(reason=b.reason, by=p.name)


def _may_short_close(order: OrderPublic, principal: Principal) -> bool:
    shipped = any(shipment.status in GONE_SHIPMENTS for shipment in order.shipments)
    left = any(
        line.quantity - line.short_closed_quantity - line.shipped_quantity > 0
        for line in order.lines
    )
    return _movable(order) and shipped and left


async def _dispatch(sending: Sending, p: Principal, b: Body) -> object:
    assert isinstance(b, DispatchDetails)
    return await operations.dispatch(sending.commands, p, sending.form["shipment_id"], b)


async def _deliver(sending: Sending, p: Principal, b: Body) -> object:
    assert isinstance(b, DeliveryDetails)
    return await operations.deliver(sending.commands, p, sending.form["shipment_id"], b)


async def _request_return(sending: Sending, p: Principal, b: Body) -> object:
    assert isinstance(b, ReturnSubmission)
    return await request_return(
        sending.db, sending.temporal, sending.settings, p, sending.order_no, b
    )


ACTIONS: tuple[Action, ...] = (
    Action(
        "approve",
        "Approve",
        Permission.ORDERS_APPROVE,
        OrderUpdate.APPROVE,
        Approval,
        _approve,
        _may_decide,
        (FormField("comment", "Comment", "textarea"),),
    ),
    Action(
        "reject",
        "Reject",
        Permission.ORDERS_APPROVE,
        OrderUpdate.REJECT,
        Rejection,
        _reject,
        _may_decide,
        (FormField("reason", "Reason", "textarea", required=True),),
        style="secondary",
    ),
    Action(
        "pay",
        "Record payment",
        Permission.PAYMENTS_RECORD,
        OrderUpdate.PAY,
        PaymentDetails,
        _pay,
        lambda o, p: (
            _open(o)
            and (o.status is S.AWAITING_PAYMENT or any(i.status == "issued" for i in o.invoices))
        ),
        (
            FormField("amount", "Amount", "number", required=True),
            FormField("method", "Method", "select", True, ("bank_transfer", "card", "cash")),
            FormField("reference", "Reference", required=True),
        ),
    ),
    Action(
        "confirm",
        "Record the signed confirmation",
        Permission.ORDERS_AMEND,
        OrderUpdate.CONFIRM,
        WrittenConfirmation,
        _confirm,
        lambda o, p: _open(o) and o.status is S.AWAITING_CONFIRMATION,
        (
            FormField("document_reference", "Document reference", required=True),
            FormField("confirmed_by_customer_contact", "Signed by (customer)", required=True),
        ),
    ),
    Action(
        "hold",
        "Hold",
        Permission.ORDERS_HOLD,
        OrderUpdate.HOLD,
        Hold,
        _hold,
        lambda o, p: _open(o) and o.status in HOLDABLE,
        (FormField("reason", "Reason", required=True),),
        style="secondary",
    ),
    Action(
        "release",
        "Release",
        Permission.ORDERS_HOLD,
        OrderUpdate.RELEASE,
        Release,
        _release,
        lambda o, p: _open(o) and o.status is S.ON_HOLD,
        (FormField("comment", "Comment"),),
    ),
    Action(
        "amend",
        "Amend",
        Permission.ORDERS_AMEND,
        OrderUpdate.AMEND,
        Amendment,
        None,
        lambda o, p: _movable(o) and o.status in AMENDABLE,
        (
            FormField("lines", "New quantities", "lines"),
            FormField("requested_delivery_date", "Requested delivery", "date"),
            FormField("shipping_address", "Shipping address"),
            FormField("reason", "Reason for the change", "textarea", required=True),
        ),
        style="secondary",
        perform=_amend,
    ),
    Action(
        "short-close",
        "Short-close",
        Permission.ORDERS_AMEND,
        OrderUpdate.SHORT_CLOSE,
        ShortClose,
        _short_close,
        _may_short_close,
        (FormField("reason", "Reason", "textarea", required=True),),
        style="secondary",
    ),
    Action(
        "dispatch",
        "Dispatch",
        Permission.SHIPMENTS_DISPATCH,
        OrderUpdate.DISPATCH,
        DispatchDetails,
        None,
        lambda o, p: _movable(o) and _has_shipment(o, ShipmentStatus.READY),
        (
            FormField("shipment_id", "Shipment", "shipment", True, (), ShipmentStatus.READY),
            FormField("carrier", "Carrier", required=True),
            FormField("tracking_no", "Tracking number", required=True),
        ),
        perform=_dispatch,
    ),
    Action(
        "deliver",
        "Record delivery",
        Permission.DELIVERIES_REPORT,
        OrderUpdate.DELIVER,
        DeliveryDetails,
        None,
        lambda o, p: _movable(o) and _has_shipment(o, ShipmentStatus.DISPATCHED),
        (
            FormField("shipment_id", "Shipment", "shipment", True, (), ShipmentStatus.DISPATCHED),
            FormField("signed_by", "Signed by", required=True),
        ),
        perform=_deliver,
    ),
    Action(
        "request-return",
        "Request a return",
        Permission.RETURNS_REQUEST,
        OrderUpdate.AMEND,  # not an order update: `perform` starts the return's workflow
        ReturnSubmission,
        None,
        lambda o, p: o.status in RETURNABLE and any(line.delivered_quantity for line in o.lines),
        (
            FormField("lines", "Quantities to return", "lines"),
            FormField(
                "resolution",
                "Resolution",
                "select",
                True,
                tuple(resolution.value for resolution in ReturnResolution),
            ),
            FormField("reason", "Reason", "textarea", required=True),
        ),
        style="secondary",
        perform=_request_return,
    ),
    Action(
        "cancel",
        "Cancel order",
        Permission.ORDERS_CANCEL,
        OrderUpdate.CANCEL,
        Cancellation,
        _cancel,
        lambda o, p: _open(o) and o.status in CANCELLABLE,
        (
            FormField(
                "reason_code",
                "Cancellation reason",
                "select",
                True,
                tuple(reason.value for reason in CancelReason),
            ),
            FormField("comment", "Comment"),
        ),
        settled=S.CANCELLED,
        style="contrast",
    ),
)
BY_NAME = {action.name: action for action in ACTIONS}


def available_actions(order: OrderPublic, principal: Principal) -> list[Action]:
    """What `principal` may do to `order` now: their role holds the permission and the
    order's state allows it (the workflow still decides: a 409 if someone was faster)."""
    return [
        action
        for action in ACTIONS
        if allows(principal.role, action.permission) and action.allowed_now(order, principal)
    ]
