"""Production orders: the statement that withdraws them, shared by a cancellation's saga and the
repair of an order whose workflow was terminated."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from domain.statuses import OPEN_PRODUCTION, ProductionOrderStatus
from store.rows import only

_PRODUCTION_ORDERS = SQLModel.metadata.tables["productionorder"]


def cancel_open(
    conn: Connection, order_no: str, at: datetime, ids: list[str] | None = None
) -> list[str]:
    """Cancel the order's production orders not yet complete (those in `ids`, or all): open ones
    (planned, or partially completed: what was produced stays in stock) become `cancelled` at
    `at`, once; the ids cancelled now."""
    table = _PRODUCTION_ORDERS
    query = sa_select(table.c.id).where(
        table.c.order_no == order_no, table.c.status.in_(OPEN_PRODUCTION), *only(table.c.id, ids)
    )
    cancelled = list((conn.execute(query.order_by(table.c.id).with_for_update())).scalars())
    if cancelled:
        conn.execute(
            update(table)
            .where(table.c.id.in_(cancelled))
            .values(status=ProductionOrderStatus.CANCELLED, completed_at=at)
        )
    return cancelled
