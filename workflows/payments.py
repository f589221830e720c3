"""Money on an order: payments, credits taken off invoices, and the holds credit decides.

Functions of the order's state. Invoices are issued by `order_steps.issue_invoice`; the
saga (workflows/saga.py) voids or credits them on cancellation.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.messages import (
        ActivityName,
        CheckCreditInput,
        CreditCheckResult,
        CreditOrderInput,
        CreditResult,
        HoldKind,
        PaymentInput,
        RecordPaymentInput,
        RecordPaymentResult,
    )
    from domain.money import Money
    from domain.orders import Caller, CreditNoteView, InvoiceView, RefundView, status_label
    from domain.policy import Sla
    from domain.statuses import InvoiceStatus, OrderStatus
    from workflows import confirmation
    from workflows.act import act
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState


async def record_payment(state: OrderState, invoice: InvoiceView, inp: PaymentInput) -> InvoiceView:
    """A payment against `invoice`; returns the invoice as it now stands."""
    view = state.view
    state.payments += 1
    result = await act(
        ActivityName.RECORD_PAYMENT,
        RecordPaymentInput(
            order_no=view.order_no,
            invoice_id=invoice.id,
            payment_id=f"PAY-{view.order_no}-{state.payments}",
            amount=inp.amount,
            method=inp.method,
            reference=inp.reference,
            at=workflow.now(),
        ),
        RecordPaymentResult,
    )
    view.payments.append(result.payment)
    view.invoices = [result.invoice if i.id == result.invoice.id else i for i in view.invoices]
    state.record(
        "payment_recorded",
        inp.recorded_by or "finance",
        f"{result.payment.amount} by {inp.method} ref {inp.reference}",
        inp.caller,
    )
    return result.invoice


async def settle(state: OrderState, deadlines: DeadlineLadder, invoices: list[InvoiceView]) -> None:
    """Invoices paid (or credited) in full meet their deadlines; all of them, the order's,
    and a credit hold their dunning placed is lifted."""
    for invoice in invoices:
        if invoice.status == InvoiceStatus.PAID:
            deadlines.meet(Sla.INVOICE_PAYMENT, key=invoice.id)
    if state.paid():
        deadlines.meet(Sla.PREPAID_PAYMENT)
        deadlines.meet(Sla.INVOICE_PAYMENT)
        await deadlines.release_credit_hold()


def take_credit(
    state: OrderState,
    note: CreditNoteView,
    invoices: list[InvoiceView],
    refund: RefundView | None = None,
) -> list[InvoiceView]:
    """A credit note, the invoices it changed and its refund, into the view (once each);
    returns those invoices."""
    view = state.view
    fresh = {invoice.id: invoice for invoice in invoices}
    view.invoices = [fresh.get(i.id, i) for i in view.invoices]
    if note.id not in {n.id for n in view.credit_notes}:
        view.credit_notes.append(note)
    if refund is not None and refund.id not in {r.id for r in view.refunds}:
        view.refunds.append(refund)
    return [i for i in view.invoices if i.id in fresh]


async def credit_short_closed(state: OrderState, value: Money, reason: str) -> None:
    """What a prepaid customer paid for and will not get is credited and refunded."""
    order_no = state.view.order_no
    credit = await act(
        ActivityName.CREDIT_ORDER,
        CreditOrderInput(
            order_no=order_no,
            credit_id=f"{order_no}-SC",
            amount=value,
            reason=f"short-closed: {reason}",
            at=workflow.now(),
        ),
        CreditResult,
    )
    take_credit(state, credit.credit_note, credit.invoices, credit.refund)
    refunded = f"; refund {credit.refund.amount}" if credit.refund else ""
    state.record("short_close_credited", "finance", f"credit note {value}{refunded}")


async def check_credit(state: OrderState) -> CreditCheckResult:
    """The customer's credit with this order's uninvoiced amount on top.

    A prepaid order adds nothing (`domain.approval.credit_exposure`): it is paid before
    anything ships and never becomes money owed on credit. A local activity's input is not
    in the history, so orders in flight replay unchanged.
    """
    view = state.view
    uninvoiced = view.total - sum((i.amount for i in view.invoices), Money(0))
    if view.payment_terms == "prepaid":
        uninvoiced = Money(0)
    return await act(
        ActivityName.CHECK_CREDIT,
        CheckCreditInput(
            customer_id=view.customer_id,
            order_no=view.order_no,
            uninvoiced_amount=max(uninvoiced, Money(0)),
        ),
        CreditCheckResult,
    )


async def release_hold(
    state: OrderState,
    deadlines: DeadlineLadder,
    by: str,
    comment: str | None,
    caller: Caller | None = None,
) -> None:
    """Lift the hold if credit allows (a manual hold always lifts); its deadlines resume.

    Raises:
        ApplicationError: A credit hold while the customer's credit still fails.
    """
    view = state.view
    hold = view.hold
    assert hold is not None
    check = await check_credit(state)
    credit = check.credit
    summary = f"credit exposure {credit.exposure} of limit {credit.credit_limit}" + (
        "; customer on credit hold" if check.on_credit_hold else ""
    )
    if hold.kind == HoldKind.CREDIT and not check.ok:
        raise ApplicationError(
            f"Order {view.order_no} stays on credit hold: {summary}", type=Refusal.INVALID_STATE
        )
    if view.hold is not hold:  # released (or cancelled) meanwhile by another command
        return
    view.hold = None
    view.credit = credit
    status = OrderStatus(hold.resume_status)
    view.status = status
    view.status_label = status_label(status)
    state.record("order_released", by, "; ".join(filter(None, [comment, summary])), caller)
    deadlines.resume(workflow.now())
    if not state.all_shipped():  # the hold may have cost days: the promise is made again
        await confirmation.repromise(state, "hold released", deadlines)
