"""The order's deadlines as workflow state: armed plans, fired steps, met and cancelled SLAs.

Pure bookkeeping, no awaiting: the order workflow runs one ladder task per armed deadline and
tells this book what happened. The book keeps the order's view (`deadlines`, `overdue`,
`escalation_level`) and the escalation-log rows still to be written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import DeadlinePlan, EscalationRecord, PlannedStep, Resolution
    from domain.orders import DeadlineView, EscalationView
    from domain.policy import StepKind
    from domain.statuses import DeadlineStatus


class DeadlineSubject(Protocol):
    """What has deadlines: an order, a return. Escalations are logged under `order_no`."""

    order_no: str
    customer_id: str
    deadlines: list[DeadlineView]
    overdue: bool
    escalation_level: int


class DeadlineBook:
    def __init__(self, view: DeadlineSubject) -> None:
        self._view = view
        self._generation: dict[str, int] = {}
        self.escalations: list[EscalationRecord] = []  # fired, not yet in the escalation log
        self.resolutions: list[Resolution] = []  # met after breaching, not yet in the log
        self._ended = False
        self._plans: dict[str, DeadlinePlan] = {}
        self._armed: dict[str, int] = {}  # armings per deadline (pauses do not count)
        self._paused: list[str] = []

    def arm(self, plan: DeadlinePlan, at: datetime) -> int:
        """Start (or restart) a deadline; returns the generation its ladder runs under.

        Re-armed (a new date, a new approval round), the old arming's escalations are
        resolved: the order is no longer late against that deadline.
        """
        old = self._find(plan.name)
        if old is not None and old.open and old.escalations:
            self.resolutions.append(
                Resolution(
                    order_no=self._view.order_no,
                    sla=old.sla,
                    key=old.key,
                    at=at,
                    ids=[e.notification_id for e in old.escalations],
                )
            )
        generation = self._generation.get(plan.name, 0) + 1
        self._generation[plan.name] = generation
        self._armed[plan.name] = self._armed.get(plan.name, 0) + 1
        self._plans[plan.name] = plan
        deadline = DeadlineView(
            sla=plan.sla.value, key=plan.key, started_at=plan.start, due_at=plan.due_at
        )
        self._view.deadlines = [d for d in self._view.deadlines if d.name != plan.name]
        self._view.deadlines.append(deadline)
        self._refresh()
        return generation

    def pause_all(self, at: datetime) -> None:
        """On hold: every open deadline's ladder stops where it is."""
        for deadline in self._view.deadlines:
            if deadline.open and deadline.paused_at is None:
                deadline.paused_at = at
                self._generation[deadline.name] += 1
                self._paused.append(deadline.name)

    def resume_all(self, at: datetime) -> list[tuple[DeadlinePlan, int]]:
        """Released: the paused ladders go on, every remaining moment later by the time held.

        Returns the shifted plans (steps already fired left out) with their new generations.
        """
        resumed: list[tuple[DeadlinePlan, int]] = []
        for name in self._paused:
            deadline = self._find(name)
            if deadline is None or deadline.paused_at is None or not deadline.open:
                continue
            held = at - deadline.paused_at
            fired = {e.step for e in deadline.escalations}
            plan = self._plans[name]
            shifted = plan.model_copy(
                update={
                    "due_at": plan.due_at + held,
                    "steps": [
                        step.model_copy(update={"at": step.at + held})
                        for step in plan.steps
                        if step.index not in fired
                    ],
                }
            )
            self._plans[name] = shifted
            deadline.due_at = shifted.due_at
            deadline.paused_at = None
            self._generation[name] += 1
            resumed.append((shifted, self._generation[name]))
        self._paused = []
        return resumed

    def is_live(self, name: str, generation: int) -> bool:
        """Its ladder should still run: not met, not cancelled, not re-armed since."""
        deadline = self._find(name)
        return deadline is not None and deadline.open and self._generation.get(name) == generation

    def notification_id(self, plan: DeadlinePlan, step: PlannedStep) -> str:
        # Stable across pauses (a step fires once per arming, however often it is resumed).
        return f"{self._view.order_no}:{plan.name}:{self._armed[plan.name]}:{step.index}"

    def fired(self, plan: DeadlinePlan, step: PlannedStep, at: datetime) -> EscalationView:
        deadline = self._find(plan.name)
        assert deadline is not None
        escalation = EscalationView(
            step=step.index,
            kind=step.kind.value,
            level=step.level,
            notify=step.notify,
            action=step.action.value if step.action else None,
            message=step.message,
            at=at,
            notification_id=self.notification_id(plan, step),
        )
        deadline.escalations.append(escalation)
        deadline.held_by = step.notify
        if step.kind is StepKind.REMINDER:
            if deadline.status == DeadlineStatus.ON_TRACK:
                deadline.status = DeadlineStatus.AT_RISK
        else:
            deadline.status = DeadlineStatus.BREACHED
            deadline.escalation_level = max(deadline.escalation_level, step.level)
        self.escalations.append(
            EscalationRecord(
                id=escalation.notification_id,
                order_no=self._view.order_no,
                sla=deadline.sla,
                key=deadline.key,
                step=step.index,
                kind=step.kind.value,
                level=step.level,
                notify=step.notify,
                due_at=deadline.due_at,
                fired_at=at,
            )
        )
        self._refresh()
        return escalation

    def delivered(self, notification_id: str, at: datetime) -> None:
        for deadline in self._view.deadlines:
            for escalation in deadline.escalations:
                if escalation.notification_id == notification_id:
                    escalation.delivered_at = at

    def meet(self, sla: str, at: datetime, key: str | None = None) -> bool:
        """The deadline was met: its ladder stops. True if anything changed."""
        changed = False
        for deadline in self._view.deadlines:
            if deadline.sla == sla and (key is None or deadline.key == key) and deadline.open:
                if deadline.escalations:
                    self.resolutions.append(
                        Resolution(order_no=self._view.order_no, sla=sla, key=deadline.key, at=at)
                    )
                deadline.status = DeadlineStatus.MET
                deadline.met_at = at
                changed = True
        self._refresh()
        return changed

    def drop(self, sla: str, key: str) -> None:
        """A deadline whose subject went away (a replaced production order): no longer chased."""
        for deadline in self._view.deadlines:
            if deadline.sla == sla and deadline.key == key and deadline.open:
                deadline.status = DeadlineStatus.CANCELLED
        self._refresh()

    def cancel_all(self, at: datetime) -> None:
        """The order ended: nothing is pending any more (a breach stays on the record)."""
        self._ended = True
        for deadline in self._view.deadlines:
            if deadline.open:
                if deadline.escalations:
                    self.resolutions.append(
                        Resolution(
                            order_no=self._view.order_no,
                            sla=deadline.sla,
                            key=deadline.key,
                            at=at,
                        )
                    )
                if deadline.status != DeadlineStatus.BREACHED:
                    deadline.status = DeadlineStatus.CANCELLED
        self._refresh()

    def _find(self, name: str) -> DeadlineView | None:
        return next((d for d in self._view.deadlines if d.name == name), None)

    def _refresh(self) -> None:
        breached = (
            []
            if self._ended
            else [d for d in self._view.deadlines if d.status == DeadlineStatus.BREACHED]
        )
        self._view.overdue = bool(breached)
        self._view.escalation_level = max((d.escalation_level for d in breached), default=0)
