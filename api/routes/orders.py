"""Orders: submit, read, list, and the decisions and payments that move them on."""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import Principal, allowed, in_scope, visible_customers
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import (
    ProblemDetails,
    ProblemError,
    problems_from,
    refusal_to_problem,
    rpc_to_problem,
)
from api.record import outcome_of, record_command
from api.routes.commands import CommandsDep
from api.routes.reports import OverdueDeadline, overdue_deadlines
from domain.auth import Permission
from domain.calendar import BusinessCalendar
from domain.messages import (
    Approval,
    ApproveOrderInput,
    Cancellation,
    CancelOrderInput,
    Hold,
    HoldInput,
    OrderWorkflowInput,
    PaymentDetails,
    PaymentInput,
    Rejection,
    RejectOrderInput,
    Release,
    ReleaseInput,
    ShortClose,
    ShortCloseInput,
    SubmitOrderInput,
    SubmitOrderResult,
)
from domain.money import Money, round_money
from domain.orders import (
    Amendment,
    AmendOrderInput,
    ApproverRole,
    OrderRequest,
    OrderSubmission,
    OrderView,
    Priority,
    status_label,
    workflow_id_for,
)
from domain.statuses import OrderStatus
from payload_codec import UiText
from store import queries
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

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
    received_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    total: int
    limit: int
    offset: int


def new_order_no() -> str:
    return f"SO-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4).upper()}"


@router.post(
    "",
    status_code=201,
    responses={
        200: {"model": OrderView, "description": "This order was already submitted"},
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
) -> OrderView:
    """Submit an order (录入), entered by the caller. It runs entry validation and the approval
    rules at once.

    201 with the order's status; 200 with the existing order when the same number and body
    were submitted before; 409 when the number is taken by different content; 422 listing every
    problem when entry validation fails (the attempt is audited, and the number stays free);
    403 for a customer outside a sales rep's own customers.
    """
    order_no = body.order_no or new_order_no()
    try:
        return await _submit(body, order_no, response, temporal, db, settings, principal)
    except ProblemError as exc:  # an accepted order records its own receipt
        await record_command(
            db,
            principal,
            "submit",
            outcome_of(exc.problem.status),
            order_no=order_no,
            detail={"detail": exc.problem.detail},
        )
        raise


async def _submit(
    body: OrderSubmission,
    order_no: str,
    response: Response,
    temporal: TemporalDep,
    db: DbDep,
    settings: SettingsDep,
    principal: Principal,
) -> OrderView:
    if not await in_scope(db, principal, body.customer_id):
        raise ProblemError(
            403,
            f"Customer {body.customer_id} is not among your customers",
            order_no=order_no,
            permission=Permission.ORDERS_CREATE.value,
        )
    request = OrderRequest.model_validate(
        {**body.model_dump(), "order_no": order_no, "entered_by": principal.name}
    )
    fingerprint = request.fingerprint()
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    summary = await _summary(db, request)
    # A live order's number attaches to its run (USE_EXISTING); one whose run ended never
    # starts a second, unless that run was a refused entry (failed before the
    # entry-refused-completes patch, completed as INVALID since): its number stays free.
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    while True:
        start = WithStartWorkflowOperation(
            OrderWorkflow.run,
            OrderWorkflowInput(
                order_no=order_no, request=request, fingerprint=fingerprint, caller=principal.caller
            ),
            id=workflow_id_for(order_no),
            task_queue=settings.task_queue,
            task_timeout=timedelta(seconds=settings.workflow_task_timeout_seconds),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            static_summary=summary,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ORDER_STATUS, OrderStatus.RECEIVED.value),
                    SearchAttributePair(sa.CUSTOMER_ID, request.customer_id),
                ]
            ),
        )
        try:
            client = await temporal.get()
            result: SubmitOrderResult = await client.execute_update_with_start_workflow(
                OrderWorkflow.submit,
                SubmitOrderInput(fingerprint=fingerprint),
                start_workflow_operation=start,
                rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
            )
            break
        except WorkflowAlreadyStartedError:
            await _settle(start)
        except WorkflowUpdateFailedError as exc:
            raise refusal_to_problem(exc, order_no) from exc
        except RPCError as exc:
            await _settle(start)
            if exc.status != RPCStatusCode.ALREADY_EXISTS:
                raise rpc_to_problem(exc, order_no) from exc
        # The number's run has ended. Every accepted order saves its view before its run
        # ends, so no order under the number means that run refused its entry.
        if reuse is WorkflowIDReusePolicy.ALLOW_DUPLICATE or (
            await queries.order_keys(db, order_no) is not None
        ):
            return await _finished_order(db, order_no, fingerprint, response)
        reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE
    order = result.order
    if order.status is OrderStatus.INVALID:
        raise ProblemError(
            422,
            f"Order {order_no} failed entry validation; nothing was created",
            errors=problems_from(order.problems),
            order_no=order_no,
            type_="OrderInvalid",
        )
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = f"/orders/{order_no}"
    log.info("order_submitted", created=result.created, status=order.status)
    return order


