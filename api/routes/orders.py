"""Orders: submit, read, list, and the decisions and payments that move them on."""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
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

from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import (
    ProblemDetails,
    ProblemError,
    problems_from,
    refusal_to_problem,
    rpc_to_problem,
)
from api.routes.commands import CommandsDep
from domain.messages import (
    ApproveOrderInput,
    CancelOrderInput,
    HoldInput,
    OrderWorkflowInput,
    PaymentDetails,
    PaymentInput,
    RejectOrderInput,
    ReleaseInput,
    ShortCloseInput,
    SubmitOrderInput,
    SubmitOrderResult,
)
from domain.money import Money, round_money
from domain.orders import AmendOrderInput, OrderRequest, OrderView, Priority, workflow_id_for
from domain.statuses import OrderStatus
from store import queries
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/orders", tags=["orders"])
log = structlog.get_logger(__name__)

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (403, 404, 409, 422, 503)
}


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
    body: OrderRequest, response: Response, temporal: TemporalDep, db: DbDep, settings: SettingsDep
) -> OrderView:
    """Submit an order (录入). It runs entry validation and the approval rules at once.

    201 with the order's status; 200 with the existing order when the same number and body
    were submitted before; 409 when the number is taken by different content; 422 listing every
    problem when entry validation fails (the attempt is audited, and the number stays free).
    """
    order_no = body.order_no or new_order_no()
    request = body.model_copy(update={"order_no": order_no})
    fingerprint = request.fingerprint()
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    start = WithStartWorkflowOperation(
        OrderWorkflow.run,
        OrderWorkflowInput(order_no=order_no, request=request, fingerprint=fingerprint),
        id=workflow_id_for(order_no),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A number refused at entry (failed run) may be submitted again; a live or finished
        # order's number never starts a second workflow.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        static_summary=await _summary(db, request),
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
    except WorkflowAlreadyStartedError:
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await start.workflow_handle()  # the same refusal; read it so it is not left unread
        return await _finished_order(db, order_no, fingerprint, response)
    except WorkflowUpdateFailedError as exc:
        raise refusal_to_problem(exc, order_no) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return await _finished_order(db, order_no, fingerprint, response)
        raise rpc_to_problem(exc, order_no) from exc
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


async def _summary(db: DbDep, request: OrderRequest) -> str:
    """Order number, customer and total, for the workflow's row in the Temporal UI."""
    async with db.reader() as session:
        prices = await queries.price_of(session, {line.sku for line in request.lines})
    total = sum(
        (
            (line.unit_price if line.unit_price is not None else prices.get(line.sku, Decimal(0)))
            * line.quantity
            for line in request.lines
        ),
        Decimal(0),
    )
    return f"Order {request.order_no} · customer {request.customer_id} · total {round_money(total)}"


@router.get("", responses=ERRORS)
async def list_orders(
    db: DbDep,
    status: OrderStatus | None = None,
    customer_id: str | None = None,
    overdue: Annotated[
        bool | None, Query(description="Only orders with a breached deadline.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> OrderPage:
    """Orders from the read model, newest first."""
    rows, total = await queries.list_orders(
        db,
        status=status.value if status else None,
        customer_id=customer_id,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )
    items = [
        OrderSummary(
            order_no=row.order_no,
            status=OrderStatus(row.status),
            status_label=row.view.get("status_label", {}),
            customer_id=row.customer_id,
            total=row.total,
            priority=Priority(row.priority),
            entered_by=row.entered_by,
            overdue=row.overdue,
            escalation_level=row.escalation_level,
            received_at=row.received_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return OrderPage(items=items, total=total, limit=limit, offset=offset)


@router.get("/{order_no}", responses=ERRORS)
async def get_order(
    order_no: str, db: DbDep, temporal: TemporalDep, settings: SettingsDep
) -> OrderView:
    """Where the order is: live from its workflow while it runs, from the archive after."""
    return await current_order(db, temporal, settings, order_no)


async def current_order(
    db: DbDep, temporal: TemporalDep, settings: SettingsDep, order_no: str
) -> OrderView:
    """The order as it is now, with its returns."""
    record = await queries.get_order(db, order_no)
    if record is None:
        raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
    view = OrderView.model_validate(record.view)
    if not record.closed:
        try:
            handle = (await temporal.get()).get_workflow_handle(record.workflow_id)
            view = await handle.query(
                OrderWorkflow.view,
                rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
            )
        except (RPCError, ProblemError) as exc:
            # No worker or no Temporal: the read model is at most one step behind the workflow.
            log.warning("order_query_failed", order_no=order_no, error=str(exc))
    returns = await queries.returns_of(db, order_no)
    view.returns = [{"return_no": r.return_no, "status": r.status} for r in returns]
    view.return_status = returns[-1].status if returns else None
    return view


@router.post("/{order_no}/approve", responses=ERRORS)
async def approve_order(order_no: str, body: ApproveOrderInput, commands: CommandsDep) -> OrderView:
    """An approver's decision at their level (supervisor: approver_l1, manager: approver_l2)."""
    return await commands.update(order_no, OrderWorkflow.approve, body)


@router.post("/{order_no}/reject", responses=ERRORS)
async def reject_order(order_no: str, body: RejectOrderInput, commands: CommandsDep) -> OrderView:
    """Reject the order with a reason; it ends as REJECTED (已拒绝)."""
    return await commands.update(order_no, OrderWorkflow.reject, body)


@router.post("/{order_no}/payments", responses=ERRORS)
async def record_payment(order_no: str, body: PaymentDetails, commands: CommandsDep) -> OrderView:
    """Record a payment (partial allowed; more than is outstanding is refused with 422)."""
    return await commands.update(order_no, OrderWorkflow.pay, PaymentInput(**body.model_dump()))


@router.patch("/{order_no}", responses=ERRORS)
async def amend_order(order_no: str, body: AmendOrderInput, commands: CommandsDep) -> OrderView:
    """修改: change the lines, the requested delivery date or the shipping address.

    200 with the new revision and its change record. New lines pass entry validation (422
    otherwise) and the approval rules run again: the order awaits approval at the level the new
    content needs, or goes on if none applies. 409 once goods have shipped (then: returns), and,
    for lines, once the order is past approval. A new delivery date moves the delivery deadline.
    """
    return await commands.update(order_no, OrderWorkflow.amend, body)


@router.post("/{order_no}/short-close", responses=ERRORS)
async def short_close_order(
    order_no: str, body: ShortCloseInput, commands: CommandsDep
) -> OrderView:
    """Sales closes a backorder: what has not shipped will not (production orders cancelled,
    stock released); the order is then SHIPPED with what left and settles for that."""
    return await commands.update(order_no, OrderWorkflow.short_close, body)


@router.post("/{order_no}/hold", responses=ERRORS)
async def hold_order(order_no: str, body: HoldInput, commands: CommandsDep) -> OrderView:
    """冻结: the order shows ON_HOLD, does nothing (payments are still accepted) and its
    deadlines pause. A `credit` hold is lifted by a payment that brings credit back in line."""
    return await commands.update(order_no, OrderWorkflow.hold, body)


@router.post("/{order_no}/release", responses=ERRORS)
async def release_order(order_no: str, body: ReleaseInput, commands: CommandsDep) -> OrderView:
    """Release re-checks credit (409 while a credit hold's check fails) and returns the order
    to where it was; its deadlines resume, later by the time it was held."""
    return await commands.update(order_no, OrderWorkflow.release, body)


@router.post("/{order_no}/cancel", responses=ERRORS)
async def cancel_order(
    order_no: str, body: CancelOrderInput, db: DbDep, commands: CommandsDep
) -> OrderView:
    """取消: allowed until goods ship (then 409: request a return). Every step already done is
    undone in reverse: shipments withdrawn, production orders cancelled, payments refunded,
    invoices voided or credited, stock released. Answers with the CANCELLED order; asking
    again for a cancelled order answers the same."""
    record = await queries.get_order(db, order_no)
    if record is not None and record.closed and record.status == OrderStatus.CANCELLED:
        return OrderView.model_validate(record.view)
    return await commands.update(order_no, OrderWorkflow.cancel, body)
