"""The deadline ladders of a workflow (an order's, a return's), as a helper object it holds.

Each armed SLA runs as a workflow task: one durable timer until its next step, then the step
(reminder, escalation, action), until the deadline is met, re-armed or the workflow ends. The
plan (every step's moment in the company calendar) comes from an activity, so replays never
depend on today's calendar. `DeadlineBook` keeps the state; this helper does the waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.messages import (
        ActivityName,
        CreditHoldInput,
        DeadlinePlan,
        DeadlineRequest,
        EscalationRecord,
        Notification,
        PlanDeadlinesInput,
        PlanDeadlinesResult,
        PlannedStep,
        Resolution,
    )
    from domain.policy import Sla, StepAction, StepKind
    from workflows.act import act
    from workflows.deadlines import DeadlineBook, DeadlineSubject

NOTIFICATION_TIMEOUT = timedelta(seconds=30)
# A webhook is retried until its receiver takes it; an outage delays notifications, never loses one.
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5)
)
EXPIRY_REASONS = {
    Sla.APPROVAL: "approval_expired",
    Sla.PREPAID_PAYMENT: "payment_expired",
    Sla.WRITTEN_CONFIRMATION: "confirmation_expired",
}


class Record(Protocol):
    """How the holder puts an event on its timeline."""

    def __call__(self, event: str, actor: str, detail: str | None = None) -> None: ...


class DeadlineLadder:
    """The armed deadlines of one workflow and the tasks that chase them.

    Args:
        subject: The view whose `deadlines`, `overdue` and `escalation_level` it keeps.
        record: Puts a step that fired on the holder's timeline.
        changed: Tells the holder its view changed (a checkpoint is due).
        status: The holder's status, as a notification reports it.
        priority: The priority whose SLA overrides apply.
        expire: Cancels the holder when an expiry step fires (reason code, detail). The
            policy puts expiries only on SLAs of an order (`domain.policy.ACTION_SLAS`).
        customer_group: The customer group whose SLAs apply (known once validated).
        enabled: False for orders started before deadlines existed: nothing is armed.
        breached: Awaited when a deadline is breached (its first escalation fires), with the
            SLA and key: the holder may act on it (a late production order re-promises).
    """

    def __init__(
        self,
        subject: DeadlineSubject,
        *,
        record: Record,
        changed: Callable[[], None],
        status: Callable[[], str],
        priority: Callable[[], str] = lambda: "normal",
        expire: Callable[[str, str], None] | None = None,
        customer_group: Callable[[], str | None] = lambda: None,
        enabled: bool = True,
        breached: Callable[[Sla, str], Awaitable[None]] | None = None,
    ) -> None:
        self._subject = subject
        self._record = record
        self._changed = changed
        self._status = status
        self._priority = priority
        self._expire = expire
        self._customer_group = customer_group
        self.enabled = enabled
        self._breached = breached
        self.book = DeadlineBook(subject)
        self._closed = False
        self._credit_hold_placed = False
        self._ladders: list[asyncio.Task[None]] = []
        self._outbox: list[asyncio.Task[None]] = []

    async def arm(self, *requests: DeadlineRequest) -> None:
        """Start the clocks of these SLAs: plan each ladder in the company calendar, run it."""
        if not self.enabled or not requests or self._closed:
            return
        result = await act(
            ActivityName.PLAN_DEADLINES,
            PlanDeadlinesInput(
                order_no=self._subject.order_no,
                customer_group=self._customer_group(),
                priority=self._priority(),
                requests=list(requests),
            ),
            PlanDeadlinesResult,
        )
        for plan in result.plans:
            generation = self.book.arm(plan, workflow.now())
            self._ladders.append(asyncio.create_task(self._run(plan, generation)))
        self._changed()

    def meet(self, sla: Sla, key: str | None = None) -> None:
        """The deadline (all of this SLA's, or the one under `key`) was met: it stops."""
        if self.book.meet(sla.value, workflow.now(), key):
            self._changed()

    def drop(self, sla: Sla, key: str) -> None:
        """Its subject went away (a replaced production order): no longer chased."""
        self.book.drop(sla.value, key)

    def pause(self, at: datetime) -> None:
        """On hold: every open ladder stops where it is."""
        self.book.pause_all(at)

    def resume(self, at: datetime) -> None:
        """Released: the paused ladders go on, later by the time held."""
        for plan, generation in self.book.resume_all(at):
            self._ladders.append(asyncio.create_task(self._run(plan, generation)))

    def take_log(self) -> tuple[list[EscalationRecord], list[Resolution]]:
        """The escalation-log rows not yet saved; the caller saves them with its view."""
        log = self.book.escalations, self.book.resolutions
        self.book.escalations, self.book.resolutions = [], []
        return log

    def close(self, at: datetime) -> None:
        """The holder ends: nothing is armed any more, every running ladder stops."""
        self._closed = True
        self.book.cancel_all(at)

    async def finished(self) -> None:
        """Wait for the ladders to stop and the outbox to deliver its notifications."""
        await asyncio.gather(*self._ladders)
        await asyncio.gather(*self._outbox)

    async def release_credit_hold(self) -> None:
        """The invoice whose dunning put the customer on credit hold is paid: lift it."""
        if not self._credit_hold_placed:
            return
        self._credit_hold_placed = False
        await act(
            ActivityName.RELEASE_CREDIT_HOLD,
            CreditHoldInput(
                customer_id=self._subject.customer_id,
                order_no=self._subject.order_no,
                at=workflow.now(),
            ),
            type(None),
        )
        self._record("credit_hold_released", "finance", self._subject.customer_id)

    def _live(self, name: str, generation: int) -> bool:
        return not self._closed and self.book.is_live(name, generation)

    async def _run(self, plan: DeadlinePlan, generation: int) -> None:
        """One durable timer at a time until the next step; met, re-armed or closed: stop."""
        for step in plan.steps:
            delay = step.at - workflow.now()
            if delay > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: not self._live(plan.name, generation), timeout=delay
                    )
                    return
                except TimeoutError:
                    pass
            if not self._live(plan.name, generation):
                return
            await self._fire(plan, step)

    async def _fire(self, plan: DeadlinePlan, step: PlannedStep) -> None:
        now = workflow.now()
        subject = self._subject
        escalation = self.book.fired(plan, step, now)
        what = step.message or f"{plan.sla} {step.kind}"
        self._record(
            f"deadline_{step.kind}",
            "system",
            f"{plan.sla}: {what} (due {plan.due_at:%Y-%m-%d %H:%M} UTC; "
            f"notify {', '.join(step.notify) or 'nobody'})",
        )
        notification = Notification(
            id=escalation.notification_id,
            order_no=subject.order_no,
            customer_id=subject.customer_id,
            status=self._status(),
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
        if step.kind is StepKind.ESCALATION and step.level == 1 and self._breached is not None:
            await self._breached(Sla(plan.sla), plan.key)
        if step.action is StepAction.EXPIRE and self._expire is not None:
            self._expire(EXPIRY_REASONS.get(plan.sla, f"{plan.sla}_expired"), what)
        elif step.action is StepAction.CREDIT_HOLD and not self._credit_hold_placed:
            self._credit_hold_placed = True
            await act(
                ActivityName.PLACE_CREDIT_HOLD,
                CreditHoldInput(
                    customer_id=subject.customer_id,
                    order_no=subject.order_no,
                    at=now,
                    reason=f"invoice of order {subject.order_no} overdue",
                ),
                type(None),
            )
            self._record("credit_hold_placed", "system", subject.customer_id)

    async def _send(self, notification: Notification) -> None:
        """The outbox: Temporal retries the webhook until it is delivered."""
        await workflow.execute_activity(
            ActivityName.SEND_NOTIFICATION,
            notification,
            start_to_close_timeout=NOTIFICATION_TIMEOUT,
            retry_policy=NOTIFY_RETRY,
        )
        self.book.delivered(notification.id, workflow.now())
