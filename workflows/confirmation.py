"""Confirmation (确认): once approved and reserved, the order is promised a delivery date.

The promise is computed by an activity (the calendar and policy of the day are in the history)
and kept on the order: the first promised date never changes; the current one moves, each move
recorded with its old and new date and the reason. Orders started before confirmation existed
(`CONFIRMATION_PATCH`) go on without a promise ("no promise recorded").
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.approval import ApprovalRequirement
    from domain.messages import (
        ActivityName,
        ConfirmOrderInput,
        DeadlineRequest,
        PromiseLineInput,
        PromiseOrderInput,
        PromiseOrderResult,
    )
    from domain.orders import ApprovalReason, WrittenConfirmationView
    from domain.policy import Sla
    from domain.promise import Receipt, keep_promise
    from domain.statuses import OPEN_PRODUCTION, OrderStatus
    from workflows import approval
    from workflows.act import act
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

CONFIRMATION_PATCH = "order-confirmation-v1"
# Large orders wait for the customer's written confirmation (asked only of such orders).
WRITTEN_PATCH = "written-confirmation-v1"
# A production order that runs late, or a hold released, re-promises the order (asked only
# when one does).
REPROMISE_PATCH = "repromise-v1"
UNACHIEVABLE = "requested_date_unachievable"


@dataclass(frozen=True)
class Outcome:
    """What confirmation asks of the order next."""

    back_to_approval: bool = False  # a requested date too soon, and the policy wants approval
    written_confirmation: str | None = None  # why the customer must sign (None: no need)


async def confirm(
    state: OrderState, deadlines: DeadlineLadder, reason: str = "amendment"
) -> Outcome:
    """Promise the order as it is reserved now: the first time, CONFIRMED (已确认); after
    that (an amendment), the promise moves if its date does, with `reason`.

    The order goes back to approval when the policy makes a requested date before the promise
    an approval reason and no approval has covered it yet; it waits for the customer's
    written confirmation when it is large or on non-standard terms.
    """
    if not workflow.patched(CONFIRMATION_PATCH):
        return Outcome()
    view = state.view
    result = await _ask(state)
    promise = result.promise
    first = view.promise is None
    view.promise, change = keep_promise(
        view.promise,
        promise,
        at=workflow.now(),
        reason=reason,
        requested=view.requested_delivery_date,
        revision=view.revision,
    )
    if first:
        state.set_status(OrderStatus.CONFIRMED, "order_confirmed", "system")
        state.record("order_promised", "system", f"{promise.promised_date}: {promise.basis}")
    elif change is not None:
        state.record("promise_moved", "system", f"{change.old} → {change.new}: {reason}")
    if first or change is not None:  # the dispatch deadline keeps the promised ship date
        await deadlines.arm(dispatch_by_promise(state))
    if view.promise.warning:
        state.record("requested_date_too_soon", "system", view.promise.warning)
    covered = state.approved is not None and UNACHIEVABLE in state.approved.reasons
    if not result.too_soon_needs_approval or covered:
        return Outcome(written_confirmation=result.written_confirmation)
    required = ApprovalRequirement(
        levels=1,
        reasons=[
            ApprovalReason(
                code=UNACHIEVABLE,
                message=f"The requested delivery date {view.requested_delivery_date} cannot be "
                f"met: the earliest is {view.promise.earliest_possible_date}.",
                level=1,
            )
        ],
    )
    approval.start(view, required)
    state.approval_done = False
    state.record("approval_required", "system", f"levels 1: {UNACHIEVABLE}")
    await deadlines.arm(DeadlineRequest(sla=Sla.APPROVAL, start=workflow.now()))
    return Outcome(back_to_approval=True)


async def require_written(state: OrderState, deadlines: DeadlineLadder, why: str) -> bool:
    """书面确认: the order needs the customer's signed confirmation (once; its deadline runs
    from then). False for orders started before this step existed."""
    if not workflow.patched(WRITTEN_PATCH):
        return False
    view = state.view
    if view.written_confirmation is None:
        view.written_confirmation = WrittenConfirmationView(reason=why, required_at=workflow.now())
        state.record("written_confirmation_required", "system", why)
        await deadlines.arm(DeadlineRequest(sla=Sla.WRITTEN_CONFIRMATION, start=workflow.now()))
    return True


def written_confirmed(state: OrderState) -> bool:
    written = state.view.written_confirmation
    return written is not None and written.document_reference is not None


def record_written(state: OrderState, deadlines: DeadlineLadder, inp: ConfirmOrderInput) -> None:
    """The customer's signed confirmation is recorded: the order goes on."""
    written = state.view.written_confirmation
    assert written is not None
    written.document_reference = inp.document_reference
    written.confirmed_by_customer_contact = inp.confirmed_by_customer_contact
    written.recorded_by = inp.by
    written.confirmed_at = workflow.now()
    deadlines.meet(Sla.WRITTEN_CONFIRMATION)
    detail = f"{inp.document_reference} signed by {inp.confirmed_by_customer_contact}"
    state.record("customer_confirmed", inp.by, detail, inp.caller)


