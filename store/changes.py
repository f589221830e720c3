"""The orders changed since a moment: what the web app's live updates fan out. The read
model's `changed_at` (the writer's clock when it wrote the row, indexed) is the cursor, so any
API process sees every change whichever worker made it: the database is the one source."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlmodel import SQLModel

from store.db import Database

_ORDERS = SQLModel.metadata.tables["orderrecord"]
_CHANGED = select(
    _ORDERS.c.order_no,
    _ORDERS.c.customer_id,
    _ORDERS.c.status,
    _ORDERS.c.seq,
    _ORDERS.c.changed_at,
)


class Change(NamedTuple):
    """One write of an order's row: which order, whose, its status and save number."""

    order_no: str
    customer_id: str
    status: str
    seq: int
    changed_at: datetime


async def last_change(db: Database) -> datetime | None:
    """When the newest row was written (None: no row has been written since `changed_at`)."""
    async with db.reading() as conn:
        newest: datetime | None = (
            await conn.execute(select(func.max(_ORDERS.c.changed_at)))
        ).scalar_one()
    return newest


async def changed_since(db: Database, since: datetime) -> list[Change]:
    """The rows written after `since`, oldest first (an index range on `changed_at`)."""
    query = _CHANGED.where(_ORDERS.c.changed_at > since).order_by(_ORDERS.c.changed_at)
    async with db.reading() as conn:
        rows = (await conn.execute(query)).all()
    return [Change(*row) for row in rows]
