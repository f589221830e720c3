"""Returns (退换货): the list (`/app/returns`, status filter, newest first; for the roles that
request, decide or handle returns) and the return page (`/app/returns/{return_no}`: its lines,
status, resolution, reason, decision, deadlines, timeline, linked order, and the steps the
signed-in person may take now).

Read through the API's own services (`store.returns.list_returns`; `api.orders_read.
current_return`, as `GET /returns/{return_no}`); the steps go through the API's command path
(`Commands.update_return`, as `POST /returns/{return_no}/...`) under the form's idempotency
key: a 409 shows its message with the fresh return, a 422 each field's error beside it."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.auth import visible_customers
from api.commands import Commands
from api.errors import ProblemError, field_path
from api.orders_read import current_return
from api.principal import Principal
from api.schemas import ReturnPublic
from domain.auth import Permission, allows
from domain.returns import ReturnStatus
from store import returns as returns_store
from web.render import problem_page, render
from web.return_actions import (
    RETURN_BY_NAME,
    available_return_actions,
    may_see_returns,
    return_body_fields,
    return_label,
    returned_skus,
)
from web.session import Page, form_of, require, state

router = APIRouter()
Reader = Annotated[Principal, Depends(Page(Permission.ORDERS_READ))]

PAGE_SIZE = 25
HIDDEN = {"csrf_token", "idempotency_key"}


async def returns_desk(request: Request) -> Principal:
    """A person who requests, decides or handles returns (a 403 page for the others, recorded
    as the API's 403 is, naming the permission that requests one)."""
    principal = await require(request, Permission.ORDERS_READ)
    if may_see_returns(principal):
        return principal
    return await require(request, Permission.RETURNS_REQUEST)  # raises Forbidden


Desk = Annotated[Principal, Depends(returns_desk)]


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


@router.get("/app/returns")
async def returns_list(request: Request, principal: Desk) -> Response:
    found = state(request)
    status = request.query_params.get("status", "")
    page = _page_number(request.query_params.get("page"))
    errors: dict[str, str] = {}
    if status and status not in ReturnStatus.__members__:
        errors["status"] = "Unknown status."
        status = ""
    rows, total = await returns_store.list_returns(
        found.db,
        status=status or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
        visible=await visible_customers(found.db, principal),
    )
    return render(
        request,
        "returns.html",
        principal,
        rows=rows,
        total=total,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters={"status": status},
        errors=errors,
        statuses=list(ReturnStatus),
        return_label=return_label,
    )


async def load_return(request: Request, principal: Principal, return_no: str) -> ReturnPublic:
    found = state(request)
    return await current_return(
        found.db, request.app.state.temporal, found.settings, return_no, principal
    )


def return_page(
    request: Request,
    principal: Principal,
    ret: ReturnPublic,
    *,
    status_code: int = 200,
    message: str | None = None,
    failed: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The return page; after a refused step: its message, the fresh return, and the step's
    form with what was typed and each field's error."""
    return render(
        request,
        "return.html",
        principal,
        status_code=status_code,
        ret=ret,
        actions=available_return_actions(ret, principal),
        skus=returned_skus(ret),
        # A replacement is dispatched and signed for on the warehouse page, as every shipment.
        may_dispatch=allows(principal.role, Permission.SHIPMENTS_DISPATCH),
        message=message,
        failed=failed,
        errors=errors or {},
        values=values or {},
        done=request.query_params.get("done"),
        return_label=return_label,
    )


@router.get("/app/returns/{return_no}")
async def return_detail(request: Request, return_no: str, principal: Reader) -> Response:
    try:
        ret = await load_return(request, principal, return_no)
    except ProblemError as exc:
        return problem_page(request, principal, exc)
    return return_page(request, principal, ret)


@router.post("/app/returns/{return_no}/{name}")
async def return_action(request: Request, return_no: str, name: str) -> Response:
    action = RETURN_BY_NAME.get(name)
    if action is None:
        return Response("Not found", status_code=404)
    principal = await require(request, action.permission)
    form = await form_of(request, principal)
    values = {key: value for key, value in form.items() if key not in HIDDEN}
    try:
        # A form sends text: the API's strict JSON types (a count is an integer) read it as such.
        body = action.body.model_validate(return_body_fields(action, form), strict=False)
    except ValidationError as exc:
        errors = {field_path(error["loc"]): error["msg"] for error in exc.errors()}
        return await _again(request, principal, return_no, name, 422, None, errors, values)
    found = state(request)
    commands = Commands(
        found.db,
        request.app.state.temporal,
        timedelta(seconds=found.settings.command_timeout_seconds),
        form.get("idempotency_key", "")[:200] or None,
    )
    try:
        await commands.update_return(
            principal, return_no, action.update, action.build(principal, body)
        )
    except ProblemError as exc:
        problem = exc.problem
        if problem.status not in (403, 409, 422):
            return problem_page(request, principal, exc)
        errors = {item.field: item.message for item in problem.errors or []}
        return await _again(
            request, principal, return_no, name, problem.status, problem.detail, errors, values
        )
    return RedirectResponse(f"/app/returns/{quote(return_no)}?done=return-{name}", status_code=303)


async def _again(
    request: Request,
    principal: Principal,
    return_no: str,
    name: str,
    status: int,
    message: str | None,
    errors: dict[str, str],
    values: dict[str, str],
) -> Response:
    """The return page as it is now, with the refused step's message and field errors."""
    try:
        ret = await load_return(request, principal, return_no)
    except ProblemError as exc:
        return problem_page(request, principal, exc)
    return return_page(
        request,
        principal,
        ret,
        status_code=status,
        message=message,
        failed=name,
        errors=errors,
        values=values,
    )
