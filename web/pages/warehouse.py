"""The warehouse (`/app/warehouse`): pick lists ready to dispatch (customer, shipping address,
what to pick), each printable as a pick list and a delivery note, dispatch with carrier and
tracking number, and shipments awaiting the customer's signature (record the delivery).

Read from the read model (`store.queries.list_shipments`, as `GET /shipments`); the forms are
the order page's dispatch and deliver actions (`web.actions`, through `api.operations`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.principal import Principal
from domain.auth import Permission
from domain.statuses import ShipmentStatus
from store import queries
from store.tables import Shipment
from web.actions import BY_NAME
from web.render import render
from web.session import Page, state

router = APIRouter()
Warehouse = Annotated[Principal, Depends(Page(Permission.SHIPMENTS_DISPATCH))]
LIST_LIMIT = 200


@dataclass(frozen=True)
class PickList:
    shipment: Shipment
    customer_id: str
    customer_name: str | None
    shipping_address: str | None
    lines: list[dict[str, Any]]  # sku, name, quantity


async def pick_list(request: Request, shipment: Shipment) -> PickList:
    """The shipment with what its order says about where it goes and what each SKU is."""
    order = await queries.get_order(state(request).db, shipment.order_no)
    view: dict[str, Any] = order.view if order is not None else {}
    names = {line.get("sku"): line.get("name") for line in view.get("lines") or []}
    return PickList(
        shipment=shipment,
        customer_id=order.customer_id if order is not None else "",
        customer_name=view.get("customer_name"),
        shipping_address=view.get("shipping_address"),
        lines=[{**line, "name": names.get(line.get("sku"), "")} for line in shipment.lines],
    )


async def _lists(request: Request, status: ShipmentStatus) -> list[PickList]:
    rows = await queries.list_shipments(
        state(request).db, status=status.value, limit=LIST_LIMIT, offset=0
    )
    return [await pick_list(request, row) for row in reversed(rows)]  # oldest first


@router.get("/app/warehouse")
async def warehouse(request: Request, principal: Warehouse) -> Response:
    return render(
        request,
        "warehouse.html",
        principal,
        ready=await _lists(request, ShipmentStatus.READY),
        dispatched=await _lists(request, ShipmentStatus.DISPATCHED),
        dispatch=BY_NAME["dispatch"],
        deliver=BY_NAME["deliver"],
        done=request.query_params.get("done"),
    )


@router.get("/app/warehouse/shipments/{shipment_id}/{document}")
async def printable(
    request: Request, shipment_id: str, document: str, principal: Warehouse
) -> Response:
    """A shipment's pick list (`pick`) or delivery note (`note`), laid out for paper."""
    shipment = await queries.get_shipment(state(request).db, shipment_id)
    if shipment is None or document not in ("pick", "note"):
        return render(
            request,
            "error.html",
            principal,
            status_code=404,
            code=404,
            message="Not found",
            permission=None,
        )
    return render(
        request,
        "shipment_print.html",
        principal,
        item=await pick_list(request, shipment),
        document=document,
    )
