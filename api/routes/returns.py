"""Returns and exchanges (退换货) after delivery, each its own workflow linked to its order."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Response

from api.auth import allowed
from api.bodies import IdPath, Inspection, ReturnApproval, ReturnRefusal, ReturnSubmission
from api.commands import CommandsDep
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemDetails
from api.orders_read import current_return
from api.principal import Principal
from api.return_entry import request_return as request_return_service
from api.schemas import ReturnPublic
from domain.auth import Permission
from domain.contract import ReturnUpdate
from domain.returns import (
    InspectReturnInput,
    ReceiveReturnInput,
    RefuseReturnInput,
    ReturnDecisionInput,
)

router = APIRouter(tags=["returns"])
log = structlog.get_logger(__name__)
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}
Decider = Annotated[Principal, allowed(Permission.RETURNS_DECIDE)]
Handler = Annotated[Principal, allowed(Permission.RETURNS_HANDLE)]


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
    entry = await request_return_service(db, temporal, settings, principal, order_no, body)
    if entry.created:
        response.headers["Location"] = f"/returns/{entry.ret.return_no}"
    else:
        response.status_code = 200
    return entry.ret


@router.get("/returns/{return_no}", responses=ERRORS)
async def get_return(
    return_no: IdPath,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_READ)],
) -> ReturnPublic:
    """The return's status and steps: live while it runs, from the read model after."""
    return await current_return(db, temporal, settings, return_no, principal)


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