async def _ask(state: OrderState) -> PromiseOrderResult:
    """The promise for the order as it stands (the activity reads the customer and stock)."""
    view = state.view
    # Production orders whose deadline passed: expected no earlier than the next working day.
    late = {d.key for d in view.deadlines if d.sla == Sla.PRODUCTION and d.escalation_level > 0}
    return await act(
        ActivityName.PROMISE_ORDER,
        PromiseOrderInput(
            order_no=view.order_no,
            customer_id=view.customer_id,
            customer_group=state.customer_group,
            priority=view.priority.value,
            delivery_policy=view.delivery_policy,
            revision=view.revision,
            requested_delivery_date=view.requested_delivery_date,
            total=view.total,
            non_standard_terms=any(r.code == "non_standard_terms" for r in view.approval.reasons),
            lines=[
                PromiseLineInput(
                    line_no=line.line_no,
                    sku=line.sku,
                    quantity=line.quantity,
                    reserved_quantity=line.reserved_quantity + line.shipped_quantity,
                    lead_time_days=state.lead_times.get(line.line_no, 0),
                    receipts=[
                        Receipt(
                            due_date=po.due_date,
                            quantity=po.quantity - po.produced_quantity,
                            source=po.id,
                            late=po.id in late,
                        )
                        for po in view.production_orders
                        if po.line_no == line.line_no and po.status in OPEN_PRODUCTION
                    ],
                )
                for line in view.lines
            ],
            at=workflow.now(),
        ),
        PromiseOrderResult,
    )


def dispatch_by_promise(state: OrderState) -> DeadlineRequest:
    """The dispatch deadline as the promise sets it: everything shipped by its ship date."""
    view = state.view
    assert view.promise is not None
    return DeadlineRequest(
        sla=Sla.DISPATCH, start=view.received_at, due_date=view.promise.ship_date
    )


async def repromise(state: OrderState, reason: str, deadlines: DeadlineLadder) -> None:
    """Something changed after confirmation (a production order runs late, a hold was
    released): the order is promised again and a move is recorded with `reason`. Orders without a promise, and those
    started before re-promising existed, keep theirs."""
    view = state.view
    if view.promise is None or view.closed or view.cancellation is not None:
        return
    if not workflow.patched(REPROMISE_PATCH):
        return
    result = await _ask(state)
    view.promise, change = keep_promise(
        view.promise,
        result.promise,
        at=workflow.now(),
        reason=reason,
        requested=view.requested_delivery_date,
        revision=view.revision,
    )
    if change is not None:
        state.record("promise_moved", "system", f"{change.old} → {change.new}: {reason}")
        if not state.all_shipped():
            await deadlines.arm(dispatch_by_promise(state))
    state.changed()
