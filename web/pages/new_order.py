"""New order (`/app/orders/new`): customer and product pickers from master data, lines added
and removed in the page, prices from the price list (editable: a lower price is a discount the
approval rules judge), totals computed as one types (web/static/new_order.js).

Sent through the API's own entry service (`api.order_entry.submit`, as `POST /orders`):
validated by its request body, then by entry validation; every 422 shows beside its field.
The form carries its order number, made when the page is drawn: the same form sent twice is
one order (the API answers the first), and a refused one keeps its number free to fix."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api.auth import visible_customers
from api.bodies import OrderSubmission
from api.errors import ProblemError, field_path
from api.order_entry import new_order_no, submit
from api.principal import Principal
from domain.auth import Permission
from domain.orders import Priority
from store import queries
from web.render import problem_page, render
from web.session import Page, form_of, require, state

router = APIRouter()
Creator = Annotated[Principal, Depends(Page(Permission.ORDERS_CREATE))]

MAX_ROWS = 500
OPTIONAL = ("requested_delivery_date", "payment_terms", "shipping_address", "notes")
LINE_ERROR = re.compile(r"^lines\[(\d+)\](.*)$")


def rows_of(form: dict[str, str]) -> list[dict[str, str]]:
    """The form's line rows in page order (`sku_<i>`, `qty_<i>`, `price_<i>`), blank rows left
    out, each with the row number `i` it came from."""
    numbers = sorted(
        {int(key[4:]) for key in form if key.startswith("sku_") and key[4:].isdigit()}
    )[:MAX_ROWS]
    rows = []
    for n in numbers:
        row = {
            "row": str(n),
            "sku": form.get(f"sku_{n}", "").strip(),
            "quantity": form.get(f"qty_{n}", "").strip(),
            "unit_price": form.get(f"price_{n}", "").strip(),
        }
        if row["sku"] or row["quantity"]:
            rows.append(row)
    return rows


def submission(form: dict[str, str], rows: list[dict[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_no": form.get("order_no", "").strip() or None,
        "customer_id": form.get("customer_id", "").strip(),
        "priority": form.get("priority") or Priority.NORMAL.value,
        "lines": [
            {
                "sku": row["sku"],
                "quantity": row["quantity"],
                **({"unit_price": row["unit_price"]} if row["unit_price"] else {}),
            }
            for row in rows
        ],
    }
    for name in OPTIONAL:
        value = form.get(name, "")
        if value.strip():
            body[name] = value if name == "notes" else value.strip()
    return body


def on_rows(errors: dict[str, str], rows: list[dict[str, str]]) -> dict[str, str]:
    """`lines[k].quantity` of the k-th line sent → `line:<row>.quantity` of its row."""
    placed: dict[str, str] = {}
    for key, message in errors.items():
        found = LINE_ERROR.match(key)
        if found and int(found.group(1)) < len(rows):
            key = f"line:{rows[int(found.group(1))]['row']}{found.group(2) or '.sku'}"
        placed[key] = message
    return placed


async def _page(
    request: Request,
    principal: Principal,
    *,
    form: dict[str, str] | None = None,
    rows: list[dict[str, str]] | None = None,
    errors: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    found = state(request)
    visible = await visible_customers(found.db, principal)
    customers = await queries.list_customers(found.db, limit=1000, offset=0, visible=visible)
    products = await queries.list_products(found.db, limit=1000, offset=0)
    form = form or {"order_no": new_order_no()}
    return render(
        request,
        "new_order.html",
        principal,
        status_code=status_code,
        form=form,
        rows=rows or [{"row": "0", "sku": "", "quantity": "1", "unit_price": ""}],
        errors=errors or {},
        message=message,
        customers=customers,
        products=products,
        priorities=[priority.value for priority in Priority],
    )


@router.get("/app/orders/new")
async def new_order(request: Request, principal: Creator) -> Response:
    return await _page(request, principal)


@router.post("/app/orders/new")
async def enter(request: Request) -> Response:
    principal = await require(request, Permission.ORDERS_CREATE)
    form = await form_of(request, principal)
    rows = rows_of(form)
    found = state(request)
    try:
        # A form sends text: the API's strict JSON types (a count is an integer) read it as such.
        body = OrderSubmission.model_validate(submission(form, rows), strict=False)
    except ValidationError as exc:
        errors = {field_path(error["loc"]): error["msg"] for error in exc.errors()}
        return await _page(
            request, principal, form=form, rows=rows, errors=on_rows(errors, rows), status_code=422
        )
    try:
        entry = await submit(found.db, request.app.state.temporal, found.settings, principal, body)
    except ProblemError as exc:
        problem = exc.problem
        if problem.status not in (403, 409, 422):
            return problem_page(request, principal, exc)
        errors = {item.field: item.message for item in problem.errors or []}
        return await _page(
            request,
            principal,
            form=form,
            rows=rows,
            errors=on_rows(errors, rows),
            message=problem.detail,
            status_code=problem.status,
        )
    return RedirectResponse(f"/app/orders/{entry.order.order_no}?done=submit", status_code=303)
