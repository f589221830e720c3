"""The command log: on the audit chain, who (the token's user), their role, from where, what,
and the outcome, for every command no workflow records itself.

An order records each command it accepts, in the same step as the effect, with the caller's
role and source (`Principal.caller`), so the API does not write it a second time. What never
reaches an order or what an order refuses (403, 404, 409, 422, …) is recorded here, and so is
every command to returns and the catalog.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import structlog

from api.principal import Principal
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
    hides the command's answer."""
    await record_attempt(
        db,
        actor=principal.name,
        role=principal.role.value,
        source=principal.caller.source,
        action=action,
        outcome=outcome,
        order_no=order_no,
        detail=detail,
    )


async def record_attempt(
    db: Database,
    *,
    actor: str,
    role: str,
    source: str,
    action: str,
    outcome: str,
    order_no: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """`record_command` for a caller who is not (yet) a principal: a refused sign-in or API
    key, recorded under the name it claimed (`role` empty when that is unknown)."""
    entry = audit.new_entry(
        id=uuid.uuid4().hex,
        at=datetime.now(UTC),
        order_no=order_no,
        action=f"command:{action}",
        actor=actor,
        role=role,
        source=source,
        outcome=outcome,
        detail=detail,
    )
    try:
        await db.write(audit.append, db.audit_seal, [entry])
    except Exception as exc:  # the database is down: the answer still goes out
        log.warning("command_not_audited", action=action, order_no=order_no, error=repr(exc))


def outcome_of(status: int) -> str:
    return "ok" if status < 400 else f"refused:{status}"
