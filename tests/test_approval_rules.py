"""The approval rules (审核规则) as pure functions: every reason, every boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest

from domain.approval import ApprovalFacts, ApprovalPolicy, credit_exposure, evaluate_approval
from domain.orders import PricedLine, Priority

POLICY = ApprovalPolicy(
    auto_approval_limit=Decimal(50_000),
    two_level_limit=Decimal(200_000),
    max_discount_pct=Decimal(10),
)


def facts(
    total: int = 1_000,
    discount: str = "0",
    exposure: int = 1_000,
    limit: int = 100_000,
    priority: Priority = Priority.NORMAL,
    terms: str = "net_30",
    customer_terms: str = "net_30",
) -> ApprovalFacts:
    return ApprovalFacts(
        total=Decimal(total),
        lines=[
            PricedLine(
                line_no=1,
                sku="A",
                name="a",
                quantity=1,
                amount=Decimal(100),
                list_price=Decimal(100),
                unit_price=Decimal(100),
                discount_pct=Decimal(discount),
            )
        ],
        credit_limit=Decimal(limit),
        credit_exposure=Decimal(exposure),
        priority=priority,
        payment_terms=terms,
        customer_payment_terms=customer_terms,
    )


@pytest.mark.parametrize(
    ("order", "codes", "levels"),
    [
        (facts(), [], 0),
        (facts(total=50_000), [], 0),  # at the limit is still automatic
        (facts(total=50_001), ["total_above_auto_approval_limit"], 1),
        (facts(total=200_000), ["total_above_auto_approval_limit"], 1),
        (facts(total=200_001), ["total_above_two_level_limit"], 2),
        (facts(discount="10"), [], 0),
        (facts(discount="10.01"), ["discount_beyond_limit"], 1),
        (facts(exposure=100_000), [], 0),
        (facts(exposure=100_001), ["credit_limit_exceeded"], 2),
        (facts(priority=Priority.RUSH), ["rush_priority"], 1),
        (facts(terms="net_60"), ["non_standard_terms"], 1),
        (facts(terms="net_30", customer_terms="prepaid"), ["non_standard_terms"], 1),
        (facts(terms="prepaid", customer_terms="net_30"), [], 0),  # stricter terms need no one
        (
            facts(total=60_000, discount="15", priority=Priority.RUSH, exposure=200_000),
            [
                "total_above_auto_approval_limit",
                "discount_beyond_limit",
                "credit_limit_exceeded",
                "rush_priority",
            ],
            2,
        ),
    ],
)
def test_reasons_and_levels(order: ApprovalFacts, codes: list[str], levels: int) -> None:
    requirement = evaluate_approval(order, POLICY)
    assert [r.code for r in requirement.reasons] == codes
    assert requirement.levels == levels
    assert all(r.message for r in requirement.reasons)


def test_limits_come_from_the_policy() -> None:
    lenient = ApprovalPolicy(
        auto_approval_limit=Decimal(10**6),
        two_level_limit=Decimal(10**7),
        rush_needs_approval=False,
    )
    assert evaluate_approval(facts(total=500_000, priority=Priority.RUSH), lenient).levels == 0


def test_a_prepaid_order_adds_nothing_to_credit_exposure() -> None:
    """It is paid before it ships, so it never becomes money owed on credit."""
    assert credit_exposure(Decimal(300), Decimal(1_000), "prepaid") == 300
    assert credit_exposure(Decimal(300), Decimal(1_000), "net_30") == 1_300
    assert credit_exposure(Decimal(300), Decimal(1_000), None) == 1_300
