"""Warehouse and plant reports: production completion, dispatch, delivery sign-off."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import operations
from api.auth import allowed
from api.bodies import DeliveryDetails, DispatchDetails, IdPath, ProductionReport
from api.commands import CommandsDep
from api.deps import DbDep
from api.errors import ProblemDetails, ProblemError
from api.principal import Principal
from api.schemas import OrderPublic, ReturnPublic, ShipmentLinePublic
from domain.auth import Permission
from store import queries

router = APIRouter(tags=["warehouse and production"])
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}
Reader = Annotated[Principal, allowed(Permission.OPERATIONS_READ)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10**9)]


class ProductionOrderPublic(BaseModel):
    id: str
    order_no: str
    line_no: int
    sku: str
    quantity: int
    produced_quantity: int
    due_date: date
    status: str
    created_at: datetime
    completed_at: datetime | None


class ShipmentPublic(BaseModel):
    id: str
    order_no: str
    status: str
    lines: list[ShipmentLinePublic]
    carrier: str | None
    tracking_no: str | None
    signed_by: str | None
    created_at: datetime
    dispatched_at: datetime | None
    delivered_at: datetime | None


@router.get("/production-orders")
async def list_production_orders(
    db: DbDep, _: Reader, status: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> list[ProductionOrderPublic]:
    """The plant's work list, earliest due first: `status=open` for what is still to produce
    (`planned` and `partially_completed`), or one status."""
    rows = await queries.list_production_orders(db, status=status, limit=limit, offset=offset)
    return [ProductionOrderPublic.model_validate(row, from_attributes=True) for row in rows]


@router.get("/production-orders/{po_id}", responses=ERRORS)
async def get_production_order(po_id: IdPath, db: DbDep, _: Reader) -> ProductionOrderPublic:
    row = await queries.get_production_order(db, po_id)
    if row is None:
        raise ProblemError(404, f"Production order {po_id} not found")
    return ProductionOrderPublic.model_validate(row, from_attributes=True)


@router.post("/production-orders/{po_id}/complete", responses=ERRORS)
async def complete_production(
    po_id: IdPath,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.PRODUCTION_WRITE)],
    body: ProductionReport | None = None,
) -> OrderPublic:
    """The plant reports production; the produced goods are reserved for the order.

    `produced_quantity` is cumulative (all produced so far) and defaults to the whole quantity,
    so a repeated report never counts twice.
    """
    return await operations.report_production(
        commands, principal, po_id, body or ProductionReport()
    )


@router.get("/shipments")
async def list_shipments(
    db: DbDep, _: Reader, status: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> list[ShipmentPublic]:
    """The warehouse's list (`status=ready` for what waits to be picked and dispatched)."""
    rows = await queries.list_shipments(db, status=status, limit=limit, offset=offset)
    return [ShipmentPublic.model_validate(row, from_attributes=True) for row in rows]


@router.get("/shipments/{shipment_id}", responses=ERRORS)
async def get_shipment(shipment_id: IdPath, db: DbDep, _: Reader) -> ShipmentPublic:
    row = await queries.get_shipment(db, shipment_id)
    if row is None:
        raise ProblemError(404, f"Shipment {shipment_id} not found")
    return ShipmentPublic.model_validate(row, from_attributes=True)


@router.post("/shipments/{shipment_id}/dispatch", responses=ERRORS)
async def dispatch_shipment(
    shipment_id: IdPath,
    body: DispatchDetails,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.SHIPMENTS_DISPATCH)],
) -> OrderPublic | ReturnPublic:
    """发货: the goods left with a carrier; the order is SHIPPED and invoiced (credit terms)."""
    return await operations.dispatch(commands, principal, shipment_id, body)


@router.post("/shipments/{shipment_id}/deliver", responses=ERRORS)
async def deliver_shipment(
    shipment_id: IdPath,
    body: DeliveryDetails,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.DELIVERIES_REPORT)],
) -> OrderPublic | ReturnPublic:
    """签收: the customer signed for the goods; the order is DELIVERED."""
    return await operations.deliver(commands, principal, shipment_id, body)
