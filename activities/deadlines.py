"""Deadline activities: planning a ladder in the company calendar, and credit holds.

Planning is an activity, not workflow code, on purpose: the calendar (holiday data, company
overrides, the policy file) may change while orders run; the plan each order was given is in
its history, so replays never depend on today's calendar.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Connection
from sqlmodel import Session, col, select
from temporalio import activity

from domain.calendar import BusinessCalendar, Clock, Duration
from domain.messages import (
    ActivityName,
    CreditHoldInput,
    DeadlinePlan,
    PlanDeadlinesInput,
    PlanDeadlinesResult,
    PlannedStep,
)
from domain.policy import OrderPolicy, Sla, StepKind
from store.db import Database, orm
from store.tables import CreditHold

log = structlog.get_logger(__name__)


class DeadlineActivities:
    def __init__(self, db: Database, policy: OrderPolicy, calendar: BusinessCalendar) -> None:
        self.db = db
        self.policy = policy
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [self.plan_deadlines, self.place_credit_hold, self.release_credit_hold]

    @activity.defn(name=ActivityName.PLAN_DEADLINES)
    async def plan_deadlines(self, inp: PlanDeadlinesInput) -> PlanDeadlinesResult:
        """The deadline and every ladder step's moment, per the policy for this order."""
        plans: list[DeadlinePlan] = []
        for request in inp.requests:
            sla = self.policy.resolve(request.sla, tier=inp.customer_group, priority=inp.priority)
            if sla is None:
                continue  # this company has no such SLA
            if sla.use_dates and request.due_date is not None:
                due = (
                    self.calendar.end_of_day(request.due_date)
                    if sla.clock is Clock.CALENDAR
                    else self.calendar.close_of_business(request.due_date)
                )
            elif sla.duration is not None:
                due = self.calendar.add(request.start, Duration.parse(sla.duration), sla.clock)
            else:
                continue
            escalate_only = (
                request.sla is Sla.WRITTEN_CONFIRMATION
                and self.policy.promise.written_confirmation_final_action == "escalate_only"
            )
            steps = [
                PlannedStep(
                    index=index,
                    at=step.fire_at(request.start, due, self.calendar, sla.clock),
                    kind=StepKind.ESCALATION if escalate_only and step.action else step.kind,
                    level=step.level,
                    notify=step.notify,
                    action=None if escalate_only else step.action,
                    message=step.message,
                )
                for index, step in enumerate(sla.ladder)
            ]
            steps.sort(key=lambda step: (step.at, step.index))
            plans.append(
                DeadlinePlan(
                    sla=request.sla, key=request.key, start=request.start, due_at=due, steps=steps
                )
            )
        log.info("deadlines_planned", deadlines={p.name: p.due_at.isoformat() for p in plans})
        return PlanDeadlinesResult(plans=plans)

    @activity.defn(name=ActivityName.PLACE_CREDIT_HOLD)
    async def place_credit_hold(self, inp: CreditHoldInput) -> None:
        """Put the customer on credit hold for this order's overdue invoice (once)."""
        await self.db.write(_place_hold, inp)
        log.warning("credit_hold_placed", customer_id=inp.customer_id, reason=inp.reason)

    @activity.defn(name=ActivityName.RELEASE_CREDIT_HOLD)
    async def release_credit_hold(self, inp: CreditHoldInput) -> None:
        """Release the hold this order placed (others the customer has stay)."""
        await self.db.write(_release_hold, inp)
        log.info("credit_hold_released", customer_id=inp.customer_id)


def _place_hold(conn: Connection, inp: CreditHoldInput) -> None:
    with orm(conn) as session:
        if _hold(session, inp) is None:
            session.add(
                CreditHold(
                    customer_id=inp.customer_id,
                    order_no=inp.order_no,
                    reason=inp.reason[:200],
                    placed_at=inp.at,
                )
            )


def _release_hold(conn: Connection, inp: CreditHoldInput) -> None:
    with orm(conn) as session:
        hold = _hold(session, inp)
        if hold is not None and hold.released_at is None:
            hold.released_at = inp.at
            session.add(hold)


def _hold(session: Session, inp: CreditHoldInput) -> CreditHold | None:
    query = select(CreditHold).where(
        col(CreditHold.customer_id) == inp.customer_id, col(CreditHold.order_no) == inp.order_no
    )
    return session.exec(query).first()
