"""Confirmation (确认): once approved and reserved, the order is promised a delivery date.

The promise is computed by an activity (the calendar and policy of the day are in the history)
and kept on the order: the first promised date never changes; the current one moves, each move
recorded with its old and new date and the reason. Orders started before confirmation existed
(`CONFIRMATION_PATCH`) go on without a promise ("no promise recorded").
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import ActivityName, PromiseLineInput, PromiseOrderInput
    from domain.promise import OrderPromise, Receipt, keep_promise
    from domain.statuses import OPEN_PRODUCTION, OrderStatus
    from workflows.act import act
    from workflows.order_state import OrderState

CONFIRMATION_PATCH = "order-confirmation-v1"


async def confirm(state: OrderState, reason: str = "amendment") -> None:
    """Promise the order as it is reserved now: the first time, CONFIRMED (已确认); after
    that (an amendment), the promise moves if its date does, with `reason`."""
    if not workflow.patched(CONFIRMATION_PATCH):
        return
    view = state.view
    promise = await act(
        ActivityName.PROMISE_ORDER,
        PromiseOrderInput(
            order_no=view.order_no,
            customer_id=view.customer_id,
            customer_group=state.customer_group,
            priority=view.priority.value,
            delivery_policy=view.delivery_policy,
            revision=view.revision,
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
        OrderPromise,
    )
    first = view.promise is None
    view.promise, change = keep_promise(
        view.promise,
        promise,
        at=workflow.now(),
        reason=reason,
        requested=view.requested_delivery_date,
    )
    if first:
        state.set_status(OrderStatus.CONFIRMED, "order_confirmed", "system")
        state.record("order_promised", "system", f"{promise.promised_date}: {promise.basis}")
    elif change is not None:
        state.record("promise_moved", "system", f"{change.old} → {change.new}: {reason}")
    if view.promise.warning:
        state.record("requested_date_too_soon", "system", view.promise.warning)
