"""The HTTP contract's request bodies: what clients send, apart from the workflow inputs
(`domain.messages`, `domain.orders`, `domain.returns`) a route builds from them.

The names and shapes are the ones the API has always published; a field a client may send is
added here and mapped by the route, never by widening a workflow input. Who acts comes from
the token, never from a body.

Counts are JSON integers (`strict`: `"1"`, `true` or `1.0` is a 422, not a 1); amounts are JSON
numbers or decimal strings, as `Money` was always published. Ids are visible characters
(`ID_PATTERN`), in bodies and in paths (`IdPath`), and free text has no control characters. Only this edge is strict: the workflows' own
models (`domain`) decode their histories as they always did.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.calendar import BusinessCalendar
from domain.messages import CancelReason, HoldKind
from domain.money import Money
from domain.orders import (
    AmendOrderInput,
    DeliveryPolicy,
    OrderNo,
    PaymentTerms,
    Priority,
    ShortText,
)
from domain.returns import ReturnResolution
from domain.text import ID_PATTERN, Id, without_control_characters

IdPath = Annotated[
    str, Path(min_length=1, max_length=120, pattern=ID_PATTERN, description="Visible characters.")
]
"""An id in a path: an order, return, shipment, production order, customer or SKU."""


class Text(BaseModel):
    """A part of a request: text with control characters is refused (`domain.text`)."""

    @field_validator("*")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return without_control_characters(value)


class Body(Text):
    """A request body: unknown fields are refused (who acts comes from the token, never here)."""

    model_config = ConfigDict(extra="forbid")


class OrderLineRequest(Body):
    """One line as submitted. Business rules (positive quantity, known SKU) are entry validation."""

    sku: Id
    quantity: int = Field(ge=-(10**9), le=10**9, strict=True)
    unit_price: Money | None = Field(default=None, ge=-(10**12), le=10**12, decimal_places=4)


class OrderSubmission(Body):
    """`POST /orders`: what an integrator or a sales rep submits (who: from the token)."""

    order_no: OrderNo | None = Field(
        default=None,
        description="Your order number; the workflow id derives from it. Generated when absent.",
    )
    customer_id: Id
    lines: list[OrderLineRequest] = Field(min_length=1, max_length=500)
    requested_delivery_date: date | None = None
    priority: Priority = Priority.NORMAL
    payment_terms: PaymentTerms | None = Field(
        default=None, description="`prepaid` or `net_<days>`; the customer's terms when absent."
    )
    notes: str | None = Field(default=None, max_length=2000)
    shipping_address: str | None = Field(default=None, min_length=1, max_length=500)
    delivery_policy: DeliveryPolicy | None = Field(
        default=None, description="`complete` or `partial`; the customer's when absent."
    )


class Amendment(Body):
    """`PATCH /orders/{order_no}` (修改): only the fields sent change."""

    lines: list[OrderLineRequest] | None = Field(default=None, min_length=1, max_length=500)
    requested_delivery_date: date | None = None
    shipping_address: str | None = Field(default=None, min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)

    def to_input(self, requested_by: str, calendar: BusinessCalendar) -> AmendOrderInput:
        """The workflow's input: only the fields sent, dated by the company's today (a new
        delivery date must not be before it)."""
        today = datetime.now(ZoneInfo(calendar.timezone)).date()
        return AmendOrderInput.model_validate(
            {**self.model_dump(exclude_unset=True), "requested_by": requested_by, "today": today}
        )


class Approval(Body):
    """`POST /orders/{order_no}/approve`: the decision at the caller's level."""

    comment: str | None = Field(default=None, max_length=2000)


class Rejection(Body):
    """`POST /orders/{order_no}/reject`."""

    reason: str = Field(min_length=1, max_length=2000)


class PaymentDetails(Body):
    amount: Money = Field(gt=0, le=10**12, decimal_places=2)
    method: ShortText = Field(description="e.g. bank_transfer, card, cash, cheque.")
    reference: ShortText = Field(
        description="The bank or payment reference; a payment with a reference already recorded "
        "on this order is not counted twice."
    )


class ShortClose(Body):
    """`POST /orders/{order_no}/short-close`: what has not shipped will not ship."""

    reason: str = Field(min_length=1, max_length=2000)


class Hold(Body):
    """`POST /orders/{order_no}/hold` (冻结)."""

    reason: str = Field(min_length=1, max_length=500)
    kind: HoldKind = HoldKind.MANUAL


class WrittenConfirmation(Body):
    """`POST /orders/{order_no}/confirm`: the customer's signed order confirmation (书面确认)."""

    document_reference: ShortText = Field(description="The signed document's reference.")
    confirmed_by_customer_contact: ShortText = Field(description="Who signed for the customer.")


class Release(Body):
    """`POST /orders/{order_no}/release`."""

    comment: str | None = Field(default=None, max_length=2000)


class Cancellation(Body):
    """`POST /orders/{order_no}/cancel`: allowed until goods ship."""

    reason_code: CancelReason
    comment: str | None = Field(default=None, max_length=2000)


class ProductionReport(Body):
    """`POST /production-orders/{id}/complete`: the plant reports what it has produced."""

    produced_quantity: int | None = Field(
        default=None,
        gt=0,
        le=10**9,
        strict=True,
        description="Produced so far; the whole order when absent.",
    )


class DispatchDetails(Body):
    carrier: ShortText
    tracking_no: ShortText


class DeliveryDetails(Body):
    signed_by: ShortText = Field(description="Who signed for the goods at the customer (签收).")


class ReturnLineRequest(Body):
    sku: Id
    quantity: int = Field(gt=0, le=10**9, strict=True)


class ReturnSubmission(Body):
    """`POST /orders/{order_no}/returns` (who asks: from the token)."""

    return_no: OrderNo | None = Field(
        default=None, description="Your return number (idempotency); generated when absent."
    )
    lines: list[ReturnLineRequest] = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)
    resolution: ReturnResolution


class ReturnApproval(Body):
    comment: str | None = Field(default=None, max_length=2000)


class ReturnRefusal(Body):
    reason: str = Field(min_length=1, max_length=2000)


class InspectedLine(Text):
    sku: Id
    accepted_quantity: int = Field(ge=0, le=10**9, strict=True)


class Inspection(Body):
    """`accepted_quantity` for a return of one SKU, or `lines` for each SKU."""

    accepted_quantity: int | None = Field(default=None, ge=0, le=10**9, strict=True)
    lines: list[InspectedLine] | None = Field(default=None, min_length=1, max_length=500)
