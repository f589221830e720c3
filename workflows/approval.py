"""Approval (审核) as the order workflow applies it: which facts the rules see, what a decision
records, and whether an amendment raises the risk that was approved.

Pure functions of the order's state; the workflow decides when they run.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.approval import ApprovalFacts, ApprovalRequirement, evaluate_approval
    from domain.messages import (
        ApproveOrderInput,
        DeadlineRequest,
        RejectOrderInput,
        ValidateOrderResult,
    )
    from domain.money import Money
    from domain.orders import ApprovalDecision, ApprovalView, Caller, OrderView, Priority
    from domain.policy import Sla
    from workflows import rules
    from workflows.ladders import DeadlineLadder
    from workflows.order_state import ApprovedContent, OrderState


def requirement(validation: ValidateOrderResult, priority: Priority) -> ApprovalRequirement:
    """The levels (and reasons) the approval rules require for this content."""
    credit = validation.credit
    facts = ApprovalFacts(
        total=validation.total,
        lines=list(validation.lines),
        credit_limit=credit.credit_limit if credit else validation.total,
        credit_exposure=credit.exposure if credit else validation.total,
        priority=priority,
        payment_terms=validation.payment_terms,
        customer_payment_terms=validation.customer_payment_terms,
        credit_hold=validation.credit_hold,
    )
    return evaluate_approval(facts, validation.policy)


async def require(
    state: OrderState,
    deadlines: DeadlineLadder,
    validation: ValidateOrderResult,
    *requests: DeadlineRequest,
) -> bool:
    """Run the approval rules on the order's content; True if people must decide.

    `requests` (other deadlines) start together with the approval's own: one planning step.
    """
    required = requirement(validation, state.request.priority)
    start(state.view, required)
    if required.levels == 0:
        decide(state, 0, "approved", "system", "system", "no approval rule applies")
        state.approval_done = True
        note_approved(state)
        deadlines.meet(Sla.APPROVAL)
        await deadlines.arm(*requests)
        return False
    state.approval_done = False
    reasons = ", ".join(r.code for r in required.reasons)
    state.record("approval_required", "system", f"levels {required.levels}: {reasons}")
    await deadlines.arm(*requests, DeadlineRequest(sla=Sla.APPROVAL, start=workflow.now()))
    return True


def start(view: OrderView, required: ApprovalRequirement) -> None:
    """A new round of approval: the first level is awaited (if any is required)."""
    view.approval = ApprovalView(required_levels=required.levels, reasons=required.reasons)
    if required.levels:
        view.approval.awaiting_level = 1
        view.waiting_for = waiting_for(view)


def approve(state: OrderState, deadlines: DeadlineLadder, inp: ApproveOrderInput) -> None:
    """A level approves: the next level is awaited, or the order is approved."""
    view = state.view
    level = view.approval.awaiting_level or 0
    decide(state, level, "approved", inp.approver, inp.role.value, inp.comment, inp.caller)
    if level < view.approval.required_levels:
        view.approval.awaiting_level = level + 1
        view.waiting_for = waiting_for(view)
    else:
        view.approval.awaiting_level = None
        state.approval_done = True
        note_approved(state)
        deadlines.meet(Sla.APPROVAL)


def reject(state: OrderState, deadlines: DeadlineLadder, inp: RejectOrderInput) -> None:
    """A level rejects: the order is decided, rejected."""
    level = state.view.approval.awaiting_level or 0
    decide(state, level, "rejected", inp.approver, inp.role.value, inp.reason, inp.caller)
    state.view.approval.awaiting_level = None
    state.rejected = state.approval_done = True
    deadlines.meet(Sla.APPROVAL)


def waiting_for(view: OrderView) -> str:
    level = view.approval.awaiting_level or 1
    return f"approval by {rules.LEVEL_NAMES[level]}"


def decide(
    state: OrderState,
    level: int,
    decision: str,
    approver: str,
    role: str,
    comment: str | None,
    caller: Caller | None = None,
) -> None:
    """A decision on the approvals list and the timeline."""
    state.view.approvals.append(
        ApprovalDecision(
            level=level,
            decision=decision,
            approver=approver,
            role=role,
            comment=comment,
            at=workflow.now(),
        )
    )
    state.record(
        f"order_{decision}",
        approver,
        f"level {level}" + (f": {comment}" if comment else ""),
        caller,
    )


def note_approved(state: OrderState) -> None:
    """What the approval covered, to tell later amendments that raise risk from others."""
    view = state.view
    if state.pending_change is not None:  # the amended revision is now approved
        state.pending_change.approved_by = [d.approver for d in view.approvals]
        state.pending_change = None
    state.approved = ApprovedContent(
        levels=view.approval.required_levels,
        total=view.total,
        max_discount=max((line.discount_pct for line in view.lines), default=Money(0)),
        reasons=[r.code for r in view.approval.reasons],
    )


def raises_risk(
    validation: ValidateOrderResult, priority: Priority, approved: ApprovedContent | None
) -> bool:
    """More than what was approved: a higher total or level, a deeper discount, a new
    reason (credit, rush, terms). Less or the same keeps the approval."""
    required = requirement(validation, priority)
    if required.levels == 0:
        return False
    if approved is None:
        return True
    discount = max((line.discount_pct for line in validation.lines), default=Money(0))
    return (
        required.levels > approved.levels
        or validation.total > approved.total
        or discount > approved.max_discount
        or not {r.code for r in required.reasons} <= set(approved.reasons)
    )
