"""The read model: the order's row for lists, reports and closed orders, written at every
point the order waits, with the audit entries and escalations of the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from domain.messages import ActivityName, SaveOrderViewInput
from store.db import Database
from store.read_model import save_views


class ReadModelActivities:
    """The read model, bound to the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Callable[..., Any]]:
        return [self.save_order_view]

    @activity.defn(name=ActivityName.SAVE_ORDER_VIEW)
    async def save_order_view(self, inp: SaveOrderViewInput) -> None:
        """Write the order's read-model row (only forward: an older `seq` never overwrites),
        with the audit entries and escalations of the step, in one transaction."""
        await self.db.write(save_views, self.db.audit_seal, [inp])
