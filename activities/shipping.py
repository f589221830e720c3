"""Shipping (发货): the pick list, goods leaving, the customer's signature, and pick lists
withdrawn when the order is cancelled. Each step is keyed by its shipment, so a retry finds
what the first attempt wrote."""

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
    CreateShipmentInput,
    DeliverShipmentInput,
    DispatchShipmentInput,
)
from domain.orders import ShipmentView
from domain.statuses import ShipmentStatus
from store import shipments, stock
from store.db import Database

log = structlog.get_logger(__name__)


class ShippingActivities:
    """Shipments, bound to the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.create_shipment,
            self.dispatch_shipment,
            self.deliver_shipment,
            self.cancel_shipments,
        ]

    @activity.defn(name=ActivityName.CREATE_SHIPMENT)
    async def create_shipment(self, inp: CreateShipmentInput) -> ShipmentView:
        """The shipment and its pick list (拣货单), once everything is reserved."""
        shipment_id = f"SH-{inp.order_no}-{inp.seq}"
        new = {
            "id": shipment_id,
            "order_no": inp.order_no,
            "return_no": None,
            "status": ShipmentStatus.READY,
            "lines": [line.model_dump() for line in inp.lines],
            "created_at": inp.at,
        }
        view = await self.db.write(shipments.add_shipment, new)
        log.info("shipment_created", shipment=shipment_id)
        return view

    @activity.defn(name=ActivityName.DISPATCH_SHIPMENT)
    async def dispatch_shipment(self, inp: DispatchShipmentInput) -> ShipmentView:
        """Goods leave (发货): stock and reservations go down by what the shipment carries."""
        view = ShipmentView.model_validate(await self.db.write(_dispatch, inp))
        log.info("shipment_dispatched", shipment=view.id, carrier=view.carrier)
        return view

    @activity.defn(name=ActivityName.DELIVER_SHIPMENT)
    async def deliver_shipment(self, inp: DeliverShipmentInput) -> ShipmentView:
        """The customer signed for the goods (签收)."""
        view = ShipmentView.model_validate(await self.db.write(_deliver, inp))
        log.info("shipment_delivered", shipment=view.id)
        return view

    @activity.defn(name=ActivityName.CANCEL_SHIPMENTS)
    async def cancel_shipments(self, inp: CompensateInput) -> CompensateResult:
        """Withdraw the pick lists of shipments not yet dispatched."""
        withdrawn = await self.db.write(shipments.withdraw_ready, inp.order_no, inp.ids)
        log.info("shipments_cancelled", ids=withdrawn, reason=inp.reason)
        return CompensateResult(ids=withdrawn)


def _dispatch(conn: Connection, inp: DispatchShipmentInput) -> dict[str, Any]:
    """Goods leave, once: the shipment's row as it is now."""
    shipment = shipments.shipment_for_update(conn, inp.order_no, inp.shipment_id)
    if shipment["status"] == ShipmentStatus.READY:
        stock.ship(conn, inp.order_no, shipment["lines"], inp.at)
        stock.record_movements(
            conn,
            [
                {
                    "sku": str(line["sku"]),
                    "delta": -int(line["quantity"]),
                    "reason": f"shipped {inp.shipment_id}",
                    "order_no": inp.order_no,
                    "at": inp.at,
                }
                for line in shipment["lines"]
            ],
        )
        changed = {
            "status": ShipmentStatus.DISPATCHED,
            "carrier": inp.carrier,
            "tracking_no": inp.tracking_no,
            "dispatched_at": inp.at,
        }
        shipments.set_shipment(conn, inp.shipment_id, changed)
        shipment |= changed
    return shipment


def _deliver(conn: Connection, inp: DeliverShipmentInput) -> dict[str, Any]:
    """The signature, once: the shipment's row as it is now."""
    shipment = shipments.shipment_for_update(conn, inp.order_no, inp.shipment_id)
    if shipment["status"] == ShipmentStatus.DISPATCHED:
        changed = {
            "status": ShipmentStatus.DELIVERED,
            "signed_by": inp.signed_by,
            "delivered_at": inp.at,
        }
        shipments.set_shipment(conn, inp.shipment_id, changed)
        shipment |= changed
    return shipment
