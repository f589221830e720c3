"""Returns and exchanges (退换货) after delivery, each its own workflow linked to its order."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Response
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.auth import allowed, in_scope
from api.bodies import IdPath, Inspection, ReturnApproval, ReturnRefusal, ReturnSubmission
from api.commands import CommandsDep
from api.deps import DbDep, SettingsDep, TemporalConnection, TemporalDep
from api.errors import FieldProblem, ProblemDetails, ProblemError, rpc_to_problem
from api.orders_read import current_order
from api.principal import Principal
from api.record import outcome_of, record_command
from api.schemas import ReturnPublic, return_public
from domain import returns as domain_returns
from domain.auth import Permission
from domain.contract import RETURN_WORKFLOW, VIEW_QUERY, ReturnUpdate, return_workflow_id
from domain.orders import OrderView
from domain.returns import (
    InspectReturnInput,
    ReceiveReturnInput,
    RefuseReturnInput,
    ReturnDecisionInput,
    ReturnLineView,
    ReturnStatus,
    ReturnView,
    ReturnWorkflowInput,
    allocate_return,
)
from domain.statuses import OrderStatus
from payload_codec import UiText
from settings import Settings
from store import queries
from store.db import Database, in_session
from store.tables import ReturnRecord

router = APIRouter(tags=["returns"])
log = structlog.get_logger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}
Decider = Annotated[Principal, allowed(Permission.RETURNS_DECIDE)]
Handler = Annotated[Principal, allowed(Permission.RETURNS_HANDLE)]


def _fingerprint(body: ReturnSubmission, order_no: str) -> str:
    text = order_no + body.model_dump_json(exclude={"return_no"}, exclude_none=True)
    return hashlib.sha256(text.encode()).hexdigest()


@router.post("/orders/{order_no}/returns", status_code=201, responses=ERRORS)
async def request_return(
    order_no: IdPath,
    body: ReturnSubmission,
    response: Response,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.RETURNS_REQUEST)],
) -> ReturnPublic:
    """退换货: after delivery, return goods for a refund or a replacement.

    The request must be answered within the after-sales SLA (escalates like every deadline).
    409 before delivery (cancel instead, until goods ship); 422 for more than was delivered
    and not yet returned. The same `return_no` and body again answers the existing return.
    A refused request is recorded, as every refused command is.
    """
    try:
        return await _request_return(order_no, body, response, db, temporal, settings, principal)
    except ProblemError as exc:
        detail = {"detail": exc.problem.detail}
        await record_command(
            db,
            principal,
            "request_return",
            outcome_of(exc.problem.status),
            order_no=order_no,
            detail=detail if body.return_no is None else {"return_no": body.return_no} | detail,
        )
        raise


async def _request_return(
    order_no: str,
    body: ReturnSubmission,
    response: Response,
    db: Database,
    temporal: TemporalConnection,
    settings: Settings,
    principal: Principal,
) -> ReturnPublic:
    order = await current_order(db, temporal, settings, order_no, principal)
    delivered = any(line.delivered_quantity for line in order.lines)
    if order.status not in RETURNABLE or not delivered:
        raise ProblemError(
            409,
            f"Order {order_no} is {order.status}: returns start once goods are delivered (签收); "
            "until goods ship it can be cancelled",
            order_no=order_no,
            type_="InvalidState",
        )
    return_no = body.return_no or f"RT-{order_no}-{secrets.token_hex(3).upper()}"
    fingerprint = _fingerprint(body, order_no)
    existing = await queries.get_return(db, return_no)
    if existing is not None:
        return _same_return(existing.fingerprint, fingerprint, existing.view, response)
    customer = await queries.get_customer(db, order.customer_id)
    client = await temporal.get()
    # One return request of an order at a time, from the check of what is left to return to
    # the new return's row: two at once must not both take the last units back. The write
    # transaction (SQLite's write lock, PostgreSQL's row lock on the order) is held across the
    # workflow's start (an RPC that does not wait for a worker), never across a query: a new
    # return's worker writes to the same database before it answers.
    started_elsewhere = False
    async with db.writer() as session:
        await in_session(session, queries.lock_order, order_no)
        # The same request sent twice at once: the first one's row is committed by now.
        existing = await session.get(ReturnRecord, return_no)
        if existing is not None:
            return _same_return(existing.fingerprint, fingerprint, existing.view, response)
        lines = _returnable(order, body, await queries.returns_in(session, order_no))
        now = datetime.now(UTC)
        view = ReturnView(
            return_no=return_no,
            workflow_id=return_workflow_id(return_no),
            order_no=order_no,
            customer_id=order.customer_id,
            customer_group=customer.customer_group if customer else None,
            status=ReturnStatus.REQUESTED,
            status_label=ReturnStatus.REQUESTED.labels,
            resolution=body.resolution,
            reason=body.reason,
            requested_by=principal.name,
            lines=lines,
            requested_at=now,
            updated_at=now,
        )
        try:
            await client.start_workflow(
                RETURN_WORKFLOW,
                ReturnWorkflowInput(view=view, fingerprint=fingerprint),
                id=view.workflow_id,
                result_type=ReturnView,
                task_queue=settings.task_queue,
                task_timeout=timedelta(seconds=settings.workflow_task_timeout_seconds),
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=UiText(
                    f"Return {return_no} of order {order_no} · {body.resolution}"
                ),
            )
        except WorkflowAlreadyStartedError:
            # Started by a request whose row did not commit (it failed or is still running
            # elsewhere): the workflow is the truth; ask it once the turn is given back.
            started_elsewhere = True
        except RPCError as exc:
            raise rpc_to_problem(exc, order_no) from exc
        else:
            # Its row until the workflow's first save replaces it (only forwards, by `seq`).
            session.add(
                ReturnRecord(
                    return_no=return_no,
                    order_no=order_no,
                    customer_id=order.customer_id,
                    status=view.status,
                    fingerprint=fingerprint,
                    seq=-1,
                    requested_at=now,
                    updated_at=now,
                    view=view.model_dump(mode="json"),
                )
            )
    if started_elsewhere:
        try:
            current: ReturnView = await client.get_workflow_handle(view.workflow_id).query(
                VIEW_QUERY, result_type=ReturnView
            )
        except RPCError as exc:
            raise rpc_to_problem(exc, order_no, return_no=return_no) from exc
        # The workflow knows its own fingerprint only through the read model; compare bodies.
        same = current.lines == view.lines and current.reason == view.reason
        return _same_return(
            fingerprint if same else "", fingerprint, current.model_dump(mode="json"), response
        )
    response.headers["Location"] = f"/returns/{return_no}"
    log.info("return_requested", order_no=order_no, return_no=return_no)
    await record_command(
        db, principal, "request_return", "ok", order_no=order_no, detail={"return_no": return_no}
    )
    return return_public(view)


# Delivered goods can come back once the order is past shipment; a partial order's delivered
# shipments even while the rest is still on its way.
RETURNABLE = {
    OrderStatus.IN_PRODUCTION,
    OrderStatus.READY_TO_SHIP,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
}


def _returnable(
    order: OrderView, body: ReturnSubmission, earlier: Sequence[ReturnRecord]
) -> list[ReturnLineView]:
    """The return's lines, if each is within what was delivered and not yet returned (422);
    each at the price charged on the order line its units come from (`allocate_return`)."""
    taken = [
        line
        for record in earlier
        if record.status != ReturnStatus.REFUSED
        for line in ReturnView.model_validate(record.view).lines
    ]
    wanted = [
        domain_returns.ReturnLineRequest(sku=line.sku, quantity=line.quantity)
        for line in body.lines
    ]
    lines, problems = allocate_return(order.lines, taken, wanted)
    if problems:
        raise ProblemError(
            422,
            "The return does not match what was delivered",
            errors=[FieldProblem(field=field, message=message) for field, message in problems],
            order_no=order.order_no,
        )
    return lines


def _same_return(
    stored: str, fingerprint: str, view: dict[str, Any], response: Response
) -> ReturnPublic:
    if stored != fingerprint:
        raise ProblemError(
            409, "That return number is already used for a different return", type_="Conflict"
        )
    response.status_code = 200
    return return_public(ReturnView.model_validate(view))


@router.get("/returns/{return_no}", responses=ERRORS)
async def get_return(
    return_no: IdPath,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_READ)],
) -> ReturnPublic:
    """The return's status and steps: live while it runs, from the read model after."""
    record = await queries.get_return(db, return_no)
    if record is not None and not await in_scope(db, principal, record.customer_id):
        raise ProblemError(404, f"Return {return_no} not found")
    if principal.scoped and record is None:
        raise ProblemError(404, f"Return {return_no} not found")
    if record is not None and record.view.get("closed"):
        return return_public(ReturnView.model_validate(record.view))
    try:
        handle = (await temporal.get()).get_workflow_handle(return_workflow_id(return_no))
        view: ReturnView = await handle.query(
            VIEW_QUERY,
            result_type=ReturnView,
            rpc_timeout=timedelta(seconds=settings.command_timeout_seconds),
        )
        return return_public(view)
    except (RPCError, ProblemError) as exc:
        if record is None:
            raise ProblemError(404, f"Return {return_no} not found") from exc
        return return_public(ReturnView.model_validate(record.view))


