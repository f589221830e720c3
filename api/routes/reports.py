"""`GET /reports/overdue`: every overdue order, what is late, by how much, and who holds it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import allowed
from api.deps import DbDep
from api.orders_read import OverdueReport, overdue_by_stage
from api.principal import Principal
from domain.auth import Permission

router = APIRouter(prefix="/reports", tags=["reports"])


@router.get("/overdue")
async def overdue_report(
    db: DbDep,
    _: Annotated[Principal, allowed(Permission.REPORTS_READ)],
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> OverdueReport:
    """Overdue orders grouped by the stage (status) they are stuck in, the most escalated first."""
    return await overdue_by_stage(db, limit)
