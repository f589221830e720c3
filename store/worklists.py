"""What the people's work lists read of orders: a list row's glance (what it waits for, its
deadlines), the approvers' inbox, operations' counts by status and the escalations fired.
Parts of each order's view, read by JSON path in the database, never whole views (they are
large, and a page shows many orders)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import case, func, select
from sqlmodel import SQLModel, col
from sqlmodel import select as sqlmodel_select

from domain.statuses import OrderStatus
from store.db import Database
from store.tables import Escalation, OrderRecord  # noqa: F401 (OrderRecord: the table below)

_ORDERS = SQLModel.metadata.tables["orderrecord"]


class Glance(NamedTuple):
    """What a list row shows of an order beyond its columns."""

    waiting_for: str | None
    deadlines: list[dict[str, Any]]


async def glances(db: Database, order_nos: Sequence[str]) -> dict[str, Glance]:
    """What these orders wait for and their deadlines (two parts of each view, read by JSON
    path, as `deadlines_of` does), by order number."""
    if not order_nos:
        return {}
    view = _ORDERS.c.view
    query = select(_ORDERS.c.order_no, view["waiting_for"], view["deadlines"]).where(
        _ORDERS.c.order_no.in_(list(order_nos))
    )
    async with db.reading() as conn:
        rows = (await conn.execute(query)).all()
    return {
        order_no: Glance(str(waiting) if waiting else None, list(deadlines or []))
        for order_no, waiting, deadlines in rows
    }


class PendingApproval(NamedTuple):
    """An order awaiting an approver, with what the decision needs (parts of its view)."""

    order_no: str
    customer_id: str
    total: Decimal
    received_at: datetime
    entered_by: str
    parts: dict[str, Any]  # APPROVAL_PARTS


APPROVAL_PARTS = (
    "approval",
    "approvals",
    "credit",
    "lines",
    "deadlines",
    "customer_name",
    "notes",
    "promise",  # an order back at approval after confirmation (amended, date too soon)
)


async def pending_approvals(
    db: Database,
    *,
    visible: set[str] | None,
    limit: int,
    parts: Sequence[str] = APPROVAL_PARTS,
    order_nos: Sequence[str] | None = None,
) -> list[PendingApproval]:
    """Open orders in PENDING_APPROVAL (oldest first), with the `parts` of their views an
    approver reads, not the whole views (only `order_nos`, when given)."""
    orders = _ORDERS.c
    query = (
        select(
            orders.order_no,
            orders.customer_id,
            orders.total,
            orders.received_at,
            orders.entered_by,
            *(orders.view[part] for part in parts),
        )
        .where(
            orders.status == OrderStatus.PENDING_APPROVAL.value,
            orders.closed.is_(False),
        )
        .order_by(orders.received_at)
        .limit(limit)
    )
    if visible is not None:
        query = query.where(orders.customer_id.in_(visible))
    if order_nos is not None:
        query = query.where(orders.order_no.in_(list(order_nos)))
    async with db.reading() as conn:
        rows = (await conn.execute(query)).all()
    return [
        PendingApproval(
            row[0], row[1], row[2], row[3], row[4], dict(zip(parts, row[5:], strict=True))
        )
        for row in rows
    ]


async def status_counts(db: Database, *, visible: set[str] | None) -> dict[str, tuple[int, int]]:
    """Orders by status: how many, and how many of them are overdue (operations' dashboard)."""
    orders = _ORDERS.c
    query = select(
        orders.status, func.count(), func.sum(case((orders.overdue.is_(True), 1), else_=0))
    ).group_by(orders.status)
    if visible is not None:
        query = query.where(orders.customer_id.in_(visible))
    async with db.reading() as conn:
        rows = (await conn.execute(query)).all()
    return {status: (int(count), int(late or 0)) for status, count, late in rows}


async def escalations_since(db: Database, since: datetime, *, limit: int) -> Sequence[Escalation]:
    """The ladder steps fired since `since`, the latest first."""
    query = (
        sqlmodel_select(Escalation)
        .where(col(Escalation.fired_at) >= since)
        .order_by(col(Escalation.fired_at).desc(), col(Escalation.id))
        .limit(limit)
    )
    async with db.reader() as session:
        return (await session.exec(query)).all()
