"""Entering an order: its workflow started with the submit update in one call (update-with-
start), idempotent by order number. A service, not a router: `POST /orders` and the web app's
new-order page call `submit`."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import structlog
from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import in_scope
from api.bodies import OrderSubmission
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemError, problems_from, refusal_to_problem, rpc_to_problem
from api.principal import Principal
from api.record import outcome_of, record_command
from domain.auth import Permission
from domain.contract import (
    CUSTOMER_ID_ATTRIBUTE,
    ORDER_STATUS_ATTRIBUTE,
    ORDER_WORKFLOW,
    OrderUpdate,
)
from domain.messages import OrderWorkflowInput, SubmitOrderInput, SubmitOrderResult
from domain.money import round_money
from domain.orders import OrderRequest, OrderView, workflow_id_for
from domain.statuses import OrderStatus
from payload_codec import UiText
from store import queries

log = structlog.get_logger(__name__)

# The search attributes an order starts with (the workflow upserts them as it moves on).
ORDER_STATUS = SearchAttributeKey.for_keyword(ORDER_STATUS_ATTRIBUTE)
CUSTOMER_ID = SearchAttributeKey.for_keyword(CUSTOMER_ID_ATTRIBUTE)


@dataclass(frozen=True)
class Entry:
    """What entering an order came to: the order, whether this request created it, and whether
    it is an ended order's archived copy (the same body submitted again)."""

    order: OrderView
    created: bool
    archived: bool = False


def new_order_no() -> str:
    return f"SO-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4).upper()}"


async def submit(
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Principal,
    body: OrderSubmission,
) -> Entry:
    """Enter `body` as `principal` (numbered when it has no number): 403 for a customer outside
    a sales rep's own, else as `enter_order`. A refusal is recorded on the command log (an
    accepted order records its own receipt)."""
    order_no = body.order_no or new_order_no()
    try:
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
        return await enter_order(db, temporal, settings, principal, request)
    except ProblemError as exc:
        await record_command(
            db,
            principal,
            "submit",
            outcome_of(exc.problem.status),
            order_no=order_no,
            detail={"detail": exc.problem.detail},
        )
        raise


async def enter_order(
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Principal,
    request: OrderRequest,
) -> Entry:
    """Start the order's workflow and submit `request` to it. 409 for a number taken by
    different content; 422 listing every problem when entry validation fails."""
    order_no = request.order_no
    assert order_no is not None  # the route numbers every order it enters
    fingerprint = request.fingerprint()
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    summary = await _summary(db, request)
    # A live order's number attaches to its run (USE_EXISTING); one whose run ended never
    # starts a second, unless that run was a refused entry (failed before the
    # entry-refused-completes patch, completed as INVALID since): its number stays free.
    reuse = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY
    while True:
        start: WithStartWorkflowOperation[Any, OrderView] = WithStartWorkflowOperation(
            ORDER_WORKFLOW,
            OrderWorkflowInput(
                order_no=order_no, request=request, fingerprint=fingerprint, caller=principal.caller
            ),
            id=workflow_id_for(order_no),
            result_type=OrderView,
            task_queue=settings.task_queue,
            task_timeout=timedelta(seconds=settings.workflow_task_timeout_seconds),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=reuse,
            static_summary=summary,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(ORDER_STATUS, OrderStatus.RECEIVED.value),
                    SearchAttributePair(CUSTOMER_ID, request.customer_id),
                ]
            ),
        )
        try:
            client = await temporal.get()
            result: SubmitOrderResult = await client.execute_update_with_start_workflow(
                OrderUpdate.SUBMIT.value,
                SubmitOrderInput(fingerprint=fingerprint),
                start_workflow_operation=start,
                result_type=SubmitOrderResult,
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
            return await _finished_order(db, order_no, fingerprint)
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
    log.info("order_submitted", created=result.created, status=order.status)
    return Entry(order=order, created=result.created)


async def _settle(start: WithStartWorkflowOperation[Any, Any]) -> None:
    """Read the start's own outcome after a failed update-with-start (the same error), so it
    is not left unread; the update's error is the one that answers."""
    with contextlib.suppress(WorkflowAlreadyStartedError, RPCError):
        await start.workflow_handle()


async def _finished_order(db: DbDep, order_no: str, fingerprint: str) -> Entry:
    """The number belongs to an order whose workflow has ended: same body → that order."""
    record = await queries.get_order(db, order_no)
    if record is None or record.fingerprint != fingerprint:
        raise ProblemError(
            409,
            f"Order number {order_no} was already used for a different order",
            order_no=order_no,
            type_="Conflict",
        )
    return Entry(order=OrderView.model_validate(record.view), created=False, archived=True)


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
