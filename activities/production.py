"""Production (生产): a production order per line stock cannot cover, produced goods booked
into stock for the order, and the orders withdrawn when the sales order is cancelled."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection
from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.calendar import BusinessCalendar, Duration
from domain.messages import (
    ActivityName,
    CompensateInput,
    CompensateResult,
    PlanProductionInput,
    PlanProductionResult,
    RecordProductionInput,
    RecordProductionResult,
)
from domain.orders import ProductionOrderView, production_order_id
from domain.statuses import ProductionOrderStatus
from store import production, stock
from store.db import Database, orm
from store.tables import ProductionOrder, Reservation, StockMovement

log = structlog.get_logger(__name__)


class ProductionActivities:
    """Production orders, bound to the database and the company calendar (lead times are
    working days)."""

    def __init__(self, db: Database, calendar: BusinessCalendar) -> None:
        self.db = db
        self.calendar = calendar

    def all(self) -> list[Callable[..., Any]]:
        return [self.plan_production, self.record_production, self.cancel_production_orders]

    @activity.defn(name=ActivityName.PLAN_PRODUCTION)
    async def plan_production(self, inp: PlanProductionInput) -> PlanProductionResult:
        """A production order (生产计划) per short line, due after the product's lead time."""
        planned = await self.db.write(self._plan, inp)
        log.info("production_planned", production_orders=[p.id for p in planned])
        return PlanProductionResult(production_orders=planned)

    def _plan(self, conn: Connection, inp: PlanProductionInput) -> list[ProductionOrderView]:
        planned: list[ProductionOrderView] = []
        with orm(conn) as session:
            for shortage in inp.shortages:
                po_id = production_order_id(inp.order_no, shortage.line_no, inp.revision)
                po = session.get(ProductionOrder, po_id)
                if po is None:
                    po = ProductionOrder(
                        id=po_id,
                        order_no=inp.order_no,
                        line_no=shortage.line_no,
                        sku=shortage.sku,
                        quantity=shortage.quantity,
                        # Lead times are working days in the company calendar.
                        due_date=self.calendar.add(inp.at, Duration(days=shortage.lead_time_days))
                        .astimezone(ZoneInfo(self.calendar.timezone))
                        .date(),
                        created_at=inp.at,
                    )
                    session.add(po)
                planned.append(_view(po))
        return planned

    @activity.defn(name=ActivityName.RECORD_PRODUCTION)
    async def record_production(self, inp: RecordProductionInput) -> RecordProductionResult:
        """Book produced goods into stock and reserve them for the order's line.

        `produced_quantity` is cumulative, so a repeated report changes nothing.
        """
        result = await self.db.write(_record, inp)
        view = result.production_order
        log.info("production_recorded", production_order=view.id, produced=view.produced_quantity)
        return result

    @activity.defn(name=ActivityName.CANCEL_PRODUCTION_ORDERS)
    async def cancel_production_orders(self, inp: CompensateInput) -> CompensateResult:
        """Cancel the order's production orders that are not complete (planned, or partially
        completed: what was produced stays in stock)."""
        cancelled = await self.db.write(production.cancel_open, inp.order_no, inp.at, inp.ids)
        log.info("production_orders_cancelled", ids=cancelled, reason=inp.reason)
        return CompensateResult(ids=cancelled)


def _view(po: ProductionOrder) -> ProductionOrderView:
    return ProductionOrderView.model_validate(po, from_attributes=True)


def _record(conn: Connection, inp: RecordProductionInput) -> RecordProductionResult:
    """`record_production` in its transaction."""
    with orm(conn) as session:
        po = session.get(ProductionOrder, inp.production_order_id, with_for_update=True)
        if po is None or po.order_no != inp.order_no:
            raise ApplicationError(
                f"Production order {inp.production_order_id} is not part of {inp.order_no}",
                type="NotFound",
                non_retryable=True,
            )
        reservation = session.exec(
            select(Reservation)
            .where(
                col(Reservation.order_no) == po.order_no,
                col(Reservation.line_no) == po.line_no,
            )
            .with_for_update()
        ).first()
        if reservation is None:
            raise ApplicationError("No reservation for the produced line", non_retryable=True)
        added = inp.produced_quantity - po.produced_quantity
        if added > 0:
            to_reserve = max(0, min(added, po.quantity - po.produced_quantity))
            stock.add_stock(conn, po.sku, added, reserve=to_reserve)
            session.add(
                StockMovement(
                    sku=po.sku,
                    delta=added,
                    reason=f"produced {po.id}",
                    order_no=po.order_no,
                    at=inp.at,
                )
            )
            reservation.quantity += to_reserve
            reservation.updated_at = inp.at
            po.produced_quantity = inp.produced_quantity
            if po.produced_quantity >= po.quantity:
                po.status = ProductionOrderStatus.COMPLETED
                po.completed_at = inp.at
            else:  # the plant sees what is under way, not a planned order
                po.status = ProductionOrderStatus.PARTIALLY_COMPLETED
            session.add_all([reservation, po])
        return RecordProductionResult(
            production_order=_view(po), line_reserved_quantity=reservation.quantity
        )
