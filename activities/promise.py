"""Confirmation's promise (交期承诺): the order's delivery dates as its reservations stand.

An activity, not workflow code: the calendar and the policy may change while orders run, and
the promise an order was given is in its history. It only reads (the customer's transit
time); the promise is written with the order's view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from temporalio import activity

from domain.calendar import BusinessCalendar
from domain.messages import ActivityName, PromiseOrderInput, PromiseOrderResult
from domain.orders import production_order_id
from domain.policy import OrderPolicy, Sla
from domain.promise import (
    LineSupply,
    PromiseTerms,
    StockPosition,
    promise_order,
    requested_too_soon,
)
from store import queries
from store.db import Database

log = structlog.get_logger(__name__)
DEFAULT_DISPATCH = "P3D"


class PromiseActivities:
    def __init__(self, db: Database, policy: OrderPolicy, calendar: BusinessCalendar) -> None:
        self.db = db
        self.policy = policy
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [self.promise_order]

    @activity.defn(name=ActivityName.PROMISE_ORDER)
    async def promise_order(self, inp: PromiseOrderInput) -> PromiseOrderResult:
        """Each line from stock (what is reserved), after the supply that covers the rest, or
        after the production order it gets; dispatch per the SLA, then the transit time."""
        # Only what the order holds counts: its reservations and its own production orders.
        # Free stock is not promised (another order may reserve it first): at confirmation
        # the reservation has just taken what was free.
        transit = await self.db.read(queries.transit_days, inp.customer_id)
        sla = self.policy.resolve(Sla.DISPATCH, tier=inp.customer_group, priority=inp.priority)
        terms = PromiseTerms(
            confirmed_at=inp.at,
            dispatch=(sla.duration if sla and sla.duration else DEFAULT_DISPATCH),
            transit_days=self.policy.promise.transit_days if transit is None else transit,
        )
        lines = [
            LineSupply(
                line_no=line.line_no,
                sku=line.sku,
                quantity=line.quantity,
                from_stock=line.reserved_quantity,
                position=StockPosition(receipts=line.receipts),
                lead_time_days=line.lead_time_days,
                production_order_id=production_order_id(inp.order_no, line.line_no, inp.revision),
            )
            for line in inp.lines
        ]
        promise = promise_order(self.calendar, lines, terms, inp.delivery_policy)
        log.info("order_promised", promised_date=str(promise.promised_date), basis=promise.basis)
        too_soon = requested_too_soon(inp.requested_delivery_date, promise) is not None
        limit = self.policy.promise.written_confirmation_limit
        written = (
            f"total {inp.total} above the written confirmation limit {limit}"
            if inp.total > limit
            else "non-standard terms"
            if inp.non_standard_terms
            else None
        )
        return PromiseOrderResult(
            promise=promise,
            too_soon_needs_approval=too_soon
            and self.policy.promise.requested_date_too_soon == "approval",
            written_confirmation=written,
        )
