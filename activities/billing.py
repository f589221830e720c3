"""Billing (开票, 收款): invoices, payments, credit, and the money side of a cancellation
(refunds, voided invoices, credit notes). The rules of money live in `store.billing`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.calendar import BusinessCalendar
from domain.messages import (
    ActivityName,
    CancelInvoicesResult,
    CheckCreditInput,
    CompensateInput,
    CreditCheckResult,
    CreditOrderInput,
    CreditResult,
    IssueInvoiceInput,
    RecordPaymentInput,
    RecordPaymentResult,
    RefundPaymentsResult,
)
from domain.orders import InvoiceView, PaymentView, RefundView, net_days
from domain.statuses import InvoiceStatus
from store import billing
from store.db import Database, orm
from store.rows import only
from store.tables import CreditNote, Invoice, Payment, Refund

log = structlog.get_logger(__name__)


class BillingActivities:
    """Billing, bound to the database and the company calendar (invoices fall due by its date)."""

    def __init__(self, db: Database, calendar: BusinessCalendar) -> None:
        self.db = db
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.check_credit,
            self.issue_invoice,
            self.record_payment,
            self.credit_order,
            self.refund_payments,
            self.cancel_invoices,
        ]

    @activity.defn(name=ActivityName.CHECK_CREDIT)
    async def check_credit(self, inp: CheckCreditInput) -> CreditCheckResult:
        """The customer's credit now: open receivables plus what this order adds, and holds."""
        customer = await self.db.read(billing.customer_credit, inp.customer_id)
        if customer is None:
            raise ApplicationError("customer vanished", type="NotFound", non_retryable=True)
        return CreditCheckResult(
            credit=billing.credit_view(customer, inp.uninvoiced_amount, None),
            on_credit_hold=bool(customer.on_hold),
        )

    @activity.defn(name=ActivityName.ISSUE_INVOICE)
    async def issue_invoice(self, inp: IssueInvoiceInput) -> InvoiceView:
        """The invoice (开票); due at once for prepaid orders, after the net days otherwise."""
        invoice_id = f"INV-{inp.order_no}-{inp.seq}"
        # Net days count from the company's date, not UTC's: at 07:30 in Shanghai it is still
        # the day before in UTC, and the invoice would fall due a day early.
        issued_on = inp.at.astimezone(ZoneInfo(self.calendar.timezone)).date()
        new = {
            "id": invoice_id,
            "order_no": inp.order_no,
            "customer_id": inp.customer_id,
            "amount": inp.amount,
            "paid_amount": Decimal(0),
            "credited_amount": Decimal(0),
            "payment_terms": inp.payment_terms,
            "due_date": issued_on + timedelta(days=net_days(inp.payment_terms) or 0),
            "status": InvoiceStatus.ISSUED,
            "issued_at": inp.at,
        }
        view = await self.db.write(billing.add_invoice, new)
        log.info("invoice_issued", invoice=invoice_id, amount=str(view.amount))
        return view

    @activity.defn(name=ActivityName.RECORD_PAYMENT)
    async def record_payment(self, inp: RecordPaymentInput) -> RecordPaymentResult:
        """A payment against the invoice; the same payment id or reference counts once."""
        invoice, payment = await self.db.write(_record_payment, inp)
        result = RecordPaymentResult(
            payment=PaymentView.model_validate(payment), invoice=billing.invoice_view(invoice)
        )
        log.info("payment_recorded", payment=result.payment.id, amount=str(result.payment.amount))
        return result

    @activity.defn(name=ActivityName.CREDIT_ORDER)
    async def credit_order(self, inp: CreditOrderInput) -> CreditResult:
        """Credit part of an order (a paid-for backorder that was short-closed), once."""
        result = await self.db.write(billing.credit_order, inp)
        log.info("order_credited", credit_note=result.credit_note.id, amount=str(inp.amount))
        return result

    @activity.defn(name=ActivityName.REFUND_PAYMENTS)
    async def refund_payments(self, inp: CompensateInput) -> RefundPaymentsResult:
        """Pay back every payment of the order, once each (the refund id derives from it)."""
        refunds = await self.db.write(_refund_payments, inp)
        log.info("payments_refunded", ids=[r.id for r in refunds], reason=inp.reason)
        return RefundPaymentsResult(refunds=refunds)

    @activity.defn(name=ActivityName.CANCEL_INVOICES)
    async def cancel_invoices(self, inp: CompensateInput) -> CancelInvoicesResult:
        """Void unpaid invoices; an invoice with payments gets a credit note instead."""
        result = await self.db.write(_cancel_invoices, inp)
        log.info(
            "invoices_cancelled",
            voided=result.voided,
            credit_notes=[n.id for n in result.credit_notes],
            reason=inp.reason,
        )
        return result


def _record_payment(conn: Connection, inp: RecordPaymentInput) -> tuple[Invoice, dict[str, Any]]:
    """`record_payment` in its transaction: the invoice and the payment, as they are now."""
    invoice = billing.invoice_for_update(conn, inp.order_no, inp.invoice_id)
    payment = billing.payment_of(conn, inp.payment_id, inp.order_no, inp.reference)
    if payment is None:
        payment = {
            "id": inp.payment_id,
            "order_no": inp.order_no,
            "invoice_id": inp.invoice_id,
            "amount": inp.amount,
            "method": inp.method,
            "reference": inp.reference,
            "received_at": inp.at,
        }
        billing.pay(conn, invoice, payment)
    return invoice, payment


def _refund_payments(conn: Connection, inp: CompensateInput) -> list[RefundView]:
    refunds: list[RefundView] = []
    with orm(conn) as session:
        payments = session.exec(select(Payment).where(col(Payment.order_no) == inp.order_no))
        for payment in payments.all():
            refund = session.get(Refund, f"RF-{payment.id}")
            if refund is None:
                refund = Refund(
                    id=f"RF-{payment.id}",
                    order_no=inp.order_no,
                    payment_id=payment.id,
                    amount=payment.amount,
                    reason=inp.reason[:200],
                    refunded_at=inp.at,
                )
                session.add(refund)
            refunds.append(billing.refund_view(refund))
    return refunds


def _cancel_invoices(conn: Connection, inp: CompensateInput) -> CancelInvoicesResult:
    result = CancelInvoicesResult(voided=billing.void_unpaid(conn, inp.order_no, inp.ids))
    with orm(conn) as session:
        invoices = session.exec(
            select(Invoice).where(
                col(Invoice.order_no) == inp.order_no,
                col(Invoice.status).in_(
                    [InvoiceStatus.ISSUED, InvoiceStatus.PAID, InvoiceStatus.CREDITED]
                ),
                *only(Invoice.id, inp.ids),
            )
        ).all()
        for invoice in invoices:
            note = session.get(CreditNote, f"CN-{invoice.id}")
            if note is None:
                note = CreditNote(
                    id=f"CN-{invoice.id}",
                    order_no=inp.order_no,
                    invoice_id=invoice.id,
                    amount=invoice.amount,
                    reason=inp.reason[:200],
                    issued_at=inp.at,
                )
                invoice.status = InvoiceStatus.CREDITED
                session.add_all([note, invoice])
            result.credit_notes.append(billing.credit_note_view(note))
    return result
