"""Orders: submit, read, list, and the decisions and payments that move them on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from api.auth import allowed, visible_customers
from api.bodies import (
    Amendment,
    Approval,
    Cancellation,
    Hold,
    IdPath,
    OrderSubmission,
    PaymentDetails,
    Rejection,
    Release,
    ShortClose,
)
from api.commands import CommandsDep
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemDetails
from api.order_entry import submit
from api.orders_read import current_order, overdue_deadlines
from api.principal import Principal
from api.schemas import OrderPublic, OverdueDeadline, order_public
from domain.auth import Permission
from domain.calendar import BusinessCalendar
from domain.contract import OrderUpdate
from domain.messages import (
    ApproveOrderInput,
    CancelOrderInput,
    HoldInput,
    PaymentInput,
    RejectOrderInput,
    ReleaseInput,
    ShortCloseInput,
)
from domain.money import Money
from domain.orders import ApproverRole, Priority, status_label
from domain.statuses import OrderStatus
from domain.text import ID_PATTERN
from store import queries

router = APIRouter(prefix="/orders", tags=["orders"])
log = structlog.get_logger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}
Reader = Annotated[Principal, allowed(Permission.ORDERS_READ)]


class OrderSummary(BaseModel):
    order_no: str
    status: OrderStatus
    status_label: dict[str, str]
    customer_id: str
    total: Money
    priority: Priority
    entered_by: str
    overdue: bool = False
    escalation_level: int = 0
    overdue_deadlines: list[OverdueDeadline] = Field(
        default_factory=list,
        description="An overdue order's breached deadlines: SLA, how long overdue, escalation "
        "level and who holds it (as in GET /reports/overdue).",
    )
    first_promised_date: date | None = Field(
        default=None, description="The promise made at confirmation (never changes)."
    )
    promised_date: date | None = Field(default=None, description="The current promise.")
    promise_basis: str | None = None
    received_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": OrderPublic, "description": "This order was already submitted"},
        **ERRORS,
    },
)
async def submit_order(
    body: OrderSubmission,
    response: Response,
    temporal: TemporalDep,
    db: DbDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_CREATE)],
) -> OrderPublic:
    """Submit an order (录入), entered by the caller. It runs entry validation and the approval
    rules at once.

    201 with the order's status; 200 with the existing order when the same number and body
    were submitted before; 409 when the number is taken by different content; 422 listing every
    problem when entry validation fails (the attempt is audited, and the number stays free);
    403 for a customer outside a sales rep's own customers.
    """
    entry = await submit(db, temporal, settings, principal, body)
    response.status_code = 201 if entry.created else 200
    if not entry.archived:
        response.headers["Location"] = f"/orders/{entry.order.order_no}"
    return order_public(entry.order)


@router.get("", responses=ERRORS)
async def list_orders(
    db: DbDep,
    request: Request,
    principal: Reader,
    status: OrderStatus | None = None,
    customer_id: Annotated[
        str | None, Query(min_length=1, max_length=120, pattern=ID_PATTERN)
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="Only orders with a breached deadline.")
    ] = None,
    promise: Annotated[
        Literal["at_risk", "late"] | None,
        Query(
            description="Orders not yet delivered whose promised date has passed (`late`), "
            "or is today or the next working day (`at_risk`)."
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> OrderPage:
    """Orders from the read model, newest first (a scoped sales rep: their customers').
    An overdue order lists its breached deadlines: how late, at what level, held by whom."""
    calendar: BusinessCalendar = request.app.state.calendar
    today = calendar.local_date(datetime.now(UTC))
    promised = (
        None
        if promise is None
        else (None, today - timedelta(days=1))
        if promise == "late"
        else (today, calendar.working_days_after(today + timedelta(days=1), 0))
    )
    rows, total = await queries.list_orders(
        db,
        visible=await visible_customers(db, principal),
        status=status.value if status else None,
        customer_id=customer_id,
        overdue=overdue,
        limit=limit,
        offset=offset,
        promised=promised,
    )
    promises = await queries.promises_of(db, [row.order_no for row in rows])
    now = datetime.now(UTC)
    # The page's rows come without their views; only the overdue ones' deadlines are read.
    deadlines = await queries.deadlines_of(db, [row.order_no for row in rows if row.overdue])
    items = [
        OrderSummary(
            order_no=row.order_no,
            status=OrderStatus(row.status),
            status_label=status_label(OrderStatus(row.status)),
            customer_id=row.customer_id,
            total=row.total,
            priority=Priority(row.priority),
            entered_by=row.entered_by,
            overdue=row.overdue,
            escalation_level=row.escalation_level,
            overdue_deadlines=overdue_deadlines(
                row.order_no, row.customer_id, deadlines.get(row.order_no, []), now
            ),
            first_promised_date=promises.get(row.order_no, {}).get("first_promised_date"),
            promised_date=promises.get(row.order_no, {}).get("promised_date"),
            promise_basis=promises.get(row.order_no, {}).get("basis"),
            received_at=row.received_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return OrderPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{order_no}", responses=ERRORS)
async def get_order(
    order_no: IdPath, db: DbDep, temporal: TemporalDep, settings: SettingsDep, principal: Reader
) -> OrderPublic:
    """Where the order is: live from its workflow while it runs, from the archive after."""
    return order_public(await current_order(db, temporal, settings, order_no, principal))


@router.post("/{order_no}/approve", responses=ERRORS)
async def approve_order(
    order_no: IdPath,
    body: Approval,
    commands: CommandsDep,
    approver: Annotated[Principal, allowed(Permission.ORDERS_APPROVE)],
) -> OrderPublic:
    """An approver's decision at their level: `approver_l1` (supervisor) decides level 1,
    `approver_l2` (manager) either level. The decision is recorded under the caller's name;
    403 for the order's own author or for someone who already decided at an earlier level."""
    arg = ApproveOrderInput(
        approver=approver.name, role=ApproverRole(approver.role.value), comment=body.comment
    )
    return await commands.update(approver, order_no, OrderUpdate.APPROVE, arg)


@router.post("/{order_no}/reject", responses=ERRORS)
async def reject_order(
    order_no: IdPath,
    body: Rejection,
    commands: CommandsDep,
    approver: Annotated[Principal, allowed(Permission.ORDERS_APPROVE)],
) -> OrderPublic:
    """Reject the order with a reason; it ends as REJECTED (已拒绝)."""
    arg = RejectOrderInput(
        approver=approver.name, role=ApproverRole(approver.role.value), reason=body.reason
    )
    return await commands.update(approver, order_no, OrderUpdate.REJECT, arg)


@router.post("/{order_no}/payments", responses=ERRORS)
async def record_payment(
    order_no: IdPath,
    body: PaymentDetails,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.PAYMENTS_RECORD)],
) -> OrderPublic:
    """Record a payment (partial allowed; more than is outstanding is refused with 422)."""
    arg = PaymentInput(**body.model_dump(), recorded_by=principal.name)
    return await commands.update(principal, order_no, OrderUpdate.PAY, arg)


