"""Stock (库存): reserving an order's lines, and giving the reservations back when it is
cancelled. Each step is idempotent: the lines are the target, so a repeat changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Connection
from temporalio import activity

from domain.messages import (
    ActivityName,
    CompensateInput,
    CompensateResult,
    LineReservation,
    ReserveStockInput,
    ReserveStockResult,
)
from domain.statuses import ReservationStatus
from store import stock
from store.db import Database
from store.queries import lock_order

log = structlog.get_logger(__name__)


class InventoryActivities:
    """Reservations, bound to the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Callable[..., Any]]:
        return [self.reserve_stock, self.release_reservations]

    @activity.defn(name=ActivityName.RESERVE_STOCK)
    async def reserve_stock(self, inp: ReserveStockInput) -> ReserveStockResult:
        """Reserve (库存预留) each line up to its quantity as far as stock allows; never more
        than is on hand. The lines are the target: after an amendment, what is no longer
        needed is released and what is new is reserved, so a repeat changes nothing."""
        results = await self.db.write(_reserve, inp)
        log.info("stock_reserved", lines=[r.model_dump() for r in results])
        return ReserveStockResult(lines=results)

    @activity.defn(name=ActivityName.RELEASE_RESERVATIONS)
    async def release_reservations(self, inp: CompensateInput) -> CompensateResult:
        """Give the order's reserved stock back to everyone else."""
        released = await self.db.write(stock.release_order, inp.order_no, inp.at)
        log.info("reservations_released", released=released, reason=inp.reason)
        return CompensateResult(ids=released)


def _reserve(conn: Connection, inp: ReserveStockInput) -> list[LineReservation]:
    """`reserve_stock` in its transaction: what each line holds now."""
    results: list[LineReservation] = []
    wanted = {line.line_no: line for line in inp.lines}
    lock_order(conn, inp.order_no)
    rows = stock.reservations_of(conn, inp.order_no)
    touched: dict[int, dict[str, Any]] = {}
    for line_no, row in rows.items():
        target = wanted.get(line_no)
        if row["status"] == ReservationStatus.ACTIVE and (
            target is None or target.sku != row["sku"]
        ):
            stock.release(conn, row["sku"], row["quantity"])
            row.update(quantity=0, status=ReservationStatus.RELEASED)
            touched[row["id"]] = row
    added: list[dict[str, Any]] = []
    for line in inp.lines:
        row = rows.get(line.line_no) or {}
        if row:
            touched[row["id"]] = row
        else:
            row.update(order_no=inp.order_no, line_no=line.line_no, quantity=0)
            row.update(created_at=inp.at)
            added.append(row)
        row.update(sku=line.sku, status=ReservationStatus.ACTIVE)
        if row["quantity"] > line.quantity:
            stock.release(conn, line.sku, row["quantity"] - line.quantity)
            row["quantity"] = line.quantity
        elif row["quantity"] < line.quantity:
            available = stock.lock_product(conn, line.sku)
            take = max(0, min(line.quantity - row["quantity"], available))
            if take:
                stock.reserve(conn, line.sku, take)
                row["quantity"] += take
        results.append(
            LineReservation(
                line_no=line.line_no,
                sku=line.sku,
                reserved_quantity=row["quantity"],
                short_quantity=max(0, line.quantity - row["quantity"]),
            )
        )
    stock.save_reservations(conn, list(touched.values()), added, inp.at)
    return results
