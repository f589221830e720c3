"""Amending an order (修改): what a new revision changes and whether it needs a new approval.

Functions of the order's state; the workflow's `amend` update runs them under its lock and
then tells `run` (through `OrderState.amended`) to reconcile fulfilment with the new lines.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import Refusal
    from domain.money import as_number
    from domain.orders import AmendOrderInput, ChangeView, OrderLineRequest, line_diff
    from domain.promise import against_requested
    from workflows import approval, order_steps
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import OrderState

# The fields besides the lines an amendment may change.
FIELDS = ("requested_delivery_date", "shipping_address")


def new_revision(state: OrderState, inp: AmendOrderInput) -> ChangeView:
    """The change record of the revision `inp` makes, filled in as it is applied."""
    return ChangeView(
        revision=state.view.revision + 1,
        at=workflow.now(),
        requested_by=inp.requested_by,
        reason=inp.reason,
    )


async def change_lines(
    state: OrderState,
    deadlines: DeadlineLadder,
    lines: list[OrderLineRequest],
    change: ChangeView,
) -> None:
    """New lines: validated and priced like a new order, and the approval rules run again
    unless the approval given covers the new content.

    Raises:
        ApplicationError: The new lines do not pass entry validation.
    """
    view = state.view
    request = state.request.model_copy(update={"lines": lines})
    validation = await order_steps.validate(state, request)
    if not validation.valid:
        raise ApplicationError(
            "The amended order does not pass entry validation",
            [p.model_dump() for p in validation.problems],
            type=Refusal.INVALID,
        )
    change.lines = line_diff(view.lines, validation.lines)
    change.fields["total"] = [as_number(view.total), as_number(validation.total)]
    state.request = request
    before = {(ln.line_no, ln.sku): ln for ln in view.lines}
    state.accept(validation, event="lines_amended")
    for line in view.lines:  # what is held stays held until the run reconciles
        old = before.get((line.line_no, line.sku))
        if old is not None:
            line.reserved_quantity = old.reserved_quantity
            line.produced_quantity = old.produced_quantity
    if state.approval_done and not approval.raises_risk(
        validation, request.priority, state.approved
    ):
        change.approved_by = [d.approver for d in view.approvals]
        change.reapproval = False  # less or equal risk: the approval stands
    else:
        # Decisions were for the old content: the new revision is decided afresh.
        change.superseded_approvals = [d.approver for d in view.approvals]
        view.approvals = []
        state.pending_change = change
        change.reapproval = await approval.require(state, deadlines, validation)


def change_fields(state: OrderState, inp: AmendOrderInput, change: ChangeView) -> None:
    """The delivery date and address, where `inp` changes them."""
    view, changed = state.view, inp.changed_fields()
    for field in FIELDS:
        if field in changed and getattr(view, field) != getattr(inp, field):
            change.fields[field] = [getattr(view, field), getattr(inp, field)]
            setattr(view, field, getattr(inp, field))
    if "requested_delivery_date" in change.fields and view.promise is not None:
        view.promise = against_requested(view.promise, view.requested_delivery_date)


def record(state: OrderState, inp: AmendOrderInput, change: ChangeView) -> None:
    """The revision is the order's."""
    state.view.revision = change.revision
    state.view.changes.append(change)
    detail = f"revision {change.revision}: {inp.reason}"
    state.record("order_amended", inp.requested_by, detail, inp.caller)
