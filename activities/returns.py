"""Activities of the return workflow (退换货): read model, restock, credit and refund,
replacement shipment. Each is idempotent per return."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import Connection
from temporalio import activity

from domain.messages import ActivityName, CreditOrderInput, CreditResult
from domain.money import round_money
from domain.orders import ShipmentLineView, ShipmentView
from domain.returns import ReturnStepInput, SaveReturnInput
from store import stock
from store.billing import credit_order
from store.db import Database, orm
from store.read_model import log_escalations
from store.shipments import shipment_view
from store.tables import Reservation, ReturnRecord, Shipment, StockMovement

log = structlog.get_logger(__name__)


class ReturnActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Callable[..., Any]]:
        return [self.save_return, self.restock_return, self.credit_return, self.ship_replacement]

    @activity.defn(name=ActivityName.SAVE_RETURN)
    async def save_return(self, inp: SaveReturnInput) -> None:
        """The return's read-model row, only forwards; its escalations into the log."""
        await self.db.write(_save_return, inp)

    @activity.defn(name=ActivityName.RESTOCK_RETURN)
    async def restock_return(self, inp: ReturnStepInput) -> None:
        """Accepted goods go back on the shelf, once."""
        if await self.db.write(_restock, inp):
            log.info("return_restocked", return_no=inp.view.return_no)

    @activity.defn(name=ActivityName.CREDIT_RETURN)
    async def credit_return(self, inp: ReturnStepInput) -> CreditResult:
        """A credit note for what was accepted, once: first taken off what the order still
        owes on its open invoices, the rest (already paid) refunded."""
        view = inp.view
        amount = round_money(view.accepted_value)
        result = await self.db.write(
            credit_order,
            CreditOrderInput(
                order_no=view.order_no,
                credit_id=view.return_no,
                amount=amount,
                reason=f"return {view.return_no}",
                at=inp.at,
            ),
        )
        log.info("return_credited", return_no=view.return_no, amount=str(amount))
        return result

    @activity.defn(name=ActivityName.SHIP_REPLACEMENT)
    async def ship_replacement(self, inp: ReturnStepInput) -> ShipmentView:
        """Reserve replacement goods and make their pick list; waits (retries) for stock."""
        result = await self.db.write(_ship_replacement, inp)
        log.info("replacement_ready", return_no=inp.view.return_no, shipment=result.id)
        return result


def _save_return(conn: Connection, inp: SaveReturnInput) -> None:
    view = inp.view
    seq = len(view.timeline)
    with orm(conn) as session:
        record = session.get(ReturnRecord, view.return_no, with_for_update=True)
        if record is None:
            record = ReturnRecord(
                return_no=view.return_no,
                order_no=view.order_no,
                customer_id=view.customer_id,
                status=view.status,
                fingerprint=inp.fingerprint,
                seq=-1,
                requested_at=view.requested_at,
                updated_at=view.updated_at,
                view={},
            )
        if seq > record.seq:
            record.seq = seq
            record.status = view.status
            record.updated_at = view.updated_at
            record.view = view.model_dump(mode="json")
            session.add(record)
    log_escalations(conn, inp.escalations, inp.resolutions)


def _restock(conn: Connection, inp: ReturnStepInput) -> bool:
    """Put the accepted goods back, unless done before: whether it was done now."""
    view = inp.view
    with orm(conn) as session:
        record = session.get(ReturnRecord, view.return_no, with_for_update=True)
        if record is None or record.restocked_at is not None:
            return False
        for line in view.lines:
            accepted = line.accepted_quantity or 0
            if accepted:
                stock.add_stock(conn, line.sku, accepted)
                session.add(
                    StockMovement(
                        sku=line.sku,
                        delta=accepted,
                        reason=f"return {view.return_no}",
                        order_no=view.order_no,
                        at=inp.at,
                    )
                )
        record.restocked_at = inp.at
        session.add(record)
    return True


def _ship_replacement(conn: Connection, inp: ReturnStepInput) -> ShipmentView:
    view = inp.view
    shipment_id = f"SH-{view.return_no}"
    with orm(conn) as session:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None:
            lines: list[ShipmentLineView] = []
            for index, line in enumerate(view.lines, start=1):
                quantity = line.accepted_quantity or 0
                if not quantity:
                    continue
                if stock.lock_product(conn, line.sku) < quantity:
                    raise RuntimeError(f"not enough {line.sku} in stock for the replacement")
                stock.reserve(conn, line.sku, quantity)
                session.add(
                    Reservation(
                        order_no=view.return_no,
                        line_no=index,
                        sku=line.sku,
                        quantity=quantity,
                        created_at=inp.at,
                        updated_at=inp.at,
                    )
                )
                lines.append(ShipmentLineView(line_no=index, sku=line.sku, quantity=quantity))
            shipment = Shipment(
                id=shipment_id,
                order_no=view.order_no,
                return_no=view.return_no,
                lines=[line.model_dump() for line in lines],
                created_at=inp.at,
            )
            session.add(shipment)
        return shipment_view(shipment)
