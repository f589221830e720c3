"""Shipments: the statements the shipping steps and a return's replacement share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel
from temporalio.exceptions import ApplicationError

from domain.orders import ShipmentLineView, ShipmentView
from domain.statuses import ShipmentStatus
from store.rows import insert_once, only
from store.tables import Shipment

SHIPMENTS = SQLModel.metadata.tables["shipment"]

_SHIPMENT_FOR_UPDATE = (
    sa_select(SHIPMENTS).where(SHIPMENTS.c.id == bindparam("shipment_id")).with_for_update()
)
# Sets the columns its parameters name (besides `shipment_id`).
_SET_SHIPMENT = update(SHIPMENTS).where(SHIPMENTS.c.id == bindparam("shipment_id"))


def withdraw_ready(conn: Connection, order_no: str, ids: list[str] | None = None) -> list[str]:
    """Withdraw the order's pick lists not yet dispatched (those in `ids`, or all): `ready`
    shipments become `cancelled`, once; the ids withdrawn now. Goods that left stay shipped,
    and a return's replacement (its own process) is not the order's to withdraw."""
    query = sa_select(SHIPMENTS.c.id).where(
        SHIPMENTS.c.order_no == order_no,
        SHIPMENTS.c.return_no.is_(None),
        SHIPMENTS.c.status == ShipmentStatus.READY,
        *only(SHIPMENTS.c.id, ids),
    )
    withdrawn = list((conn.execute(query.with_for_update())).scalars())
    if withdrawn:
        conn.execute(
            update(SHIPMENTS)
            .where(SHIPMENTS.c.id.in_(withdrawn))
            .values(status=ShipmentStatus.CANCELLED)
        )
    return withdrawn


def add_shipment(conn: Connection, new: dict[str, Any]) -> ShipmentView:
    """The shipment `new` (a row keyed by its `id`), once: a retry gets the row written first."""
    return ShipmentView.model_validate(insert_once(conn, SHIPMENTS, new))


def shipment_for_update(conn: Connection, order_no: str, shipment_id: str) -> dict[str, Any]:
    """The shipment's row, locked; `order_no` must own it (its order, or the return it replaces
    goods for)."""
    row = (conn.execute(_SHIPMENT_FOR_UPDATE, {"shipment_id": shipment_id})).first()
    if row is None or order_no not in (row.order_no, row.return_no):
        raise ApplicationError(
            f"Shipment {shipment_id} is not part of {order_no}", type="NotFound", non_retryable=True
        )
    return dict(row._mapping)


def set_shipment(conn: Connection, shipment_id: str, changed: dict[str, Any]) -> None:
    """Set the columns `changed` names on the shipment."""
    conn.execute(_SET_SHIPMENT, changed | {"shipment_id": shipment_id})


def shipment_view(shipment: Shipment) -> ShipmentView:
    return ShipmentView(
        id=shipment.id,
        status=shipment.status,
        lines=[ShipmentLineView.model_validate(line) for line in shipment.lines],
        created_at=shipment.created_at,
        carrier=shipment.carrier,
        tracking_no=shipment.tracking_no,
        dispatched_at=shipment.dispatched_at,
        delivered_at=shipment.delivered_at,
        signed_by=shipment.signed_by,
    )
