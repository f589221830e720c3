"""Finance's reads and its one credit command, as services: `GET /invoices`, `POST
/customers/{id}/credit-hold/release` and the web app's finance page call them."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from api.auth import visible_customers
from api.errors import ProblemError
from api.principal import Principal
from api.record import record_command
from domain.calendar import BusinessCalendar
from domain.money import Money
from domain.policy import Sla
from domain.statuses import InvoiceStatus
from store import finance, queries
from store.db import Database
from store.finance import InvoiceFilter
from store.tables import Customer


class InvoiceSummary(BaseModel):
    id: str
    order_no: str
    customer_id: str
    amount: Money
    paid_amount: Money
    credited_amount: Money
    outstanding: Money = Field(description="What is still owed: amount - paid - credited.")
    payment_terms: str
    due_date: date
    status: InvoiceStatus
    overdue: bool = Field(description="Outstanding past its due date (the company's today).")
    days_overdue: int = 0
    dunning_level: int = Field(
        default=0,
        description="How far its payment deadline's ladder has escalated (催款: 0 none yet; "
        "the `invoice_payment` ladder of the deadline policy).",
    )
    issued_at: datetime


class InvoicePage(BaseModel):
    items: list[InvoiceSummary]
    total: int
    limit: int
    offset: int


def company_today(calendar: BusinessCalendar) -> date:
    return datetime.now(ZoneInfo(calendar.timezone)).date()


async def invoice_page(
    db: Database,
    principal: Principal,
    calendar: BusinessCalendar,
    *,
    status: InvoiceFilter | None,
    customer_id: str | None,
    limit: int,
    offset: int,
) -> InvoicePage:
    """A page of invoices (a scoped sales rep: their customers'), each with its dunning level
    from its order's `invoice_payment` deadline."""
    today = company_today(calendar)
    rows, total = await finance.list_invoices(
        db,
        status=status,
        customer_id=customer_id,
        today=today,
        limit=limit,
        offset=offset,
        visible=await visible_customers(db, principal),
    )
    deadlines = await queries.deadlines_of(db, sorted({row.order_no for row in rows}))
    levels = {
        (order_no, raw.get("key")): int(raw.get("escalation_level") or 0)
        for order_no, items in deadlines.items()
        for raw in items
        if raw.get("sla") == Sla.INVOICE_PAYMENT
    }
    items = []
    for row in rows:
        late = row.status == InvoiceStatus.ISSUED and row.due_date < today
        items.append(
            InvoiceSummary(
                id=row.id,
                order_no=row.order_no,
                customer_id=row.customer_id,
                amount=row.amount,
                paid_amount=row.paid_amount,
                credited_amount=row.credited_amount,
                outstanding=row.outstanding,
                payment_terms=row.payment_terms,
                due_date=row.due_date,
                status=InvoiceStatus(row.status),
                overdue=late,
                days_overdue=(today - row.due_date).days if late else 0,
                dunning_level=levels.get((row.order_no, row.id), 0),
                issued_at=row.issued_at,
            )
        )
    return InvoicePage(items=items, total=total, limit=limit, offset=offset)


async def release_credit_hold(
    db: Database, principal: Principal, customer_id: str, comment: str | None
) -> Customer:
    """Finance lifts the credit holds dunning put on a customer: 404 unknown customer, 409 not
    on hold; recorded on the command log."""
    customer = await queries.get_customer(db, customer_id)
    if customer is None:
        raise ProblemError(404, f"Customer {customer_id} not found")
    if not await queries.release_credit_holds(db, customer_id, principal.name):
        raise ProblemError(409, f"Customer {customer_id} is not on credit hold")
    await record_command(
        db,
        principal,
        "release_credit_hold",
        "ok",
        detail={"customer_id": customer_id, "comment": comment},
    )
    return customer
