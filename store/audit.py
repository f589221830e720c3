"""The audit chain: appending entries with their hashes, reading them, verifying them.

`python -m store.audit verify` checks the whole chain (exit status 1 and the first broken
entry when it has been tampered with).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, union_all
from sqlmodel import SQLModel, col, select

from domain.messages import AuditRecord
from store.db import Database
from store.tables import AuditEntry

GENESIS = "0" * 64
AUDIT_LOCK = 0x4155444954  # "AUDIT": one appender at a time on PostgreSQL


def new_entry(
    *,
    id: str,
    at: datetime,
    order_no: str,
    action: str,
    actor: str,
    outcome: str,
    role: str = "",
    source: str = "",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An entry to `append`: a row of `AuditEntry` before it is chained. A plain dict, not the
    table model: building and filling a SQLModel instance cost more than hashing and inserting
    the entry (an order's saves append ~8 of them)."""
    return {
        "id": id,
        "at": at,
        "order_no": order_no,
        "action": action,
        "actor": actor,
        "role": role,
        "source": source,
        "outcome": outcome,
        "detail": detail or {},
    }


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    """The hash chaining `entry` (an `AuditEntry` row as a mapping) to the one before it."""
    content = {
        "id": entry["id"],
        "seq": entry["seq"],
        "at": entry["at"].isoformat(),
        "order_no": entry["order_no"],
        "action": entry["action"],
        "actor": entry["actor"],
        "role": entry["role"],
        "source": entry["source"],
        "outcome": entry["outcome"],
        "detail": entry["detail"],
    }
    body = json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


# Which of some entries are recorded already, and the chain's last entry: one round trip.
_LAST = (
    select(AuditEntry.id, AuditEntry.seq, AuditEntry.hash)
    .where(col(AuditEntry.seq).is_not(None))
    .order_by(col(AuditEntry.seq).desc())
    .limit(1)
    .subquery()
)
_KNOWN_OR_LAST = union_all(
    select(AuditEntry.id, AuditEntry.seq, AuditEntry.hash).where(
        col(AuditEntry.id).in_(bindparam("ids", expanding=True))
    ),
    select(_LAST.c.id, _LAST.c.seq, _LAST.c.hash),
).subquery()
_FOUND = select(_KNOWN_OR_LAST.c.id, _KNOWN_OR_LAST.c.seq, _KNOWN_OR_LAST.c.hash)
_INSERT = insert(SQLModel.metadata.tables["auditentry"])  # a Core insert: no ORM
_LOCK = select(func.pg_advisory_xact_lock(AUDIT_LOCK))


def append(conn: Connection, entries: Sequence[Mapping[str, Any]]) -> None:
    """Chain and add entries (`new_entry`) not yet recorded (an entry id is written once).

    Plain statements on the caller's connection, not the ORM's unit of work: this runs for
    every command and every order step, inside the write transaction."""
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)
    ids = {entry["id"] for entry in entries}
    found: list[tuple[str, int | None, str]] = [
        (row.id, row.seq, row.hash) for row in conn.execute(_FOUND, {"ids": list(ids)})
    ]
    seq, prev = max(
        ((seq, hash_) for _, seq, hash_ in found if seq is not None), default=(0, GENESIS)
    )
    written = {id_ for id_, _, _ in found if id_ in ids}
    rows: list[dict[str, Any]] = []
    for entry in entries:
        if entry["id"] in written:
            continue
        written.add(entry["id"])
        seq += 1
        row = {**entry, "seq": seq, "prev_hash": prev}
        row["hash"] = prev = entry_hash(prev, row)
        rows.append(row)
    if rows:
        conn.execute(_INSERT, rows)


_DETAIL_OF = select(AuditEntry.detail).where(col(AuditEntry.id) == bindparam("entry_id"))


def detail_of(conn: Connection, entry_id: str) -> dict[str, Any] | None:
    """The detail of the entry recorded under `entry_id`, None when there is none."""
    row = (conn.execute(_DETAIL_OF, {"entry_id": entry_id})).first()
    return None if row is None else dict(row.detail)


def append_records(conn: Connection, records: Sequence[AuditRecord]) -> None:
    """Audit entries of a workflow step join the chain in the same transaction as its effect."""
    append(
        conn,
        [new_entry(**record.model_dump(mode="json") | {"at": record.at}) for record in records],
    )


async def entries(
    db: Database, *, order_no: str | None, limit: int, offset: int
) -> Sequence[AuditEntry]:
    query = select(AuditEntry).order_by(col(AuditEntry.seq), col(AuditEntry.at))
    if order_no:
        query = query.where(col(AuditEntry.order_no) == order_no)
    async with db.reader() as session:
        return (await session.exec(query.offset(offset).limit(limit))).all()


async def verify(db: Database) -> tuple[int, int | None]:
    """(entries checked, seq of the first broken entry or None)."""
    checked, prev = 0, GENESIS
    async with db.reader() as session:
        chained = await session.exec(
            select(AuditEntry).where(col(AuditEntry.seq).is_not(None)).order_by(col(AuditEntry.seq))
        )
        expected_seq = 1
        for entry in chained:
            if (
                entry.seq != expected_seq
                or entry.prev_hash != prev
                or entry.hash != entry_hash(prev, entry.model_dump())
            ):
                return checked, entry.seq
            prev, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    return checked, None


async def _main(argv: list[str]) -> int:
    from settings import get_settings

    if argv[1:] != ["verify"]:
        print("usage: python -m store.audit verify", file=sys.stderr)
        return 2
    db = Database(get_settings().database_url)
    try:
        checked, broken = await verify(db)
    finally:
        await db.dispose()
    if broken is not None:
        print(f"audit chain BROKEN at entry {broken} ({checked} entries before it verify)")
        return 1
    print(f"audit chain OK: {checked} entries verify")
    return 0


def main(argv: Any = None) -> None:
    sys.exit(asyncio.run(_main(list(argv or sys.argv))))


if __name__ == "__main__":
    main()
