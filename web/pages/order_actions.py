"""An order's actions from its page or the inbox: POST /app/orders/{order_no}/{action}.

CSRF checked, the form validated by the API's request body (422: each field's error beside
it), then the API's command path (`Commands.update`) under the form's idempotency key, so a
form sent twice runs once. A 409 (someone was faster, the order moved on) shows its message
with the fresh order; success goes back where the form came from."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.commands import Commands
from api.errors import ProblemError, field_path
from api.principal import Principal
from web.actions import BY_NAME, Sending, body_fields
from web.pages.orders import load_order, order_page
from web.render import problem_page
from web.session import form_of, require, safe_next, state

router = APIRouter()

IDEMPOTENCY_FIELD = "idempotency_key"
HIDDEN = {"csrf_token", IDEMPOTENCY_FIELD, "next"}


@router.post("/app/orders/{order_no}/{name}")
async def order_action(request: Request, order_no: str, name: str) -> Response:
    action = BY_NAME.get(name)
    if action is None:
        return Response("Not found", status_code=404)
    principal = await require(request, action.permission)
    form = await form_of(request, principal)
    found = state(request)
    values = {key: value for key, value in form.items() if key not in HIDDEN}
    errors: dict[str, str] = {}
    if any(item.kind == "shipment" for item in action.fields) and not form.get("shipment_id"):
        errors["shipment_id"] = "Choose a shipment."
    try:
        body = action.body.model_validate(body_fields(action, form, order_no))
    except ValidationError as exc:
        errors |= {field_path(error["loc"]): error["msg"] for error in exc.errors()}
    if errors:
        return await _again(request, principal, order_no, name, 422, None, errors, values)
    key = form.get(IDEMPOTENCY_FIELD, "")[:200] or None
    temporal = request.app.state.temporal
    timeout = timedelta(seconds=found.settings.command_timeout_seconds)
    commands = Commands(found.db, temporal, timeout, key)
    try:
        if action.perform is not None:
            sending = Sending(
                commands,
                found.db,
                temporal,
                found.settings,
                request.app.state.calendar,
                order_no,
                form,
                key,
            )
            await action.perform(sending, principal, body)
        else:
            assert action.build is not None
            await commands.update(
                principal,
                order_no,
                action.update,
                action.build(principal, body),
                settled=action.settled,
            )
    except ProblemError as exc:
        problem = exc.problem
        if problem.status not in (403, 409, 422):
            return problem_page(request, principal, exc)
        errors = {item.field: item.message for item in problem.errors or []}
        return await _again(
            request, principal, order_no, name, problem.status, problem.detail, errors, values
        )
    target = safe_next(form.get("next")) if form.get("next") else f"/app/orders/{quote(order_no)}"
    separator = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{separator}done={name}", status_code=303)


async def _again(
    request: Request,
    principal: Principal,
    order_no: str,
    name: str,
    status: int,
    message: str | None,
    errors: dict[str, str],
    values: dict[str, str],
) -> Response:
    """The order page as it is now, with the refused action's message and field errors."""
    try:
        order = await load_order(request, principal, order_no)
    except ProblemError as exc:
        return problem_page(request, principal, exc)
    return order_page(
        request,
        principal,
        order,
        status_code=status,
        message=message,
        failed=name,
        errors=errors,
        values=values,
    )
