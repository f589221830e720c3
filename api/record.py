"""The command log: every command the API receives, accepted or refused, on the audit chain.

The order workflow records each effect in the same step as the effect; this records the
request itself: who (the token's user), their role, from where, what, and the outcome — so a
refused attempt (403, 409, 422) is on the record too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from api.auth import Principal
from store import audit
from store.db import Database

log = structlog.get_logger(__name__)


async def record_command(
    db: Database,
    principal: Principal,
    action: str,
    outcome: str,
    *,
    order_no: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry before the answer goes out; a failure to write it is logged, never
    hides the command's answer. Entries of requests answered at the same time share a
    transaction (`Database.grouped`)."""
    entry = audit.new_entry(
        id=uuid.uuid4().hex,
        at=datetime.now(UTC),
        order_no=order_no,
        action=f"command:{action}",
        actor=principal.name,
        role=principal.role.value,
        source=f"{principal.via}@{principal.source}",
        outcome=outcome,
        detail=detail,
    )
    try:
        await db.grouped(audit.append).write(entry)
    except Exception as exc:  # the database is down: the answer still goes out
        log.warning("command_not_audited", action=action, order_no=order_no, error=repr(exc))


def outcome_of(status: int) -> str:
    return "ok" if status < 400 else f"refused:{status}"
