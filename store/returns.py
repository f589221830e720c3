"""What the returns desk reads: returns by status, newest first (the web app's list; one
return is `store.queries.get_return`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from store.db import Database
from store.tables import ReturnRecord


async def list_returns(
    db: Database,
    *,
    status: str | None,
    limit: int,
    offset: int,
    visible: set[str] | None = None,
) -> tuple[Sequence[ReturnRecord], int]:
    """Returns newest first, with their total; `status`: only those in it; `visible`: only
    these customers' (a scoped sales rep)."""
    conditions: list[Any] = []
    if status:
        conditions.append(col(ReturnRecord.status) == status)
    if visible is not None:
        conditions.append(col(ReturnRecord.customer_id).in_(visible))
    query = (
        select(ReturnRecord)
        .where(*conditions)
        .order_by(col(ReturnRecord.requested_at).desc(), col(ReturnRecord.return_no).desc())
    )
    count = select(func.count()).select_from(ReturnRecord).where(*conditions)
    async with db.reader() as session:
        rows = (await session.exec(query.offset(offset).limit(limit))).all()
        total = (await session.exec(count)).one()
    return rows, int(total)
