"""Requesting a return (退换货) of an order's delivered goods: its own workflow, started once
per return number. A service, not a router: `POST /orders/{order_no}/returns` and the web app's
order page both call it."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from api.bodies import ReturnSubmission
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import FieldProblem, ProblemError, rpc_to_problem
from api.orders_read import current_order
from api.principal import Principal
from api.record import outcome_of, record_command
from api.schemas import ReturnPublic, return_public
from domain import returns as domain_returns
from domain.contract import RETURN_WORKFLOW, VIEW_QUERY, return_workflow_id
from domain.orders import OrderView
from domain.returns import (
    ReturnLineView,
    ReturnStatus,
    ReturnView,
    ReturnWorkflowInput,
    allocate_return,
)
from domain.statuses import OrderStatus
from payload_codec import UiText
from store import queries
from store.db import in_session
from store.tables import ReturnRecord

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReturnEntry:
    """The return, and whether this request created it (else: the same request again)."""

    ret: ReturnPublic
    created: bool


def _fingerprint(body: ReturnSubmission, order_no: str) -> str:
    text = order_no + body.model_dump_json(exclude={"return_no"}, exclude_none=True)
    return hashlib.sha256(text.encode()).hexdigest()


async def request_return(
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Principal,
    order_no: str,
    body: ReturnSubmission,
) -> ReturnEntry:
    """Start the return of `body`'s delivered goods. 409 before delivery (cancel instead, until
    goods ship) or for a return number used by a different return; 422 for more than was
    delivered and not yet returned. The same `return_no` and body again: the existing return.
    A refused request is recorded, as every refused command is."""
    try:
        return await _request_return(db, temporal, settings, principal, order_no, body)
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
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Principal,
    order_no: str,
    body: ReturnSubmission,
) -> ReturnEntry:
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
        return _same_return(existing.fingerprint, fingerprint, existing.view)
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
            return _same_return(existing.fingerprint, fingerprint, existing.view)
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
            fingerprint if same else "", fingerprint, current.model_dump(mode="json")
        )
    log.info("return_requested", order_no=order_no, return_no=return_no)
    await record_command(
        db, principal, "request_return", "ok", order_no=order_no, detail={"return_no": return_no}
    )
    return ReturnEntry(return_public(view), created=True)


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


def _same_return(stored: str, fingerprint: str, view: dict[str, Any]) -> ReturnEntry:
    if stored != fingerprint:
        raise ProblemError(
            409, "That return number is already used for a different return", type_="Conflict"
        )
    return ReturnEntry(return_public(ReturnView.model_validate(view)), created=False)