async def _settle(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read the start's own outcome after a failed update-with-start (the same error), so it
    is not left unread; the update's error is the one that answers."""
    with contextlib.suppress(WorkflowAlreadyStartedError, RPCError):
        await start.workflow_handle()


async def _finished_order(
    db: DbDep, order_no: str, fingerprint: str, response: Response
) -> OrderView:
    """The number belongs to an order whose workflow has ended: same body → that order."""
    record = await queries.get_order(db, order_no)
    if record is None or record.fingerprint != fingerprint:
        raise ProblemError(
            409,
            f"Order number {order_no} was already used for a different order",
            order_no=order_no,
            type_="Conflict",
        )
    response.status_code = 200
    return OrderView.model_validate(record.view)


async def _summary(db: DbDep, request: OrderRequest) -> UiText:
    """Order number, customer and total, for the workflow's row in the Temporal UI: readable
    there without the payload key (the search attributes show the same in plain text)."""
    prices = await queries.price_of(db, {line.sku for line in request.lines})
    total = sum(
        (
            (line.unit_price if line.unit_price is not None else prices.get(line.sku, Decimal(0)))
            * line.quantity
            for line in request.lines
        ),
        Decimal(0),
    )
    return UiText(
        f"Order {request.order_no} · customer {request.customer_id} · total {round_money(total)}"
    )


@router.get("", responses=ERRORS)
async def list_orders(
    db: DbDep,
    principal: Reader,
    status: OrderStatus | None = None,
    customer_id: str | None = None,
    overdue: Annotated[
        bool | None, Query(description="Only orders with a breached deadline.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> OrderPage:
    """Orders from the read model, newest first (a scoped sales rep: their customers').
    An overdue order lists its breached deadlines: how late, at what level, held by whom."""
    rows, total = await queries.list_orders(
        db,
        visible=await visible_customers(db, principal),
        status=status.value if status else None,
        customer_id=customer_id,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
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
            received_at=row.received_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return OrderPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{order_no}", responses=ERRORS)
async def get_order(
    order_no: str, db: DbDep, temporal: TemporalDep, settings: SettingsDep, principal: Reader
) -> OrderView:
    """Where the order is: live from its workflow while it runs, from the archive after."""
    return await current_order(db, temporal, settings, order_no, principal)


async def current_order(
    db: DbDep, temporal: TemporalDep, settings: SettingsDep, order_no: str, principal: Principal
) -> OrderView:
    """The order as it is now, with its returns (404 outside the caller's customers)."""
    # Every line about an order names it and its workflow (the id derives from the number).
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    record = await queries.order_keys(db, order_no)
    if record is None or not await in_scope(db, principal, record.customer_id):
        raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
    view: OrderView | None = None
    if not record.closed:
        try:
            handle = (await temporal.get()).get_workflow_handle(record.workflow_id)
            view = await handle.query(
                OrderWorkflow.view,
                rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
            )
        except (RPCError, ProblemError) as exc:
            # No worker or no Temporal: the read model is at most one step behind the workflow.
            log.warning("order_query_failed", error=str(exc))
    if view is None:  # closed (archived), or the workflow could not answer
        archived = await queries.get_order(db, order_no)
        if archived is None:  # rows are never deleted; only a database swapped under us
            raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
        view = OrderView.model_validate(archived.view)
    returns = await queries.return_statuses(db, order_no)
    view.returns = [{"return_no": number, "status": status} for number, status in returns]
    view.return_status = returns[-1][1] if returns else None
    return view


@router.post("/{order_no}/approve", response_model=OrderView, responses=ERRORS)
async def approve_order(
    order_no: str,
    body: Approval,
    commands: CommandsDep,
    approver: Annotated[Principal, allowed(Permission.ORDERS_APPROVE)],
) -> Response:
    """An approver's decision at their level: `approver_l1` (supervisor) decides level 1,
    `approver_l2` (manager) either level. The decision is recorded under the caller's name;
    403 for the order's own author or for someone who already decided at an earlier level."""
    arg = ApproveOrderInput(
        approver=approver.name, role=ApproverRole(approver.role.value), comment=body.comment
    )
    return await commands.update(approver, order_no, OrderWorkflow.approve, arg)


@router.post("/{order_no}/reject", response_model=OrderView, responses=ERRORS)
async def reject_order(
    order_no: str,
    body: Rejection,
    commands: CommandsDep,
    approver: Annotated[Principal, allowed(Permission.ORDERS_APPROVE)],
) -> Response:
    """Reject the order with a reason; it ends as REJECTED (已拒绝)."""
    arg = RejectOrderInput(
        approver=approver.name, role=ApproverRole(approver.role.value), reason=body.reason
    )
    return await commands.update(approver, order_no, OrderWorkflow.reject, arg)


@router.post("/{order_no}/payments", response_model=OrderView, responses=ERRORS)
async def record_payment(
    order_no: str,
    body: PaymentDetails,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.PAYMENTS_RECORD)],
) -> Response:
    """Record a payment (partial allowed; more than is outstanding is refused with 422)."""
    arg = PaymentInput(**body.model_dump(), recorded_by=principal.name)
    return await commands.update(principal, order_no, OrderWorkflow.pay, arg)


@router.patch("/{order_no}", response_model=OrderView, responses=ERRORS)
async def amend_order(
    order_no: str,
    body: Amendment,
    request: Request,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_AMEND)],
) -> Response:
    """修改: change the lines, the requested delivery date or the shipping address.

    200 with the new revision and its change record. New lines pass entry validation (422
    otherwise) and the approval rules run again: the order awaits approval at the level the new
    content needs, or goes on if none applies. 409 once goods have shipped (then: returns), and,
    for lines, once the order has payments (cancel it and enter a new one). A new delivery date
    (not before the company's today) moves the delivery deadline.
    """
    calendar: BusinessCalendar = request.app.state.calendar
    today = datetime.now(ZoneInfo(calendar.timezone)).date()
    arg = AmendOrderInput.model_validate(
        {**body.model_dump(exclude_unset=True), "requested_by": principal.name, "today": today}
    )
    return await commands.update(principal, order_no, OrderWorkflow.amend, arg)


@router.post("/{order_no}/short-close", response_model=OrderView, responses=ERRORS)
async def short_close_order(
    order_no: str,
    body: ShortClose,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_AMEND)],
) -> Response:
    """Sales closes a backorder: what has not shipped will not (production orders cancelled,
    stock released); the order is then SHIPPED with what left and settles for that."""
    arg = ShortCloseInput(reason=body.reason, by=principal.name)
    return await commands.update(principal, order_no, OrderWorkflow.short_close, arg)


