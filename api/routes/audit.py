"""`GET /audit`: the append-only, chained record of what was done to orders, each entry
marked with whether it verifies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.auth import allowed
from api.deps import DbDep
from api.principal import Principal
from domain.auth import Permission
from domain.text import ID_PATTERN
from store import audit

router = APIRouter(tags=["audit"])


class AuditEntryPublic(BaseModel):
    seq: int
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
    key_id: str = Field(description='The audit key that sealed it ("": from before keys).')
    verified: bool = Field(
        description="Its hash matches its content under its key, and it is linked to the "
        "entry before it: what `python -m store.audit verify` checks of each entry."
    )
    problem: str | None = Field(description="Why it does not verify, when it does not.")


@router.get("/audit")
async def list_audit(
    db: DbDep,
    _: Annotated[Principal, allowed(Permission.AUDIT_READ)],
    order_no: Annotated[str | None, Query(max_length=64, pattern=ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[AuditEntryPublic]:
    """Entries in chain order (`ops` and `admin`); nothing here can change them. An entry that
    does not verify is served marked (`verified: false` and the `problem`). Entries deleted from
    the chain's end show only to `python -m store.audit verify`, against the audit anchor."""
    rows = await audit.entries(db, order_no=order_no, limit=limit, offset=offset)
    return [
        AuditEntryPublic(**entry, verified=problem is None, problem=problem)
        for entry, problem in rows
    ]