@router.patch("/{order_no}", responses=ERRORS)
async def amend_order(
    order_no: IdPath,
    body: Amendment,
    request: Request,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_AMEND)],
) -> OrderPublic:
    """修改: change the lines, the requested delivery date or the shipping address.

    200 with the new revision and its change record. New lines pass entry validation (422
    otherwise) and the approval rules run again: the order awaits approval at the level the new
    content needs, or goes on if none applies. 409 once goods have shipped (then: returns), and,
    for lines, once the order has payments (cancel it and enter a new one). A new delivery date
    (not before the company's today) moves the delivery deadline.
    """
    calendar: BusinessCalendar = request.app.state.calendar
    arg = body.to_input(principal.name, calendar)
    return await commands.update(principal, order_no, OrderUpdate.AMEND, arg)


@router.post("/{order_no}/short-close", responses=ERRORS)
async def short_close_order(
    order_no: IdPath,
    body: ShortClose,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_AMEND)],
) -> OrderPublic:
    """Sales closes a backorder: what has not shipped will not (production orders cancelled,
    stock released); the order is then SHIPPED with what left and settles for that."""
    arg = ShortCloseInput(reason=body.reason, by=principal.name)
    return await commands.update(principal, order_no, OrderUpdate.SHORT_CLOSE, arg)


@router.post("/{order_no}/hold", responses=ERRORS)
async def hold_order(
    order_no: IdPath,
    body: Hold,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_HOLD)],
) -> OrderPublic:
    """冻结: the order shows ON_HOLD, does nothing (payments are still accepted) and its
    deadlines pause. A `credit` hold is lifted by a payment that brings credit back in line."""
    arg = HoldInput(reason=body.reason, kind=body.kind, by=principal.name)
    return await commands.update(principal, order_no, OrderUpdate.HOLD, arg)


@router.post("/{order_no}/release", responses=ERRORS)
async def release_order(
    order_no: IdPath,
    body: Release,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_HOLD)],
) -> OrderPublic:
    """Release re-checks credit (409 while a credit hold's check fails) and returns the order
    to where it was; its deadlines resume, later by the time it was held."""
    arg = ReleaseInput(comment=body.comment, by=principal.name)
    return await commands.update(principal, order_no, OrderUpdate.RELEASE, arg)


@router.post("/{order_no}/cancel", responses=ERRORS)
async def cancel_order(
    order_no: IdPath,
    body: Cancellation,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_CANCEL)],
) -> OrderPublic:
    """取消: allowed until goods ship (then 409: request a return). Every step already done is
    undone in reverse: shipments withdrawn, production orders cancelled, payments refunded,
    invoices voided or credited, stock released. Answers with the CANCELLED order; asking
    again for a cancelled order answers the same."""
    arg = CancelOrderInput(reason_code=body.reason_code, comment=body.comment, by=principal.name)
    return await commands.update(
        principal, order_no, OrderUpdate.CANCEL, arg, settled=OrderStatus.CANCELLED
    )
