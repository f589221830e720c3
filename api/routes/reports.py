"""`GET /reports/overdue`: every overdue order, what is late, by how much, and who holds it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import Principal, allowed
from api.deps import DbDep
from domain.auth import Permission
from domain.orders import DeadlineView
from domain.statuses import OrderStatus
from store import queries

router = APIRouter(prefix="/reports", tags=["reports"])


class OverdueDeadline(BaseModel):
    order_no: str
    customer_id: str
    sla: str
    key: str
    due_at: datetime
    overdue_seconds: int
    overdue_for: str
    escalation_level: int
    held_by: list[str]


class OverdueStage(BaseModel):
    stage: OrderStatus
    label: dict[str, str]
    count: int
    deadlines: list[OverdueDeadline]


class OverdueReport(BaseModel):
    generated_at: datetime
    orders: int
    stages: list[OverdueStage]


def _human(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
    ]
    return " ".join(p for p in parts if p) or f"{seconds}s"


def overdue_deadlines(
    order_no: str, customer_id: str, deadlines: Iterable[dict[str, Any]], now: datetime
) -> list[OverdueDeadline]:
    """An order's breached deadlines as its read model stored them (its view's `deadlines`):
    how late each is at `now`, its escalation level and who holds it. The report and the
    order list (`GET /orders`) both show these."""
    found: list[OverdueDeadline] = []
    for raw in deadlines:
        deadline = DeadlineView.model_validate(raw)
        if deadline.status != "breached":
            continue
        late = max(0, int((now - deadline.due_at).total_seconds()))
        found.append(
            OverdueDeadline(
                order_no=order_no,
                customer_id=customer_id,
                sla=deadline.sla,
                key=deadline.key,
                due_at=deadline.due_at,
                overdue_seconds=late,
                overdue_for=_human(late),
                escalation_level=deadline.escalation_level,
                held_by=deadline.held_by,
            )
        )
    return found


@router.get("/overdue")
async def overdue_report(
    db: DbDep,
    _: Annotated[Principal, allowed(Permission.REPORTS_READ)],
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> OverdueReport:
    """Overdue orders grouped by the stage (status) they are stuck in, the most escalated first."""
    now = datetime.now(UTC)
    stages: dict[OrderStatus, list[OverdueDeadline]] = {}
    rows = await queries.overdue_orders(db, limit=limit)
    for row in rows:
        late = overdue_deadlines(row.order_no, row.customer_id, row.view.get("deadlines", []), now)
        if late:
            stages.setdefault(OrderStatus(row.status), []).extend(late)
    return OverdueReport(
        generated_at=now,
        orders=len(rows),
        stages=[
            OverdueStage(
                stage=stage,
                label={"en": stage.label_en, "zh": stage.label_zh},
                count=len(items),
                deadlines=items,
            )
            for stage, items in sorted(stages.items(), key=lambda kv: -len(kv[1]))
        ],
    )
