"""An order's actions from its page or the inbox: POST /app/orders/{order_no}/{action}.

CSRF checked, the form validated by the API's request body (422: each field's error beside
it), then the API's command path (`Commands.update`) under the form's idempotency key, so a
form sent twice runs once. A 409 (someone was faster, the order moved on) shows its message
with the fresh order; success goes back where the form came from."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.bodies import Amendment, ReturnSubmission
from api.commands import Commands
from api.errors import ProblemError, field_path
from api.principal import Principal
from web.actions import BY_NAME, Action, Sending
from web.pages.orders import load_order, order_page
from web.render import problem_page
from web.session import form_of, require, safe_next, state

router = APIRouter()

IDEMPOTENCY_FIELD = "idempotency_key"
HIDDEN = {"csrf_token", IDEMPOTENCY_FIELD, "next"}
MAX_ADDED = 500  # an order's lines at most (the API's body)


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
        # A form sends text: the API's strict JSON types (a count is an integer) read it as such.
        body = action.body.model_validate(body_fields(action, form, order_no), strict=False)
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
    return await order_page(
        request,
        principal,
        order,
        status_code=status,
        message=message,
        failed=name,
        errors=errors,
        values=values,
        added=added_lines(values) if name == "amend" else [],
    )


def added_lines(form: dict[str, str]) -> list[dict[str, str]]:
    """An amendment's new lines in page order (`add_sku_<k>`, `add_qty_<k>`, `add_price_<k>`:
    a product, its quantity, a price or none for the price list), blank rows left out."""
    numbers = sorted(
        int(key[8:]) for key in form if key.startswith("add_sku_") and key[8:].isdigit()
    )[:MAX_ADDED]
    rows = [
        {
            "row": str(n),
            "sku": form.get(f"add_sku_{n}", "").strip(),
            "quantity": form.get(f"add_qty_{n}", "").strip(),
            "unit_price": form.get(f"add_price_{n}", "").strip(),
        }
        for n in numbers
    ]
    return [row for row in rows if row["sku"] or row["quantity"]]


def body_fields(action: Action, form: dict[str, str], order_no: str = "") -> dict[str, Any]:
    """The request body the form stands for: its fields (an empty optional field is absent,
    the API's null; a shipment names the target, not the body) and, for a lines field, each
    line whose quantity was given (`qty_<line_no>`, with `sku_<line_no>`) — for an amendment
    only when a quantity changed (`was_<line_no>`) or a line was added (`add_sku_<k>`, see
    `added_lines`), and then all of them, at their prices, the added ones after them."""
    values: dict[str, Any] = {
        item.name: form[item.name].strip() if item.kind != "textarea" else form[item.name]
        for item in action.fields
        if item.kind not in ("lines", "shipment") and form.get(item.name, "").strip()
    }
    if any(item.kind == "lines" for item in action.fields):
        numbers = sorted(
            int(key[4:]) for key in form if key.startswith("sku_") and key[4:].isdigit()
        )
        given = [n for n in numbers if form.get(f"qty_{n}", "").strip()]
        if action.body is Amendment:
            added = added_lines(form)
            changed = any(form.get(f"qty_{n}", "").strip() != form.get(f"was_{n}") for n in given)
            if changed or added:
                values["lines"] = [
                    {
                        "sku": form[f"sku_{n}"],
                        "quantity": form.get(f"qty_{n}", "").strip() or form.get(f"was_{n}", ""),
                        "unit_price": form.get(f"price_{n}") or None,
                    }
                    for n in numbers
                ] + [
                    {
                        "sku": row["sku"],
                        "quantity": row["quantity"],
                        "unit_price": row["unit_price"] or None,
                    }
                    for row in added
                ]
        else:
            values["lines"] = [
                {"sku": form[f"sku_{n}"], "quantity": form[f"qty_{n}"].strip()}
                for n in given
                if form[f"qty_{n}"].strip() != "0"
            ]
    if action.body is ReturnSubmission and form.get("idempotency_key"):
        # The return's number from the form's key: the form sent twice is one return.
        key = "".join(ch for ch in form["idempotency_key"] if ch.isalnum())[:10].upper()
        values["return_no"] = f"RT-{order_no[:40]}-{key}"
    return values
