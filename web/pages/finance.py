"""Finance (`/app/finance`): invoices open, overdue or paid with their dunning level (as
`GET /invoices`, through `api.invoices.invoice_page`), receivables per customer, recording a
payment (the order page's pay action, `api.commands`), and the customers on credit hold with
lifting a hold (`api.invoices.release_credit_hold`, as `POST /customers/{id}/credit-hold/
release`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import visible_customers
from api.errors import ProblemError
from api.invoices import company_today, invoice_page, release_credit_hold
from api.principal import Principal
from domain.auth import Permission, allows
from store import finance
from store.finance import InvoiceFilter
from web.actions import BY_NAME
from web.render import render
from web.session import Page, form_of, require, state

router = APIRouter()
Finance = Annotated[Principal, Depends(Page(Permission.PAYMENTS_RECORD))]
PAGE_SIZE = 25


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


@router.get("/app/finance")
async def finance_page(request: Request, principal: Finance) -> Response:
    return await _render(request, principal)


async def _render(
    request: Request, principal: Principal, message: str | None = None, status_code: int = 200
) -> Response:
    found = state(request)
    params = request.query_params
    raw_status = params.get("status", InvoiceFilter.OPEN.value)
    status = raw_status if raw_status in InvoiceFilter.__members__.values() else "open"
    customer = params.get("customer", "").strip()[:64]
    page = _page_number(params.get("page"))
    calendar = request.app.state.calendar
    invoices = await invoice_page(
        found.db,
        principal,
        calendar,
        status=InvoiceFilter(status),
        customer_id=customer or None,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    visible = await visible_customers(found.db, principal)
    today = company_today(calendar)
    return render(
        request,
        "finance.html",
        principal,
        status_code=status_code,
        invoices=invoices,
        pages=max(1, -(-invoices.total // PAGE_SIZE)),
        page=page,
        filters={"status": status, "customer": customer},
        statuses=[item.value for item in InvoiceFilter],
        receivables=await finance.receivables(found.db, today=today, visible=visible),
        holds=await finance.credit_holds(found.db, visible=visible),
        pay=BY_NAME["pay"],
        may_release=allows(principal.role, Permission.CREDIT_WRITE),
        message=message,
        done=params.get("done"),
    )


@router.post("/app/finance/credit-holds/{customer_id}/release")
async def lift_hold(request: Request, customer_id: str) -> Response:
    principal = await require(request, Permission.CREDIT_WRITE)
    form = await form_of(request, principal)
    comment = form.get("comment", "").strip()[:2000] or None
    try:
        await release_credit_hold(state(request).db, principal, customer_id, comment)
    except ProblemError as exc:  # 404 unknown, 409 lifted meanwhile: say so on the page
        message = exc.problem.detail or exc.problem.title
        return await _render(request, principal, message, exc.problem.status)
    return RedirectResponse("/app/finance?done=release-hold", status_code=303)