@router.post("/returns/{return_no}/approve", responses=ERRORS)
async def approve_return(
    return_no: IdPath,
    body: ReturnApproval,
    commands: CommandsDep,
    principal: Decider,
) -> ReturnPublic:
    arg = ReturnDecisionInput(comment=body.comment, by=principal.name)
    return await commands.update_return(principal, return_no, ReturnUpdate.APPROVE, arg)


@router.post("/returns/{return_no}/refuse", responses=ERRORS)
async def refuse_return(
    return_no: IdPath,
    body: ReturnRefusal,
    commands: CommandsDep,
    principal: Decider,
) -> ReturnPublic:
    arg = RefuseReturnInput(reason=body.reason, by=principal.name)
    return await commands.update_return(principal, return_no, ReturnUpdate.REFUSE, arg)


@router.post("/returns/{return_no}/receive", responses=ERRORS)
async def receive_return(
    return_no: IdPath,
    commands: CommandsDep,
    principal: Handler,
) -> ReturnPublic:
    """The warehouse received the returned goods."""
    arg = ReceiveReturnInput(by=principal.name)
    return await commands.update_return(principal, return_no, ReturnUpdate.RECEIVE, arg)


@router.post("/returns/{return_no}/inspect", responses=ERRORS)
async def inspect_return(
    return_no: IdPath,
    body: Inspection,
    commands: CommandsDep,
    principal: Handler,
) -> ReturnPublic:
    """Quality inspection: accepted goods are restocked, then credited and refunded or
    replaced with a new shipment."""
    arg = InspectReturnInput(**body.model_dump(), by=principal.name)
    return await commands.update_return(principal, return_no, ReturnUpdate.INSPECT, arg)
