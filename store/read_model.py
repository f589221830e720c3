"""The read model: an order's row (the whole order as JSON, and the columns lists filter on),
and the escalation log of orders and returns."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, update
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel

from domain.audit import AuditSeal
from domain.messages import EscalationRecord, Resolution, SaveOrderViewInput
from store import audit

_ORDERS = SQLModel.metadata.tables["orderrecord"]
_ESCALATIONS = SQLModel.metadata.tables["escalation"]
_ESCALATIONS_KNOWN = sa_select(_ESCALATIONS.c.id).where(
    _ESCALATIONS.c.id.in_(bindparam("ids", expanding=True))
)
_INSERT_ESCALATION = insert(_ESCALATIONS)

# What a newer save of an order replaces in its row.
_REPLACED = (
    "seq",
    "status",
    "total",
    "closed",
    "overdue",
    "escalation_level",
    "updated_at",
    "changed_at",
    "view",
)


@functools.cache
def _view_upsert(dialect: str, columns: frozenset[str]) -> Any:
    """Insert an order's row, or replace the columns that change if its `seq` is newer (built
    once per dialect: this runs at every point every order waits)."""
    upsert = (sqlite_insert if dialect == "sqlite" else pg_insert)(_ORDERS)
    return upsert.on_conflict_do_update(
        index_elements=[_ORDERS.c.order_no],
        set_={name: upsert.excluded[name] for name in _REPLACED if name in columns},
        where=_ORDERS.c.seq < upsert.excluded.seq,
    )


def save_views(conn: Connection, seal: AuditSeal, saves: list[SaveOrderViewInput]) -> None:
    """Read-model rows of one or more orders, with their audit entries and escalation log.

    One statement writes the rows: an order's newest save inserts or replaces its row, and an
    older one (a retry, a late arrival) never overwrites a newer row."""
    newest: dict[str, SaveOrderViewInput] = {}
    for inp in saves:
        kept = newest.get(inp.view.order_no)
        if kept is None or inp.seq > kept.seq:
            newest[inp.view.order_no] = inp
    rows = [_view_row(inp) for inp in newest.values()]
    conn.execute(_view_upsert(conn.dialect.name, frozenset(rows[0])), rows)
    audit.append_records(conn, seal, [record for inp in saves for record in inp.audit])
    for inp in saves:
        log_escalations(conn, inp.escalations, inp.resolutions)


def _view_row(inp: SaveOrderViewInput) -> dict[str, Any]:
    view = inp.view
    return {
        "order_no": view.order_no,
        "workflow_id": view.workflow_id,
        "customer_id": view.customer_id,
        "priority": view.priority.value,
        "entered_by": view.entered_by,
        "fingerprint": inp.fingerprint,
        "received_at": view.received_at,
        "seq": inp.seq,
        "status": view.status.value,
        "total": view.total,
        "closed": view.closed,
        "overdue": view.overdue,
        "escalation_level": view.escalation_level,
        "updated_at": view.updated_at,
        "changed_at": datetime.now(UTC),  # when it was written: the live updates' cursor
        "view": view.model_dump(mode="json"),
    }


def log_escalations(
    conn: Connection, records: list[EscalationRecord], resolutions: list[Resolution]
) -> None:
    """The escalation log: new steps once each, and when their deadlines were resolved."""
    if records:
        ids = [r.id for r in records]
        seen = set((conn.execute(_ESCALATIONS_KNOWN, {"ids": ids})).scalars())
        new = [r.model_dump() for r in records if r.id not in seen]
        if new:
            conn.execute(_INSERT_ESCALATION, new)
    for resolution in resolutions:
        rows = update(_ESCALATIONS).where(
            _ESCALATIONS.c.order_no == resolution.order_no,
            _ESCALATIONS.c.sla == resolution.sla,
            _ESCALATIONS.c.key == resolution.key,
            _ESCALATIONS.c.resolved_at.is_(None),
        )
        if resolution.ids is not None:
            rows = rows.where(_ESCALATIONS.c.id.in_(resolution.ids))
        conn.execute(rows.values(resolved_at=resolution.at))
