"""Orders: the list (search, filters, newest first, paginated) and the order page (everything
about one order, its live deadlines, and the actions the signed-in person may take now).

Read through the API's own services: `store.queries.list_orders` (as `GET /orders`) and
`api.orders_read.current_order` (as `GET /orders/{order_no}`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api.auth import visible_customers
from api.confirmation_document import confirmation_of, render_html
from api.errors import ProblemError
from api.orders_read import current_order
from api.principal import Principal
from api.schemas import OrderPublic, order_public
from domain.auth import Permission
from domain.orders import DeadlineView
from domain.statuses import DeadlineStatus, OrderStatus
from store import queries, worklists
from web.actions import available_actions
from web.i18n import Translate
from web.render import problem_page, render
from web.return_actions import return_label
from web.session import Page, state

router = APIRouter()
Reader = Annotated[Principal, Depends(Page(Permission.ORDERS_READ))]

PAGE_SIZE = 25
PRODUCT_LIMIT = 1000  # the amend form's product picker (as the new order page's)
OPEN_DEADLINES = {DeadlineStatus.ON_TRACK, DeadlineStatus.AT_RISK, DeadlineStatus.BREACHED}
# What an order waits for, as the workflow says it (English), with an order's own ids after.
WAITING_PREFIXES = ("dispatch of shipment ", "dispatch of ", "production orders ")


def waiting_label(text: str | None, translate: Translate) -> str:
    if not text:
        return ""
    for prefix in WAITING_PREFIXES:
        if text.startswith(prefix):
            return f"{translate(prefix.strip())} {text[len(prefix) :]}"
    return translate(text)


def next_deadline(deadlines: list[dict[str, Any]]) -> DeadlineView | None:
    """The open deadline due first (breached ones included: they are the most urgent)."""
    open_ones = [
        found
        for found in (DeadlineView.model_validate(raw) for raw in deadlines)
        if found.status in OPEN_DEADLINES
    ]
    return min(open_ones, key=lambda d: d.due_at, default=None)


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


@router.get("/app/orders")
async def orders_list(request: Request, principal: Reader) -> Response:
    found = state(request)
    params = request.query_params
    number = params.get("number", "").strip()[:64]
    customer = params.get("customer", "").strip()[:64]
    status = params.get("status", "")
    overdue = params.get("overdue") == "1"
    page = _page_number(params.get("page"))
    errors: dict[str, str] = {}
    if status and status not in OrderStatus.__members__:
        errors["status"] = "Unknown status."
        status = ""
    visible = await visible_customers(found.db, principal)
    rows, total = await queries.list_orders(
        found.db,
        visible=visible,
        status=status or None,
        customer_id=customer or None,
        overdue=True if overdue else None,
        number=number or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    glances = await worklists.glances(found.db, [row.order_no for row in rows])
    customers = await queries.list_customers(found.db, limit=500, offset=0, visible=visible)
    items = [
        {
            "row": row,
            "waiting_for": glances[row.order_no].waiting_for if row.order_no in glances else None,
            "deadline": next_deadline(glances[row.order_no].deadlines)
            if row.order_no in glances
            else None,
        }
        for row in rows
    ]
    pages = max(1, -(-total // PAGE_SIZE))
    query = {"number": number, "customer": customer, "status": status}
    if overdue:
        query["overdue"] = "1"
    return render(
        request,
        "orders.html",
        principal,
        items=items,
        total=total,
        page=page,
        pages=pages,
        filters=query,
        errors=errors,
        statuses=list(OrderStatus),
        customers=customers,
        waiting_label=waiting_label,
    )


def temporal_ui_base(request: Request) -> str:
    """The Temporal UI as browsers reach it (`TEMPORAL_UI_URL`, else the local dev server's)."""
    settings = state(request).settings
    base = settings.temporal_ui_url or f"http://127.0.0.1:{settings.temporal_ui_port}"
    return base.rstrip("/")


def temporal_ui_link(request: Request, workflow_id: str) -> str:
    settings = state(request).settings
    namespace = settings.temporal_namespace
    return f"{temporal_ui_base(request)}/namespaces/{namespace}/workflows/{workflow_id}"


async def load_order(request: Request, principal: Principal, order_no: str) -> OrderPublic:
    found = state(request)
    view = await current_order(
        found.db, request.app.state.temporal, found.settings, order_no, principal
    )
    return order_public(view)


async def order_page(
    request: Request,
    principal: Principal,
    order: OrderPublic,
    *,
    status_code: int = 200,
    message: str | None = None,
    failed: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    added: list[dict[str, str]] | None = None,
) -> Response:
    """The order page; after a refused action: its message, the fresh order, and the
    action's form with what was typed (`added`: an amendment's new lines) and each field's
    error. The product picker's list only when the person may amend the order now."""
    actions = available_actions(order, principal)
    products = (
        await queries.list_products(state(request).db, limit=PRODUCT_LIMIT, offset=0)
        if any(action.name == "amend" for action in actions)
        else []
    )
    return render(
        request,
        "order.html",
        principal,
        status_code=status_code,
        order=order,
        actions=actions,
        products=products,
        added=added or [],
        temporal_link=temporal_ui_link(request, order.workflow_id),
        waiting_label=waiting_label,
        message=message,
        failed=failed,
        errors=errors or {},
        values=values or {},
        done=request.query_params.get("done"),
        return_label=return_label,
    )


@router.get("/app/orders/{order_no}")
async def order_detail(request: Request, order_no: str, principal: Reader) -> Response:
    try:
        order = await load_order(request, principal, order_no)
    except ProblemError as exc:
        return problem_page(request, principal, exc)
    return await order_page(request, principal, order)


@router.get("/app/orders/{order_no}/confirmation")
async def order_confirmation(
    request: Request, order_no: str, principal: Reader, lang: str = "en"
) -> Response:
    """The order confirmation (订单确认书) to print, as `GET /orders/{no}/confirmation` gives it."""
    found = state(request)
    try:
        view = await current_order(
            found.db, request.app.state.temporal, found.settings, order_no, principal
        )
    except ProblemError as exc:
        return problem_page(request, principal, exc)
    doc = confirmation_of(view, "zh" if lang == "zh" else "en")
    if doc is None:
        return problem_page(
            request, principal, ProblemError(409, f"Order {order_no} has no promise recorded")
        )
    return HTMLResponse(render_html(doc))
