"""The audit chain: appending entries sealed with the audit key (`domain/audit.py`), reading
them with whether each verifies, and the signed checkpoints of its head that the audit anchor
keeps. `verify` checks the whole chain (`check.py`); `python -m store.audit` is the tool
(`__main__.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, union_all
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from domain.audit import (
    GENESIS,
    AuditCheckpoint,
    AuditSeal,
    CheckpointAuditInput,
    CheckpointAuditResult,
    problem,
)
from domain.messages import AuditRecord
from store.audit.check import Report, verify_chain
from store.db import Database

AUDIT_LOCK = 0x4155444954  # "AUDIT": one appender at a time on PostgreSQL
_AUDIT = SQLModel.metadata.tables["auditentry"]


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


# Which of some entries are recorded already, and the chain's last entry: one round trip.
_LAST = sa_select(_AUDIT.c.id, _AUDIT.c.seq, _AUDIT.c.hash).order_by(_AUDIT.c.seq.desc()).limit(1)
_LAST_SUB = _LAST.subquery()
_KNOWN_OR_LAST = union_all(
    sa_select(_AUDIT.c.id, _AUDIT.c.seq, _AUDIT.c.hash).where(
        _AUDIT.c.id.in_(bindparam("ids", expanding=True))
    ),
    sa_select(_LAST_SUB.c.id, _LAST_SUB.c.seq, _LAST_SUB.c.hash),
).subquery()
_FOUND = sa_select(_KNOWN_OR_LAST.c.id, _KNOWN_OR_LAST.c.seq, _KNOWN_OR_LAST.c.hash)
_INSERT = insert(_AUDIT)  # a Core insert: no ORM
_LOCK = sa_select(func.pg_advisory_xact_lock(AUDIT_LOCK))


def append(conn: Connection, seal: AuditSeal, entries: Sequence[Mapping[str, Any]]) -> None:
    """Chain and add entries (`new_entry`) not yet recorded (an entry id is written once),
    sealed with `seal`'s active key.

    Plain statements on the caller's connection, not the ORM's unit of work: this runs for
    every command and every order step, inside the write transaction."""
    if not entries:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(_LOCK)
    ids = {entry["id"] for entry in entries}
    found = [(row.id, row.seq, row.hash) for row in conn.execute(_FOUND, {"ids": list(ids)})]
    seq, prev = max(((seq, hash_) for _, seq, hash_ in found), default=(0, GENESIS))
    written = {id_ for id_, _, _ in found if id_ in ids}
    rows: list[dict[str, Any]] = []
    for entry in entries:
        if entry["id"] in written:
            continue
        written.add(entry["id"])
        seq += 1
        row = {**entry, "seq": seq, "prev_hash": prev, "key_id": seal.key_id}
        row["hash"] = prev = seal.seal(prev, row)
        rows.append(row)
    if rows:
        conn.execute(_INSERT, rows)


def append_records(conn: Connection, seal: AuditSeal, records: Sequence[AuditRecord]) -> None:
    """Audit entries of a workflow step join the chain in the same transaction as its effect."""
    append(
        conn,
        seal,
        [new_entry(**record.model_dump(mode="json") | {"at": record.at}) for record in records],
    )


_DETAIL_OF = sa_select(_AUDIT.c.detail).where(_AUDIT.c.id == bindparam("entry_id"))


def detail_of(conn: Connection, entry_id: str) -> dict[str, Any] | None:
    """The detail of the entry recorded under `entry_id`, None when there is none."""
    row = (conn.execute(_DETAIL_OF, {"entry_id": entry_id})).first()
    return None if row is None else dict(row.detail)


_HASH_AT = sa_select(_AUDIT.c.hash).where(_AUDIT.c.seq == bindparam("seq"))


def checkpoint(
    conn: Connection, seal: AuditSeal, inp: CheckpointAuditInput, at: datetime
) -> CheckpointAuditResult:
    """A signed checkpoint of the chain's head now, and whether the chain still reaches the
    previous checkpoint (`inp.last`) with the same hash (the anchor keeps it if not)."""
    last = conn.execute(_LAST).first()
    seq, hash_ = (last.seq, last.hash) if last is not None else (0, GENESIS)
    holds = True
    if inp.last is not None and inp.last.seq > 0:
        holds = conn.execute(_HASH_AT, {"seq": inp.last.seq}).scalar() == inp.last.hash
    return CheckpointAuditResult(checkpoint=seal.checkpoint(seq, hash_, at), last_still_holds=holds)


# A page of entries, each with the hash and key id of the entry before it (one round trip).
_PREV = _AUDIT.alias("prev")
_CHECKED = (
    sa_select(
        _AUDIT,
        _PREV.c.seq.label("prev_seq"),
        _PREV.c.hash.label("prev_row_hash"),
        _PREV.c.key_id.label("prev_key_id"),
    )
    .select_from(_AUDIT.outerjoin(_PREV, _PREV.c.seq == _AUDIT.c.seq - 1))
    .order_by(_AUDIT.c.seq)
)


def _entries(
    conn: Connection, seal: AuditSeal, order_no: str | None, limit: int, offset: int
) -> list[tuple[dict[str, Any], str | None]]:
    query = _CHECKED if not order_no else _CHECKED.where(_AUDIT.c.order_no == order_no)
    checked: list[tuple[dict[str, Any], str | None]] = []
    for row in conn.execute(query.offset(offset).limit(limit)).mappings():
        entry = {column.name: row[column.name] for column in _AUDIT.columns}
        prev = (
            None
            if row["prev_seq"] is None
            else {"hash": row["prev_row_hash"], "key_id": row["prev_key_id"]}
        )
        checked.append((entry, problem(seal, entry, prev)))
    return checked


async def entries(
    db: Database, *, order_no: str | None, limit: int, offset: int
) -> list[tuple[dict[str, Any], str | None]]:
    """Entries in chain order, each with why it would not verify (None: it does)."""
    return await db.read(_entries, db.audit_seal, order_no, limit, offset)


async def verify(db: Database, checkpoints: Sequence[AuditCheckpoint] = ()) -> Report:
    """The whole chain checked (`check.verify_chain`) with the database's audit keys."""
    return await db.read(verify_chain, db.audit_seal, checkpoints)
