"""Billing: receivables, invoices, payments and credit notes, shared by the billing steps,
entry (a customer's credit) and returns (credit for goods that came back).

Two rules live here and nowhere else in the store: a customer's open receivables (what their
issued invoices still owe, `credit_view`), and that an invoice is paid once nothing is
outstanding (`Invoice.settle_if_covered`, applied by `pay` and `credit_order`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Row,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    or_,
    type_coerce,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select
from temporalio.exceptions import ApplicationError

from domain.approval import credit_exposure
from domain.messages import CreditOrderInput, CreditResult
from domain.money import round_money
from domain.orders import CreditNoteView, CreditView, InvoiceView, RefundView
from domain.statuses import InvoiceStatus
from store.db import orm
from store.queries import lock_order
from store.rows import insert_once, only
from store.tables import CreditNote, Invoice, Payment, Refund

_CUSTOMERS = SQLModel.metadata.tables["customer"]
_HOLDS = SQLModel.metadata.tables["credithold"]
INVOICES = SQLModel.metadata.tables["invoice"]
_PAYMENTS = SQLModel.metadata.tables["payment"]

# A customer with their credit: holds not yet released, and what their issued invoices still
# owe (money is stored in cents: the raw integers are summed and converted once).
_CUSTOMER_CREDIT = sa_select(
    _CUSTOMERS,
    exists()
    .where(_HOLDS.c.customer_id == _CUSTOMERS.c.customer_id, _HOLDS.c.released_at.is_(None))
    .label("on_hold"),
    sa_select(
        func.coalesce(
            func.sum(
                type_coerce(INVOICES.c.amount, BigInteger)
                - type_coerce(INVOICES.c.paid_amount, BigInteger)
                - type_coerce(INVOICES.c.credited_amount, BigInteger)
            ),
            0,
        )
    )
    .where(
        INVOICES.c.customer_id == _CUSTOMERS.c.customer_id,
        INVOICES.c.status == InvoiceStatus.ISSUED,
        # A prepaid invoice is asked for before anything ships: not money owed on credit.
        INVOICES.c.payment_terms != "prepaid",
    )
    .scalar_subquery()
    .label("receivables_cents"),
).where(_CUSTOMERS.c.customer_id == bindparam("customer_id"))

_INVOICE_FOR_UPDATE = (
    sa_select(INVOICES).where(INVOICES.c.id == bindparam("invoice_id")).with_for_update()
)
_SET_INVOICE_PAID = (
    update(INVOICES)
    .where(INVOICES.c.id == bindparam("invoice_id"))
    .values(paid_amount=bindparam("paid"), status=bindparam("new_status"))
)
# A payment by its id, else by its reference on the order (the same transfer reported twice).
_PAYMENT_OF = (
    sa_select(_PAYMENTS)
    .where(
        or_(
            _PAYMENTS.c.id == bindparam("payment_id"),
            and_(
                _PAYMENTS.c.order_no == bindparam("order_no"),
                _PAYMENTS.c.reference == bindparam("reference"),
            ),
        )
    )
    .order_by(case((_PAYMENTS.c.id == bindparam("payment_id"), 0), else_=1))
    .limit(1)
)
_INSERT_PAYMENT = insert(_PAYMENTS)


def customer_credit(conn: Connection, customer_id: str) -> Row[Any] | None:
    """The customer's row with `on_hold` (an unreleased credit hold) and what `credit_view`
    needs; None for an unknown customer."""
    return (conn.execute(_CUSTOMER_CREDIT, {"customer_id": customer_id})).first()


def credit_view(customer: Row[Any], adds: Decimal, payment_terms: str | None) -> CreditView:
    """The customer's credit (`customer_credit`): open receivables, and the exposure once
    `adds` (what an order on `payment_terms` will invoice) is owed too (`credit_exposure`)."""
    receivables = round_money(Decimal(int(customer.receivables_cents)) / 100)
    return CreditView(
        credit_limit=customer.credit_limit,
        open_receivables=receivables,
        exposure=credit_exposure(receivables, adds, payment_terms),
    )


def add_invoice(conn: Connection, new: dict[str, Any]) -> InvoiceView:
    """The invoice `new` (a row keyed by its `id`), once: a retry gets the row written first."""
    return InvoiceView.model_validate(insert_once(conn, INVOICES, new))


def void_unpaid(conn: Connection, order_no: str, ids: list[str] | None = None) -> list[str]:
    """Void the order's invoices nothing was paid on (those in `ids`, or all): `issued` ones
    with no payment become `void`, once; the ids voided now. An invoice with payments is left
    as it is (the saga credits it, a repair reports it to finance)."""
    query = sa_select(INVOICES.c.id).where(
        INVOICES.c.order_no == order_no,
        INVOICES.c.status == InvoiceStatus.ISSUED,
        INVOICES.c.paid_amount == Decimal(0),
        *only(INVOICES.c.id, ids),
    )
    voided = list((conn.execute(query.order_by(INVOICES.c.id).with_for_update())).scalars())
    if voided:
        conn.execute(
            update(INVOICES).where(INVOICES.c.id.in_(voided)).values(status=InvoiceStatus.VOID)
        )
    return voided


def invoice_for_update(conn: Connection, order_no: str, invoice_id: str) -> Invoice:
    """The invoice, locked; `order_no` must own it."""
    row = (conn.execute(_INVOICE_FOR_UPDATE, {"invoice_id": invoice_id})).first()
    if row is None or row.order_no != order_no:
        raise ApplicationError(
            f"Invoice {invoice_id} is not part of {order_no}", type="NotFound", non_retryable=True
        )
    return Invoice.model_validate(dict(row._mapping))


def payment_of(
    conn: Connection, payment_id: str, order_no: str, reference: str | None
) -> dict[str, Any] | None:
    """A payment recorded already: by its id, else by its reference on the order."""
    row = (
        conn.execute(
            _PAYMENT_OF, {"payment_id": payment_id, "order_no": order_no, "reference": reference}
        )
    ).first()
    return None if row is None else dict(row._mapping)


def pay(conn: Connection, invoice: Invoice, payment: dict[str, Any]) -> None:
    """Record `payment` (a new row) against the locked `invoice`, settling it when covered."""
    conn.execute(_INSERT_PAYMENT, payment)
    invoice.paid_amount += payment["amount"]
    invoice.settle_if_covered()
    conn.execute(
        _SET_INVOICE_PAID,
        {"invoice_id": invoice.id, "paid": invoice.paid_amount, "new_status": invoice.status},
    )


def invoice_view(invoice: Invoice) -> InvoiceView:
    return InvoiceView.model_validate(invoice, from_attributes=True)


def refund_view(refund: Refund) -> RefundView:
    return RefundView(
        id=refund.id,
        payment_id=refund.payment_id,
        amount=refund.amount,
        refunded_at=refund.refunded_at,
    )


def credit_note_view(note: CreditNote) -> CreditNoteView:
    return CreditNoteView(
        id=note.id, invoice_id=note.invoice_id, amount=note.amount, issued_at=note.issued_at
    )


def credit_order(conn: Connection, inp: CreditOrderInput) -> CreditResult:
    """A credit note on an order, once (its id, and its refund's, derive from `credit_id`):
    first taken off what the order still owes on its open invoices, oldest first; what exceeds
    that is refunded from what was paid."""
    note_id, refund_id = f"CN-{inp.credit_id}", f"RF-{inp.credit_id}"
    lock_order(conn, inp.order_no)
    with orm(conn) as session:
        invoices = list(
            session.exec(
                select(Invoice)
                .where(col(Invoice.order_no) == inp.order_no)
                .order_by(col(Invoice.issued_at), col(Invoice.id))
            ).all()
        )
        note = session.get(CreditNote, note_id)
        refund = session.get(Refund, refund_id)
        if note is None:
            left, credited = inp.amount, list[str]()
            for invoice in invoices:
                if invoice.status != InvoiceStatus.ISSUED or left <= 0:
                    continue
                applied = min(left, invoice.outstanding)
                credited.append(invoice.id)
                invoice.credited_amount += applied
                invoice.settle_if_covered()
                left -= applied
                session.add(invoice)
            note = CreditNote(
                id=note_id,
                order_no=inp.order_no,
                # The invoice it settled first, else the order's latest (refunded against it).
                invoice_id=(credited or [i.id for i in invoices[-1:]] or [""])[0],
                amount=inp.amount,
                reason=inp.reason[:200],
                issued_at=inp.at,
            )
            session.add(note)
            paid = _total(session, Payment.amount, Payment.order_no, inp.order_no)
            refunded = _total(session, Refund.amount, Refund.order_no, inp.order_no)
            due = min(left, paid - refunded)
            if due > 0:
                refund = Refund(
                    id=refund_id,
                    order_no=inp.order_no,
                    payment_id=f"credit:{note_id}",
                    amount=due,
                    reason=inp.reason[:200],
                    refunded_at=inp.at,
                )
                session.add(refund)
        return CreditResult(
            credit_note=credit_note_view(note),
            refund=refund_view(refund) if refund is not None else None,
            invoices=[invoice_view(invoice) for invoice in invoices],
        )


def _total(session: Session, amount: Any, key: Any, order_no: str) -> Decimal:
    rows = session.exec(select(amount).where(col(key) == order_no)).all()
    return sum(rows, Decimal(0))
