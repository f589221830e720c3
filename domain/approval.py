"""Approval rules (审核规则): which orders pass automatically and which need people, at what level.

Pure functions of the validated order and the configured policy, so the workflow can run them
deterministically and re-run them whenever the order changes.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.money import Money
from domain.orders import ApprovalReason, PricedLine, Priority, net_days


class ApprovalPolicy(BaseModel):
    """The limits that decide approval. All come from configuration (see `settings.py`)."""

    auto_approval_limit: Money = Field(
        default=Money(50_000), description="An order total above this needs a supervisor."
    )
    two_level_limit: Money = Field(
        default=Money(200_000), description="An order total above this needs supervisor + manager."
    )
    max_discount_pct: Money = Field(
        default=Money(10), description="A unit price further below list than this needs approval."
    )
    rush_needs_approval: bool = True


class ApprovalFacts(BaseModel):
    """What the rules look at, as entry validation established it."""

    total: Money
    lines: list[PricedLine]
    credit_limit: Money
    credit_exposure: Money
    priority: Priority
    payment_terms: str | None = None
    customer_payment_terms: str | None = None
    credit_hold: bool = False


class ApprovalRequirement(BaseModel):
    levels: int = Field(description="0: approved automatically; 1: supervisor; 2: then manager.")
    reasons: list[ApprovalReason]


def credit_exposure(
    open_receivables: Money, order_amount: Money, payment_terms: str | None
) -> Money:
    """What the customer would owe on credit with this order: its open receivables plus the
    order, unless the order is prepaid (款到发货): paid before anything ships, it never becomes
    money owed on credit, so it adds nothing and a cash customer's credit limit of 0 holds."""
    if payment_terms == "prepaid":
        return open_receivables
    return open_receivables + order_amount


def evaluate_approval(facts: ApprovalFacts, policy: ApprovalPolicy) -> ApprovalRequirement:
    """Every reason an order needs a person, and the number of levels those reasons demand."""
    reasons: list[ApprovalReason] = []
    if facts.total > policy.two_level_limit:
        reasons.append(
            ApprovalReason(
                code="total_above_two_level_limit",
                message=f"Order total {facts.total} is above the two-level limit "
                f"{policy.two_level_limit}.",
                level=2,
            )
        )
    elif facts.total > policy.auto_approval_limit:
        reasons.append(
            ApprovalReason(
                code="total_above_auto_approval_limit",
                message=f"Order total {facts.total} is above the auto-approval limit "
                f"{policy.auto_approval_limit}.",
                level=1,
            )
        )
    for line in facts.lines:
        if line.discount_pct > policy.max_discount_pct:
            reasons.append(
                ApprovalReason(
                    code="discount_beyond_limit",
                    message=f"Line {line.line_no} ({line.sku}): price {line.unit_price} is "
                    f"{line.discount_pct}% below list {line.list_price}; at most "
                    f"{policy.max_discount_pct}% is allowed without approval.",
                    level=1,
                )
            )
    if facts.credit_exposure > facts.credit_limit:
        reasons.append(
            ApprovalReason(
                code="credit_limit_exceeded",
                message=f"Credit exposure {facts.credit_exposure} (open receivables plus this "
                f"order) is above the customer's credit limit {facts.credit_limit}.",
                level=2,
            )
        )
    if facts.credit_hold:
        reasons.append(
            ApprovalReason(
                code="customer_on_credit_hold",
                message="The customer is on credit hold for an overdue invoice.",
                level=2,
            )
        )
    if _more_generous(facts.payment_terms, facts.customer_payment_terms):
        reasons.append(
            ApprovalReason(
                code="non_standard_terms",
                message=f"Payment terms {facts.payment_terms} are more generous than the "
                f"customer's {facts.customer_payment_terms}.",
                level=1,
            )
        )
    if facts.priority is Priority.RUSH and policy.rush_needs_approval:
        reasons.append(
            ApprovalReason(code="rush_priority", message="Rush delivery needs approval.", level=1)
        )
    return ApprovalRequirement(levels=max((r.level for r in reasons), default=0), reasons=reasons)


def _more_generous(terms: str | None, standard: str | None) -> bool:
    """Longer credit than the customer's terms (prepaid is the strictest)."""
    if terms is None or standard is None:
        return False
    return (net_days(terms) or 0) > (net_days(standard) or 0)
