"""The warehouse's and the plant's commands: dispatch (发货), delivery sign-off (签收) and
production reports. A service, not a router: `POST /shipments/{id}/dispatch|deliver`,
`POST /production-orders/{id}/complete` and the web app's pages all call it, so a command
reaches the order's workflow (or, for a replacement, the return's) the same way."""

from __future__ import annotations

from api.bodies import DeliveryDetails, DispatchDetails, ProductionReport
from api.commands import Commands
from api.errors import ProblemError
from api.principal import Principal
from api.schemas import OrderPublic, ReturnPublic
from domain.contract import OrderUpdate, ReturnUpdate
from domain.messages import DeliverInput, DispatchInput, ReportProductionInput
from store import queries


async def shipment_owner(commands: Commands, shipment_id: str) -> tuple[str, str | None]:
    """The shipment's order and return (if it replaces returned goods); 404 unknown."""
    owner = await queries.shipment_owner(commands.db, shipment_id)
    if owner is None:
        raise ProblemError(404, f"Shipment {shipment_id} not found")
    return owner


async def dispatch(
    commands: Commands, principal: Principal, shipment_id: str, body: DispatchDetails
) -> OrderPublic | ReturnPublic:
    """The goods left with a carrier; the order is SHIPPED and invoiced (credit terms)."""
    order_no, return_no = await shipment_owner(commands, shipment_id)
    arg = DispatchInput(shipment_id=shipment_id, dispatched_by=principal.name, **body.model_dump())
    if return_no:  # a replacement for a return
        return await commands.update_return(principal, return_no, ReturnUpdate.DISPATCH, arg)
    return await commands.update(principal, order_no, OrderUpdate.DISPATCH, arg)


async def deliver(
    commands: Commands, principal: Principal, shipment_id: str, body: DeliveryDetails
) -> OrderPublic | ReturnPublic:
    """The customer signed for the goods; the order is DELIVERED."""
    order_no, return_no = await shipment_owner(commands, shipment_id)
    arg = DeliverInput(shipment_id=shipment_id, reported_by=principal.name, **body.model_dump())
    if return_no:
        return await commands.update_return(principal, return_no, ReturnUpdate.DELIVER, arg)
    return await commands.update(principal, order_no, OrderUpdate.DELIVER, arg)


async def report_production(
    commands: Commands, principal: Principal, po_id: str, report: ProductionReport
) -> OrderPublic:
    """The plant reports production (cumulative, the whole order when no quantity is given);
    the produced goods are reserved for the order. 404 unknown production order."""
    row = await queries.get_production_order(commands.db, po_id)
    if row is None:
        raise ProblemError(404, f"Production order {po_id} not found")
    return await commands.update(
        principal,
        row.order_no,
        OrderUpdate.REPORT_PRODUCTION,
        ReportProductionInput(
            production_order_id=po_id, reported_by=principal.name, **report.model_dump()
        ),
    )