@router.post("/{order_no}/hold", response_model=OrderView, responses=ERRORS)
async def hold_order(
    order_no: str,
    body: Hold,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_HOLD)],
) -> Response:
    """冻结: the order shows ON_HOLD, does nothing (payments are still accepted) and its
    deadlines pause. A `credit` hold is lifted by a payment that brings credit back in line."""
    arg = HoldInput(reason=body.reason, kind=body.kind, by=principal.name)
    return await commands.update(principal, order_no, OrderWorkflow.hold, arg)


@router.post("/{order_no}/release", response_model=OrderView, responses=ERRORS)
async def release_order(
    order_no: str,
    body: Release,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_HOLD)],
) -> Response:
    """Release re-checks credit (409 while a credit hold's check fails) and returns the order
    to where it was; its deadlines resume, later by the time it was held."""
    arg = ReleaseInput(comment=body.comment, by=principal.name)
    return await commands.update(principal, order_no, OrderWorkflow.release, arg)


@router.post("/{order_no}/cancel", response_model=OrderView, responses=ERRORS)
async def cancel_order(
    order_no: str,
    body: Cancellation,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_CANCEL)],
) -> Response:
    """取消: allowed until goods ship (then 409: request a return). Every step already done is
    undone in reverse: shipments withdrawn, production orders cancelled, payments refunded,
    invoices voided or credited, stock released. Answers with the CANCELLED order; asking
    again for a cancelled order answers the same."""
    arg = CancelOrderInput(reason_code=body.reason_code, comment=body.comment, by=principal.name)
    return await commands.update(
        principal, order_no, OrderWorkflow.cancel, arg, settled=OrderStatus.CANCELLED
    )
