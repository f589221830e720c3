"""What finance reads: invoices by state (open, overdue, paid), what each customer still owes,
and the customers on credit hold. Open receivables follow the one rule `store.billing` keeps
for credit (issued invoices on credit terms: a prepayment asked for is not money owed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import BigInteger, case, func, type_coerce
from sqlmodel import col, select

from domain.money import round_money
from domain.statuses import InvoiceStatus
from store.db import Database
from store.tables import CreditHold, Customer, Invoice


class InvoiceFilter(StrEnum):
    OPEN = "open"  # something is outstanding
    OVERDUE = "overdue"  # outstanding past its due date
    PAID = "paid"  # settled


def _cents(column: Any) -> Any:
    return type_coerce(column, BigInteger)


def _money(cents: Any) -> Decimal:
    return round_money(Decimal(int(cents or 0)) / 100)


async def list_invoices(
    db: Database,
    *,
    status: InvoiceFilter | None,
    customer_id: str | None,
    today: date,
    limit: int,
    offset: int,
    visible: set[str] | None = None,
) -> tuple[Sequence[Invoice], int]:
    """Invoices, earliest due first (paid ones: latest issued first); `today` (the company's)
    decides what is overdue; `visible`: only these customers' (a scoped sales rep)."""
    conditions: list[Any] = []
    if status in (InvoiceFilter.OPEN, InvoiceFilter.OVERDUE):
        conditions.append(col(Invoice.status) == InvoiceStatus.ISSUED)
    if status is InvoiceFilter.OVERDUE:
        conditions.append(col(Invoice.due_date) < today)
    if status is InvoiceFilter.PAID:
        conditions.append(col(Invoice.status) == InvoiceStatus.PAID)
    if customer_id:
        conditions.append(col(Invoice.customer_id) == customer_id)
    if visible is not None:
        conditions.append(col(Invoice.customer_id).in_(visible))
    order = (
        [col(Invoice.issued_at).desc(), col(Invoice.id)]
        if status is InvoiceFilter.PAID
        else [col(Invoice.due_date), col(Invoice.id)]
    )
    query = select(Invoice).where(*conditions).order_by(*order).offset(offset).limit(limit)
    count = select(func.count()).select_from(Invoice).where(*conditions)
    async with db.reader() as session:
        rows = (await session.exec(query)).all()
        total = (await session.exec(count)).one()
    return rows, int(total)


class Receivable(NamedTuple):
    customer_id: str
    name: str
    credit_limit: Decimal
    open_amount: Decimal
    overdue_amount: Decimal
    invoices: int


async def receivables(
    db: Database, *, today: date, visible: set[str] | None = None, limit: int = 500
) -> list[Receivable]:
    """What each customer's issued invoices on credit terms still owe, and how much of it is
    overdue; the largest first. Customers owing nothing are left out."""
    outstanding = _cents(col(Invoice.amount)) - _cents(col(Invoice.paid_amount))
    outstanding = outstanding - _cents(col(Invoice.credited_amount))
    owed = func.sum(outstanding)
    overdue = func.sum(case((col(Invoice.due_date) < today, outstanding), else_=0))
    query = (
        select(  # type: ignore[call-overload]
            Customer.customer_id,
            Customer.name,
            Customer.credit_limit,
            owed,
            overdue,
            func.count(),
        )
        .join(Customer, col(Customer.customer_id) == col(Invoice.customer_id))
        .where(
            col(Invoice.status) == InvoiceStatus.ISSUED,
            col(Invoice.payment_terms) != "prepaid",
        )
        .group_by(col(Customer.customer_id), col(Customer.name), col(Customer.credit_limit))
        .order_by(owed.desc(), col(Customer.customer_id))
        .limit(limit)
    )
    if visible is not None:
        query = query.where(col(Invoice.customer_id).in_(visible))
    async with db.reader() as session:
        rows = (await session.exec(query)).all()
    return [
        Receivable(customer_id, name, limit_, _money(owed_), _money(late), int(count))
        for customer_id, name, limit_, owed_, late, count in rows
        if int(owed_ or 0) > 0
    ]


class Hold(NamedTuple):
    customer_id: str
    name: str
    order_no: str
    reason: str
    placed_at: datetime


async def credit_holds(db: Database, *, visible: set[str] | None = None) -> list[Hold]:
    """The credit holds not yet released, oldest first, with the customer's name."""
    query = (
        select(CreditHold, Customer.name)
        .join(Customer, col(Customer.customer_id) == col(CreditHold.customer_id))
        .where(col(CreditHold.released_at).is_(None))
        .order_by(col(CreditHold.placed_at), col(CreditHold.id))
    )
    if visible is not None:
        query = query.where(col(CreditHold.customer_id).in_(visible))
    async with db.reader() as session:
        rows = (await session.exec(query)).all()
    return [
        Hold(hold.customer_id, name, hold.order_no, hold.reason, hold.placed_at)
        for hold, name in rows
    ]
