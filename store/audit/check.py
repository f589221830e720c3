"""Verifying the whole audit chain: every entry against the one before it, the entries exactly
1..N, and checkpoints of its head kept outside the database still holding."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from sqlalchemy import Connection, bindparam
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel

from domain.audit import LEGACY, AuditCheckpoint, AuditSeal, problem
from store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

_AUDIT = SQLModel.metadata.tables["auditentry"]


@dataclasses.dataclass
class Report:
    """What `verify` found: how many entries, and the bad ones (the first few named)."""

    entries: int = 0
    legacy: int = 0  # entries from before keys (plain SHA-256)
    anchored: list[AuditCheckpoint] = dataclasses.field(default_factory=list)
    bad: int = 0
    named: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    unsigned: list[AuditCheckpoint] = dataclasses.field(default_factory=list)
    malformed: list[str] = dataclasses.field(default_factory=list)  # ids: seq not a number

    NAMED: ClassVar[int] = 10

    def flag(self, seq: int, why: str, count: int = 1) -> None:
        self.bad += count
        if len(self.named) < self.NAMED:
            self.named.append((seq, why))

    @property
    def first(self) -> tuple[int, str] | None:
        return min(self.named, default=None)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.unsigned


PAGE = 2000
_FIRST_PAGE = sa_select(_AUDIT).order_by(_AUDIT.c.seq).limit(PAGE)
_PAGE = _FIRST_PAGE.where(_AUDIT.c.seq > bindparam("after"))


def verify_chain(
    conn: Connection, seal: AuditSeal, checkpoints: Iterable[AuditCheckpoint] = ()
) -> Report:
    """Check every entry against the one before it, the entries are exactly 1..N, and each
    checkpoint (signed with one of `seal`'s keys) still holds."""
    report = Report()
    at_seq: dict[int, list[AuditCheckpoint]] = {}
    for point in checkpoints:
        if not seal.signed(point):
            report.unsigned.append(point)
            continue
        report.anchored.append(point)
        at_seq.setdefault(point.seq, []).append(point)
    prev: Mapping[Any, Any] | None = None
    expected, after = 1, None
    while (
        rows := conn.execute(_FIRST_PAGE if after is None else _PAGE, {"after": after})
        .mappings()
        .all()
    ):
        for entry in rows:
            seq = after = entry["seq"]
            report.entries += 1
            report.legacy += entry["key_id"] == LEGACY
            if not isinstance(seq, int):  # SQLite keeps what a writer gives an INTEGER column
                report.bad += 1
                report.malformed.append(str(entry["id"]))
                continue
            if seq < 1:
                report.flag(seq, problem(seal, entry, None) or "")
                continue
            if seq > expected:
                report.flag(expected, f"missing: entries {expected} to {seq - 1}", seq - expected)
            why = problem(seal, entry, prev if seq == expected else None)
            for point in at_seq.get(seq, ()):
                if why is None and point.hash != entry["hash"]:
                    why = (
                        f"not the entry the anchor's checkpoint of {point.at:%Y-%m-%d %H:%M:%S} saw"
                    )
            if why:
                report.flag(seq, why)
            prev, expected = entry, seq + 1
    latest = max((point.seq for point in report.anchored), default=0)
    if latest >= expected:
        report.flag(
            expected,
            f"missing: the chain ends at {expected - 1}, a checkpoint saw it reach {latest}",
            latest - expected + 1,
        )
    return report
