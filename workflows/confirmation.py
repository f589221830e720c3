"""Confirmation (确认): once approved and reserved, the order is promised a delivery date.

The promise is computed by an activity (the calendar and policy of the day are in the history)
and kept on the order: the first promised date never changes; the current one moves, each move
recorded with its old and new date and the reason. Orders started before confirmation existed
(`CONFIRMATION_PATCH`) go on without a promise ("no promise recorded").
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.approval import ApprovalRequirement
    from domain.messages import (
        ActivityName,
        DeadlineRequest,
        PromiseLineInput,
        PromiseOrderInput,
        PromiseOrderResult,
    )
    from domain.orders import ApprovalReason
    from domain.policy import Sla
    from domain.promise import Receipt, keep_promise
    from domain.statuses import OPEN_PRODUCTION, OrderStatus
    from workflows import approval
    from workflows.act import act
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

CONFIRMATION_PATCH = "order-confirmation-v1"
UNACHIEVABLE = "requested_date_unachievable"


async def confirm(state: OrderState, deadlines: DeadlineLadder, reason: str = "amendment") -> bool:
    """Promise the order as it is reserved now: the first time, CONFIRMED (已确认); after
    that (an amendment), the promise moves if its date does, with `reason`.

    True when the order must go back to approval: the policy makes a requested date before
    the promise an approval reason and no approval has covered it yet.
    """
    if not workflow.patched(CONFIRMATION_PATCH):
        return False
    view = state.view
    result = await act(
        ActivityName.PROMISE_ORDER,
        PromiseOrderInput(
            order_no=view.order_no,
            customer_id=view.customer_id,
            customer_group=state.customer_group,
            priority=view.priority.value,
            delivery_policy=view.delivery_policy,
            revision=view.revision,
            requested_delivery_date=view.requested_delivery_date,
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
    if view.promise.warning:
        state.record("requested_date_too_soon", "system", view.promise.warning)
    covered = state.approved is not None and UNACHIEVABLE in state.approved.reasons
    if not result.too_soon_needs_approval or covered:
        return False
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
    return True
