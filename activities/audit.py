"""The audit anchor's step: a signed checkpoint of the audit chain's head."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from domain.audit import CheckpointAuditInput, CheckpointAuditResult
from domain.messages import ActivityName
from store import audit
from store.db import Database


class AuditActivities:
    """The audit chain, bound to the database (and its audit keys)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Callable[..., Any]]:
        return [self.checkpoint_audit]

    @activity.defn(name=ActivityName.CHECKPOINT_AUDIT)
    async def checkpoint_audit(self, inp: CheckpointAuditInput) -> CheckpointAuditResult:
        """The chain's head now, signed with the active audit key; and whether the chain still
        reaches the anchor's last checkpoint with the same hash."""
        return await self.db.read(audit.checkpoint, self.db.audit_seal, inp, datetime.now(UTC))
