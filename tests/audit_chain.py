"""What the audit tests share: the code before keys (plain SHA-256 links, no key id), as it
wrote its databases, and a database writer's tampering, done with plain SQL on a copy."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from domain.audit import GENESIS, AuditSeal, legacy_hash
from store import audit
from store.types import UTCDateTime

# The table as the code before keys knew it: no `key_id` (and no default to fill one in).
LEGACY_TABLE = sa.table(
    "auditentry",
    *(
        sa.column(name)
        for name in ("id", "seq", "order_no", "action", "actor", "role", "source", "outcome")
    ),
    sa.column("at", UTCDateTime()),
    sa.column("detail", sa.JSON()),
    sa.column("prev_hash"),
    sa.column("hash"),
)


def entries(prefix: str, count: int, order_no: str = "") -> list[dict[str, Any]]:
    """Commands for the chain, as the API records them."""
    at = datetime.now(UTC)
    return [
        audit.new_entry(
            id=f"{prefix}-{uuid.uuid4().hex[:8]}-{n}",
            at=at + timedelta(milliseconds=n),
            order_no=order_no,
            action="command:create_product",
            actor="admin",
            role="admin",
            source="token@127.0.0.1",
            outcome="ok",
            detail={"sku": f"SKU-{n}"},
        )
        for n in range(count)
    ]


def legacy_append(conn: Connection, seal: AuditSeal, entries: Sequence[Mapping[str, Any]]) -> None:
    """`store.audit.append` before keys: what a database from before revision 0003 holds."""
    last = conn.execute(
        sa.text("SELECT seq, hash FROM auditentry WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1")
    ).first()
    seq, prev = (last.seq, last.hash) if last is not None else (0, GENESIS)
    ids = [entry["id"] for entry in entries]
    written = set(
        conn.execute(sa.select(LEGACY_TABLE.c.id).where(LEGACY_TABLE.c.id.in_(ids))).scalars()
    )
    rows = []
    for entry in entries:
        if entry["id"] in written:
            continue
        written.add(entry["id"])
        seq += 1
        row = {**entry, "seq": seq, "prev_hash": prev}
        row["hash"] = prev = legacy_hash(prev, row)
        rows.append(row)
    if rows:
        conn.execute(sa.insert(LEGACY_TABLE), rows)


def copy_sqlite(source_url: str, target: Path) -> str:
    """A consistent copy of a SQLite database in use (its WAL included): the URL of the copy."""
    source = source_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    return f"sqlite+aiosqlite:///{target}"


def sql(url: str, statement: str, *params: Sequence[Any]) -> None:
    """Statements run on a SQLite file with nothing of ours between: a database writer."""
    with sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///")) as conn:
        if params:
            conn.executemany(statement, params)
        else:
            conn.execute(statement)
