"""The deadline ladders of an order, as a part of the order workflow.

Each armed SLA runs as a workflow task: one durable timer until its next step, then the step
(reminder, escalation, action), until the deadline is met, re-armed or the order ends. The
plan (every step's moment in the company calendar) comes from an activity, so replays never
depend on today's calendar. `DeadlineBook` keeps the state; this mixin does the waiting.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Generic, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.messages import (
        ActivityName,
        CreditHoldInput,
        DeadlinePlan,
        DeadlineRequest,
        Notification,
        PlanDeadlinesInput,
        PlanDeadlinesResult,
        PlannedStep,
    )
    from domain.policy import Sla, StepAction
    from workflows.deadlines import DeadlineBook, DeadlineSubject

R = TypeVar("R")
V = TypeVar("V", bound=DeadlineSubject)

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Database steps retry until they succeed: an outage delays orders, it never fails them.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
)
NOTIFICATION_TIMEOUT = timedelta(seconds=30)
# A webhook is retried until its receiver takes it; an outage delays notifications, never loses one.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
)
EXPIRY_REASONS = {Sla.APPROVAL: "approval_expired", Sla.PREPAID_PAYMENT: "payment_expired"}


class DeadlineLadders(Generic[V]):
    """Mixed into a workflow (the order's, a return's) that provides the state and the
    plumbing declared here."""

    _view: V
    _book: DeadlineBook
    _seq: int
    _deadlines_on: bool
    _closing: bool
    _customer_group: str | None
    _credit_hold_placed: bool
    _ladders: list[asyncio.Task[None]]
    _outbox: list[asyncio.Task[None]]

    async def _act(self, name: str, arg: BaseModel, result_type: type[R]) -> R:
        """A database step as a local activity (one marker event, no task-queue round trip)."""
        result: R = await workflow.execute_local_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=ACTIVITY_RETRY,
        )
        return result

    def _record(self, event: str, actor: str, detail: str | None = None) -> None:
        raise NotImplementedError

    def _request_cancel(self, reason_code: str, by: str, comment: str | None = None) -> None:
        raise NotImplementedError

    def _deadline_priority(self) -> str:
        """The priority whose SLA overrides apply."""
        return "normal"

    def _deadline_status(self) -> str:
        """The status a notification reports."""
        raise NotImplementedError

    async def _arm(self, *requests: DeadlineRequest) -> None:
        """Start the clocks of these SLAs: plan each ladder in the company calendar, run it."""
        if not self._deadlines_on or not requests or self._closing:
            return
        result = await self._act(
            ActivityName.PLAN_DEADLINES,
            PlanDeadlinesInput(
                order_no=self._view.order_no,
                customer_group=self._customer_group,
                priority=self._deadline_priority(),
                requests=list(requests),
            ),
            PlanDeadlinesResult,
        )
        for plan in result.plans:
            generation = self._book.arm(plan, workflow.now())
            self._ladders.append(asyncio.create_task(self._run_ladder(plan, generation)))
        self._seq += 1

    def _resume_ladders(self, plans: list[tuple[DeadlinePlan, int]]) -> None:
        """After a hold: the paused ladders go on with their shifted plans."""
        for plan, generation in plans:
            self._ladders.append(asyncio.create_task(self._run_ladder(plan, generation)))

    def _meet(self, sla: Sla, key: str | None = None) -> None:
        if self._book.meet(sla.value, workflow.now(), key):
            self._seq += 1

    def _ladder_live(self, name: str, generation: int) -> bool:
        return not self._closing and self._book.is_live(name, generation)

    async def _run_ladder(self, plan: DeadlinePlan, generation: int) -> None:
        """One durable timer at a time until the next step; met, re-armed or closed: stop."""
        for step in plan.steps:
            delay = step.at - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: not self._ladder_live(plan.name, generation), timeout=delay
                    )
                    return
                except TimeoutError:
                    pass
            if not self._ladder_live(plan.name, generation):
                return
            await self._fire(plan, step)

    async def _fire(self, plan: DeadlinePlan, step: PlannedStep) -> None:
        now = workflow.now()
        escalation = self._book.fired(plan, step, now)
        what = step.message or f"{plan.sla} {step.kind}"
        self._record(
            f"deadline_{step.kind}",
            "system",
            f"{plan.sla}: {what} (due {plan.due_at:%Y-%m-%d %H:%M} UTC; "
            f"notify {', '.join(step.notify) or 'nobody'})",
        )
        notification = Notification(
            id=escalation.notification_id,
            order_no=self._view.order_no,
            customer_id=self._view.customer_id,
            status=self._deadline_status(),
            sla=plan.sla,
            key=plan.key,
            step=step.index,
            kind=step.kind,
            level=step.level,
            notify=step.notify,
            action=step.action,
            message=step.message,
            due_at=plan.due_at,
            fired_at=now,
        )
        self._outbox.append(asyncio.create_task(self._send(notification)))
        if step.action is StepAction.EXPIRE:
            reason = EXPIRY_REASONS.get(plan.sla, f"{plan.sla}_expired")
            self._request_cancel(reason, "system", what)
        elif step.action is StepAction.CREDIT_HOLD and not self._credit_hold_placed:
            self._credit_hold_placed = True
            await self._act(
                ActivityName.PLACE_CREDIT_HOLD,
                CreditHoldInput(
                    customer_id=self._view.customer_id,
                    order_no=self._view.order_no,
                    at=now,
                    reason=f"invoice of order {self._view.order_no} overdue",
                ),
                type(None),
            )
            self._record("credit_hold_placed", "system", self._view.customer_id)

    async def _release_credit_hold(self) -> None:
        if not self._credit_hold_placed:
            return
        self._credit_hold_placed = False
        await self._act(
            ActivityName.RELEASE_CREDIT_HOLD,
            CreditHoldInput(
                customer_id=self._view.customer_id,
                order_no=self._view.order_no,
                at=workflow.now(),
            ),
            type(None),
        )
        self._record("credit_hold_released", "finance", self._view.customer_id)

    async def _send(self, notification: Notification) -> None:
        """The outbox: Temporal retries the webhook until it is delivered."""
        await workflow.execute_activity(
            ActivityName.SEND_NOTIFICATION,
            notification,
            start_to_close_timeout=NOTIFICATION_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
        self._book.delivered(notification.id, workflow.now())
