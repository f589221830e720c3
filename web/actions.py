"""The commands a person may give an order from its page: which ones the order and the
person's role allow now, each form's fields, and the workflow input it becomes.

Each is validated by the API's own request body (`api.bodies`) and sent through the API's own
command path (`api.commands.Commands`), so audit, idempotency and 409/422 are the API's."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from api.bodies import Approval, Body, Cancellation, Hold, PaymentDetails, Rejection, Release
from api.principal import Principal
from api.schemas import OrderPublic
from domain.auth import Permission, Role, allows
from domain.contract import OrderUpdate
from domain.messages import (
    ApproveOrderInput,
    CancelOrderInput,
    CancelReason,
    HoldInput,
    PaymentInput,
    RejectOrderInput,
    ReleaseInput,
)
from domain.orders import ApproverRole, FromCaller
from domain.statuses import OrderStatus

S = OrderStatus
CANCELLABLE = {
    S.RECEIVED,
    S.PENDING_APPROVAL,
    S.AWAITING_PAYMENT,
    S.IN_PRODUCTION,
    S.READY_TO_SHIP,
    S.ON_HOLD,
}
HOLDABLE = CANCELLABLE - {S.ON_HOLD}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str  # a msgid
    kind: str = "text"  # text, textarea, number, select
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Action:
    name: str  # the URL segment: POST /app/orders/{order_no}/{name}
    label: str  # a msgid
    permission: Permission
    update: OrderUpdate
    body: type[Body]
    build: Callable[[Principal, Body], FromCaller]
    allowed_now: Callable[[OrderPublic, Principal], bool]
    fields: tuple[FormField, ...] = field(default=())
    settled: OrderStatus | None = None
    style: str = ""  # "secondary", "contrast": how its button looks


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


def body_fields(action: Action, form: dict[str, str]) -> dict[str, str]:
    """The form's fields of this action; an empty optional field is absent (the API's null)."""
    return {
        item.name: form[item.name].strip() if item.kind != "textarea" else form[item.name]
        for item in action.fields
        if form.get(item.name, "").strip()
    }
