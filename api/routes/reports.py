"""`GET /reports/overdue`: every overdue order, what is late, by how much, and who holds it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import allowed
from api.deps import DbDep
from api.orders_read import overdue_deadlines
from api.principal import Principal
from api.schemas import OverdueDeadline
from domain.auth import Permission
from domain.statuses import OrderStatus
from store import queries

router = APIRouter(prefix="/reports", tags=["reports"])


class OverdueStage(BaseModel):
    stage: OrderStatus
    label: dict[str, str]
    count: int
    deadlines: list[OverdueDeadline]


class OverdueReport(BaseModel):
    generated_at: datetime
    orders: int
    stages: list[OverdueStage]


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
