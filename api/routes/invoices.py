"""`GET /invoices`: finance's list of invoices across orders (open, overdue, paid)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from api.auth import allowed
from api.deps import DbDep
from api.errors import ProblemDetails
from api.invoices import InvoicePage, invoice_page
from api.principal import Principal
from domain.auth import Permission
from domain.orders import ShortText
from store.finance import InvoiceFilter

router = APIRouter(tags=["invoices"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 422)
}


@router.get("/invoices", responses=ERRORS)
async def list_invoices(
    request: Request,
    db: DbDep,
    principal: Annotated[Principal, allowed(Permission.REPORTS_READ)],
    status: Annotated[
        InvoiceFilter | None,
        Query(
            description="`open`: something outstanding; `overdue`: outstanding past its due "
            "date (the company's today); `paid`: settled. All invoices when absent."
        ),
    ] = None,
    customer_id: Annotated[ShortText | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> InvoicePage:
    """Invoices across orders (finance: today it could read them only inside each order),
    earliest due first (paid: latest issued first), each with what is outstanding, whether and
    how long it is overdue, and its dunning level (催款: how far the payment deadline's ladder
    has escalated)."""
    return await invoice_page(
        db,
        principal,
        request.app.state.calendar,
        status=status,
        customer_id=customer_id,
        limit=limit,
        offset=offset,
    )
