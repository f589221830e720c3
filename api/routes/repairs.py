"""`POST /orders/{order_no}/repair`: ops' way back when someone terminated an order's workflow.

A terminated run runs no code of ours, so nothing undid what the order held: stock reserved,
a pick list open, an invoice asking to be paid. Temporal says whether the run is over and how
it ended; the database's records say what is open (`store.repair`). Asking Temporal first
means a running order is never repaired under its own workflow's feet.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import structlog
from fastapi import APIRouter
from pydantic import BaseModel, Field
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.auth import allowed
from api.bodies import Body, IdPath
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemDetails, ProblemError, rpc_to_problem
from api.principal import Principal
from api.record import outcome_of, record_command
from domain.auth import Permission
from domain.money import Money
from domain.orders import workflow_id_for
from domain.statuses import OrderStatus
from store import queries, repair

router = APIRouter(tags=["ops"])
log = structlog.get_logger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}

# How a run may have ended for the order to need repair: ended from outside, no saga ran.
# CANCELED too: before a Temporal cancellation became a business cancellation it ended the run
# at once, with no saga; since, the saga closes the order's row, and the store refuses those.
REPAIRABLE = {
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
}


class RepairRequest(Body):
    """`POST /orders/{order_no}/repair`: why (who comes from the token)."""

    reason: str = Field(min_length=1, max_length=500)


class RepairPublic(BaseModel):
    """What the repair undid and what it left for people: the same answer every time."""

    order_no: str
    run_status: str = Field(description="How the order's workflow run ended in Temporal.")
    status: OrderStatus
    reason_code: str = Field(description="The order's cancellation reason: terminated_repaired.")
    repaired_by: str
    repaired_at: datetime
    reason: str
    shipments_withdrawn: list[str] = Field(description="Pick lists that were still `ready`.")
    production_orders_cancelled: list[str]
    invoices_voided: list[str] = Field(description="Issued, nothing paid, no goods shipped.")
    reservations_released: list[str] = Field(description="`SKUxN` given back to stock.")
    shipments_shipped: list[str] = Field(description="Goods that left: they stay shipped.")
    invoices_left_open: list[str] = Field(
        description="Invoices with payments, or billing shipped goods: finance settles them."
    )
    payments: list[str] = Field(description="`id: amount` of every payment: not refunded here.")
    paid: Money
    refunded: Money


def refusal(status: WorkflowExecutionStatus | None) -> str | None:
    """Why a run in `status` is not the repair's to mend (None: it is)."""
    if status in REPAIRABLE:
        return None
    if status is WorkflowExecutionStatus.RUNNING:
        return "its workflow is running: use POST /cancel, which runs the saga"
    if status is WorkflowExecutionStatus.COMPLETED:
        return "its workflow completed: the order ended by its own process"
    name = status.name if status is not None else "unknown"
    return f"its workflow is {name}, not terminated, timed out, failed or cancelled"


@router.post("/orders/{order_no}/repair", responses=ERRORS)
async def repair_order(
    order_no: IdPath,
    body: RepairRequest,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_REPAIR)],
) -> RepairPublic:
    """Mend an order whose workflow was terminated (or timed out, or failed): its pick lists
    still `ready` are withdrawn, planned production orders cancelled, unpaid invoices voided
    (none once goods have shipped: those bill goods the customer has) and its reserved stock
    released, in one transaction; the order is closed as CANCELLED with reason
    `terminated_repaired`, and the repair is on the audit log with who, why and what it undid.

    Money paid is not refunded: the answer lists the payments and the invoices left open for
    finance. Goods that left stay shipped. 409 while the workflow runs (cancel it with
    `POST /cancel` instead), or when it ended by itself (completed, cancelled). Repairing again
    undoes nothing more and answers the same.
    """
    try:
        return await _repair(order_no, body, db, temporal, settings, principal)
    except ProblemError as exc:  # a repair done is on the record as the order's own entry
        await record_command(
            db,
            principal,
            "repair",
            outcome_of(exc.problem.status),
            order_no=order_no,
            detail={"detail": exc.problem.detail},
        )
        raise


async def _repair(
    order_no: str,
    body: RepairRequest,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Principal,
) -> RepairPublic:
    structlog.contextvars.bind_contextvars(order_no=order_no, workflow_id=workflow_id_for(order_no))
    keys = await queries.order_keys(db, order_no)
    if keys is None:
        raise ProblemError(404, f"Order {order_no} not found", order_no=order_no)
    try:
        handle = (await temporal.get()).get_workflow_handle(keys.workflow_id)
        described = await handle.describe(
            rpc_timeout=timedelta(seconds=settings.command_timeout_seconds)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            # Past the namespace's retention, or another namespace: not proven over, so left.
            raise ProblemError(
                409,
                f"Temporal has no workflow {keys.workflow_id}: cannot tell whether it ended",
                order_no=order_no,
                type_="Conflict",
            ) from exc
        raise rpc_to_problem(exc, order_no) from exc
    why = refusal(described.status)
    if why is not None:
        raise ProblemError(
            409, f"Order {order_no} needs no repair: {why}", order_no=order_no, type_="Conflict"
        )
    assert described.status is not None  # a repairable status
    try:
        record = await repair.repair_order(
            db,
            order_no,
            run_status=described.status.name,
            by=principal.name,
            role=principal.role.value,
            source=principal.caller.source,
            reason=body.reason,
            at=datetime.now(UTC),
        )
    except repair.RepairRefused as exc:
        raise ProblemError(exc.status, exc.detail, order_no=order_no) from exc
    log.warning(
        "order_repaired",
        run_status=record.run_status,
        released=record.reservations_released,
        withdrawn=record.shipments_withdrawn,
        voided=record.invoices_voided,
        paid=str(record.paid),
    )
    return RepairPublic.model_validate(record, from_attributes=True)
