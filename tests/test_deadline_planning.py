"""Deadlines from the dates an order carries, planned in the shipped policy and the company
calendar (China): a requested delivery date, an invoice's due date, a production order's due
date. Every fast test tier runs on seconds with `use_dates: False`, so this is where the
date-based plans are proven, to the minute, with no server (a SQLite file for the activities).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from activities.billing import BillingActivities
from activities.deadlines import DeadlineActivities
from domain.messages import DeadlinePlan, DeadlineRequest, IssueInvoiceInput, PlanDeadlinesInput
from domain.policy import OrderPolicy, Sla, StepAction, parse_policy
from settings import DEFAULT_POLICY_FILE
from store.db import Database

POLICY = parse_policy(DEFAULT_POLICY_FILE.read_text(encoding="utf-8"))
CALENDAR = POLICY.calendar.build([2026, 2027])
SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A local Shanghai time, e.g. `2026-11-20 17:00`."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def local(moment: datetime) -> str:
    return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M %a")


def ladder(plan: DeadlinePlan) -> list[tuple[str, str, int]]:
    return [(local(step.at), step.kind.value, step.level) for step in plan.steps]


@pytest.fixture
def deadlines(fresh_db: Database) -> DeadlineActivities:
    return DeadlineActivities(fresh_db, POLICY, CALENDAR)


async def plan(
    deadlines: DeadlineActivities,
    sla: Sla,
    start: datetime,
    due_date: date | None = None,
    *,
    customer_group: str | None = None,
    priority: str = "normal",
) -> DeadlinePlan:
    result = await deadlines.plan_deadlines(
        PlanDeadlinesInput(
            order_no="SO-PLAN-1",
            customer_group=customer_group,
            priority=priority,
            requests=[DeadlineRequest(sla=sla, start=start, due_date=due_date)],
        )
    )
    (only,) = result.plans
    return only


async def test_delivery_by_the_requested_date_reminds_a_working_day_before(
    deadlines: DeadlineActivities,
) -> None:
    # Dispatched on a Wednesday for delivery on Monday: the reminder goes out on the Friday
    # before, not on the Sunday.
    delivery = await plan(deadlines, Sla.DELIVERY, at("2026-11-18 10:00"), date(2026, 11, 23))
    assert local(delivery.due_at) == "2026-11-23 18:00 Mon"
    assert ladder(delivery) == [
        ("2026-11-20 18:00 Fri", "reminder", 0),
        ("2026-11-23 18:00 Mon", "escalation", 1),
        ("2026-11-24 18:00 Tue", "escalation", 2),
    ]
    assert delivery.steps[0].notify == ["production", "sales"]
    assert delivery.start == at("2026-11-18 10:00")


@pytest.mark.parametrize(
    ("requested", "due", "steps"),
    [
        # National Day week (Oct 1-7 off): the day before Thursday Oct 8 is Wednesday Sep 30.
        (
            date(2026, 10, 8),
            "2026-10-08 18:00 Thu",
            ["2026-09-30 18:00 Wed", "2026-10-08 18:00 Thu", "2026-10-09 18:00 Fri"],
        ),
        # A date on a public holiday: due at the close of the last working day before it.
        (
            date(2026, 10, 3),
            "2026-09-30 18:00 Wed",
            ["2026-09-29 18:00 Tue", "2026-09-30 18:00 Wed", "2026-10-08 18:00 Thu"],
        ),
        # No date: five working days, through the holiday week and the make-up Saturday Oct 10.
        (
            None,
            "2026-10-12 16:00 Mon",
            ["2026-10-10 16:00 Sat", "2026-10-12 16:00 Mon", "2026-10-13 16:00 Tue"],
        ),
    ],
)
async def test_delivery_around_a_public_holiday(
    deadlines: DeadlineActivities, requested: date | None, due: str, steps: list[str]
) -> None:
    delivery = await plan(deadlines, Sla.DELIVERY, at("2026-09-29 16:00"), requested)
    assert local(delivery.due_at) == due
    assert [local(step.at) for step in delivery.steps] == steps


async def test_production_by_its_due_date_across_spring_festival(
    deadlines: DeadlineActivities,
) -> None:
    # Feb 16-20 and 23 are off, Saturday Feb 14 is worked (调休): the working day before
    # Tuesday Feb 24 is that Saturday.
    production = await plan(deadlines, Sla.PRODUCTION, at("2026-02-12 10:00"), date(2026, 2, 24))
    assert local(production.due_at) == "2026-02-24 18:00 Tue"
    assert ladder(production) == [
        ("2026-02-14 18:00 Sat", "reminder", 0),
        ("2026-02-24 18:00 Tue", "escalation", 1),
        ("2026-02-25 18:00 Wed", "escalation", 2),
    ]
    # Without its date (use_dates is on, but none was given) the fallback window applies.
    fallback = await plan(deadlines, Sla.PRODUCTION, at("2026-02-12 10:00"))
    assert local(fallback.due_at) == "2026-02-26 10:00 Thu"


@pytest.mark.parametrize(
    ("issued", "due_date"),
    [
        # 07:30 in Shanghai is 23:30 the day before in UTC: the UTC date made it a day early.
        (at("2026-12-01 07:30"), date(2026, 12, 31)),
        (at("2026-12-01 23:30"), date(2026, 12, 31)),
        (datetime(2026, 11, 30, 15, 59, tzinfo=UTC), date(2026, 12, 30)),  # 23:59 Nov 30 local
    ],
)
async def test_an_invoice_is_due_after_its_net_days_from_the_company_date(
    fresh_db: Database, issued: datetime, due_date: date
) -> None:
    orders = BillingActivities(fresh_db, CALENDAR)
    invoice = await orders.issue_invoice(
        IssueInvoiceInput(
            order_no=f"SO-INV-{issued:%H%M}",
            customer_id="C-1",
            amount=Decimal("100.00"),
            payment_terms="net_30",
            at=issued.astimezone(UTC),  # as the workflow passes it
        )
    )
    assert invoice.due_date == due_date


async def test_invoice_dunning_by_its_due_date_in_calendar_days(
    fresh_db: Database, deadlines: DeadlineActivities
) -> None:
    issued = at("2026-12-01 07:30").astimezone(UTC)
    orders = BillingActivities(fresh_db, CALENDAR)
    invoice = await orders.issue_invoice(
        IssueInvoiceInput(
            order_no="SO-DUN-1",
            customer_id="C-1",
            amount=Decimal("100.00"),
            payment_terms="net_30",
            at=issued,
        )
    )
    assert invoice.due_date == date(2026, 12, 31)
    payment = await plan(deadlines, Sla.INVOICE_PAYMENT, issued, invoice.due_date)
    # Overdue once its due date has passed, at local midnight; dunning counts calendar days,
    # New Year's Day and weekends included.
    assert local(payment.due_at) == "2027-01-01 00:00 Fri"
    assert ladder(payment) == [
        ("2026-12-29 00:00 Tue", "reminder", 0),
        ("2027-01-01 00:00 Fri", "escalation", 1),
        ("2027-01-08 00:00 Fri", "escalation", 2),
        ("2027-01-15 00:00 Fri", "action", 3),
    ]
    assert payment.steps[-1].action is StepAction.CREDIT_HOLD


@pytest.fixture
def stack_policy(policy_file: Path) -> OrderPolicy:
    """The shipped policy with the fast tiers the stack tests use (tests/conftest.py)."""
    return parse_policy(policy_file.read_text(encoding="utf-8"))


async def test_every_sla_tier_and_priority_of_the_stack_policy_plans(
    fresh_db: Database, stack_policy: OrderPolicy
) -> None:
    """What the policy accepts, planning never refuses: a refusal there fails every new order
    (the local activity retries forever)."""
    policy = stack_policy
    activities = DeadlineActivities(fresh_db, policy, CALENDAR)
    start = at("2026-09-30 17:30")
    for sla, sla_policy in policy.slas.items():
        for tier in [None, *sla_policy.tier]:
            for priority in ("normal", "rush"):
                for due_date in (None, date(2026, 10, 9)):
                    planned = await plan(
                        activities, sla, start, due_date, customer_group=tier, priority=priority
                    )
                    assert planned.due_at > start, (sla, tier, priority)
                    assert planned.steps, (sla, tier, priority)


async def test_written_confirmation_waits_two_working_days_and_expires_or_only_escalates(
    fresh_db: Database,
) -> None:
    """Wednesday 30 Sep 2026, 17:30: two working days skip National Day
    (1-7 Oct), due Friday 9 Oct 17:30; the action a working day later, Saturday 10 Oct (a
    make-up working day). With `escalate_only` the last step is one more escalation."""
    start = at("2026-09-30 17:30")
    expiring = await plan(
        DeadlineActivities(fresh_db, POLICY, CALENDAR), Sla.WRITTEN_CONFIRMATION, start
    )
    assert local(expiring.due_at) == "2026-10-09 17:30 Fri"
    assert [(s.kind.value, s.action) for s in expiring.steps] == [
        ("reminder", None),
        ("escalation", None),
        ("action", StepAction.EXPIRE),
    ]
    assert local(expiring.steps[-1].at) == "2026-10-10 17:30 Sat"
    promise = POLICY.promise.model_copy(
        update={"written_confirmation_final_action": "escalate_only"}
    )
    only_escalating = POLICY.model_copy(update={"promise": promise})
    planned = await plan(
        DeadlineActivities(fresh_db, only_escalating, CALENDAR), Sla.WRITTEN_CONFIRMATION, start
    )
    assert [(s.kind.value, s.action) for s in planned.steps] == [
        ("reminder", None),
        ("escalation", None),
        ("escalation", None),
    ]
