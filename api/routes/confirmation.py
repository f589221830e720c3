"""The order confirmation (订单确认书): `GET /orders/{order_no}/confirmation` (JSON or HTML),
and `POST /orders/{order_no}/confirm`, the customer's signed confirmation of a large order."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from api.auth import allowed
from api.bodies import IdPath, WrittenConfirmation
from api.commands import CommandsDep
from api.confirmation_document import OrderConfirmation, confirmation_of, render_html
from api.deps import DbDep, SettingsDep, TemporalDep
from api.errors import ProblemDetails, ProblemError
from api.orders_read import current_order
from api.principal import Principal
from api.schemas import OrderPublic
from domain.auth import Permission
from domain.contract import OrderUpdate
from domain.messages import ConfirmOrderInput

router = APIRouter(prefix="/orders", tags=["orders"])
Reader = Annotated[Principal, allowed(Permission.ORDERS_READ)]
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails} for status in (401, 403, 404, 409, 422, 503)
}


@router.get(
    "/{order_no}/confirmation",
    response_model=OrderConfirmation,
    responses={
        **ERRORS,
        200: {
            "content": {"text/html": {"schema": {"type": "string"}}},
            "description": "The confirmation; `format=html` a printable page.",
        },
    },
)
async def get_confirmation(
    order_no: IdPath,
    db: DbDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: Reader,
    lang: Annotated[Literal["en", "zh"], Query(description="The document's language.")] = "en",
    format: Annotated[
        Literal["json", "html"], Query(description="`html`: a page to print.")
    ] = "json",
) -> OrderConfirmation | Response:
    """The order confirmation: lines, prices, totals, terms and promised dates. `409` until
    the order is confirmed (no promise recorded yet, or confirmed before promises existed)."""
    view = await current_order(db, temporal, settings, order_no, principal)
    doc = confirmation_of(view, lang)
    if doc is None:
        raise ProblemError(
            409,
            f"Order {order_no} has no confirmation: no promise recorded",
            order_no=order_no,
        )
    if format == "html":
        return HTMLResponse(render_html(doc))
    return doc


@router.post("/{order_no}/confirm", responses=ERRORS)
async def confirm_order(
    order_no: IdPath,
    body: WrittenConfirmation,
    commands: CommandsDep,
    principal: Annotated[Principal, allowed(Permission.ORDERS_AMEND)],
) -> OrderPublic:
    """书面确认: record the customer's signed confirmation of an order in
    `AWAITING_CONFIRMATION` (a large order, or one on non-standard terms); the order goes on
    to fulfilment. `409` when the order is not awaiting it. A customer who refuses to sign:
    `POST /orders/{order_no}/cancel`."""
    arg = ConfirmOrderInput(
        document_reference=body.document_reference,
        confirmed_by_customer_contact=body.confirmed_by_customer_contact,
        by=principal.name,
    )
    return await commands.update(principal, order_no, OrderUpdate.CONFIRM, arg)
