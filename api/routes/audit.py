"""`GET /audit`: the append-only, hash-chained record of what was done to orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import allowed
from api.deps import DbDep
from api.principal import Principal
from domain.auth import Permission
from store import audit

router = APIRouter(tags=["audit"])


class AuditEntryPublic(BaseModel):
    seq: int | None
    id: str
    at: datetime
    order_no: str
    action: str
    actor: str
    role: str
    source: str
    outcome: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


@router.get("/audit")
async def list_audit(
    db: DbDep,
    _: Annotated[Principal, allowed(Permission.AUDIT_READ)],
    order_no: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[AuditEntryPublic]:
    """Entries in chain order (`ops` and `admin`); nothing here can change them. Verify the chain with
    `python -m store.audit verify`."""
    rows = await audit.entries(db, order_no=order_no, limit=limit, offset=offset)
    return [AuditEntryPublic.model_validate(row, from_attributes=True) for row in rows]
