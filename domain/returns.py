"""Returns and exchanges (退换货) after delivery: the contract of the return workflow."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.messages import EscalationRecord
from domain.messages import Resolution as DeadlineResolution
from domain.money import Money
from domain.orders import (
    CreditNoteView,
    DeadlineView,
    Frozen,
    InvoiceView,
    OrderLineView,
    RefundView,
    ShipmentView,
    ShortText,
    TimelineEntry,
)


class ReturnStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    REFUSED = "REFUSED"
    RECEIVED = "RECEIVED"
    INSPECTED = "INSPECTED"
    REPLACEMENT_READY = "REPLACEMENT_READY"
    REPLACEMENT_SHIPPED = "REPLACEMENT_SHIPPED"
    COMPLETED = "COMPLETED"

    @property
    def labels(self) -> dict[str, str]:
        en, zh = _LABELS[self]
        return {"en": en, "zh": zh}


_LABELS = {
    ReturnStatus.REQUESTED: ("Requested", "待受理"),
    ReturnStatus.APPROVED: ("Approved, awaiting goods", "已同意, 待退货"),
    ReturnStatus.REFUSED: ("Refused", "已拒绝"),
    ReturnStatus.RECEIVED: ("Goods received", "已收货"),
    ReturnStatus.INSPECTED: ("Inspected", "已检验"),
    ReturnStatus.REPLACEMENT_READY: ("Replacement ready to ship", "换货待发"),
    ReturnStatus.REPLACEMENT_SHIPPED: ("Replacement shipped", "换货已发"),
    ReturnStatus.COMPLETED: ("Completed", "已完成"),
}


class ReturnResolution(StrEnum):
    REFUND = "refund"
    REPLACE = "replace"


class ReturnLineRequest(Frozen):
    sku: ShortText
    quantity: int = Field(gt=0, le=10**9)


class ReturnLineView(BaseModel):
    sku: str
    name: str
    line_no: int = Field(description="The order line the goods come from.")
    quantity: int
    unit_price: Money
    accepted_quantity: int | None = None


def _cheapest_first(lines: Sequence[OrderLineView], sku: str) -> list[OrderLineView]:
    return sorted(
        (line for line in lines if line.sku == sku),
        key=lambda line: (line.unit_price, line.line_no),
    )


def returnable_units(
    order_lines: Sequence[OrderLineView], earlier: Sequence[ReturnLineView]
) -> dict[int, int]:
    """Units of each order line (by `line_no`) delivered and not on an earlier return.

    An earlier return's units come off the line it names; a return recorded before returns
    were allocated by line named the SKU's first line for all its units, so what that line
    cannot hold comes off the SKU's other lines, cheapest first (as a new return would).
    """
    left = {line.line_no: line.delivered_quantity for line in order_lines}
    by_no = {line.line_no: line for line in order_lines}
    for taken in earlier:
        units = taken.accepted_quantity if taken.accepted_quantity is not None else taken.quantity
        named = [by_no[taken.line_no]] if taken.line_no in by_no else []
        for line in named + _cheapest_first(order_lines, taken.sku):
            off = min(units, left[line.line_no])
            left[line.line_no] -= off
            units -= off
    return left


def allocate_return(
    order_lines: Sequence[OrderLineView],
    earlier: Sequence[ReturnLineView],
    wanted: Sequence[ReturnLineRequest],
) -> tuple[list[ReturnLineView], list[tuple[str, str]]]:
    """The return's lines, one per order line the units come from, each at that line's price.

    Units of one SKU cannot be told apart, so a SKU ordered on several lines at different
    prices comes back cheapest line first: a return is credited what was charged for the
    units it takes off the order, never more, and returning everything credits exactly what
    was charged. Returns the lines and the problems as (field, message), in `wanted`'s order.
    """
    left = returnable_units(order_lines, earlier)
    problems: list[tuple[str, str]] = []
    taken: dict[int, ReturnLineView] = {}
    for index, request in enumerate(wanted):
        lines = _cheapest_first(order_lines, request.sku)
        if not lines:
            problems.append((f"lines[{index}].sku", f"{request.sku} is not on the order"))
            continue
        available = sum(left[line.line_no] for line in lines)
        if request.quantity > available:
            message = f"at most {available} of {request.sku} can still be returned"
            problems.append((f"lines[{index}].quantity", message))
            continue
        units = request.quantity
        for line in lines:
            off = min(units, left[line.line_no])
            if off:
                left[line.line_no] -= off
                units -= off
                part = taken.setdefault(
                    line.line_no,
                    ReturnLineView(
                        sku=line.sku,
                        name=line.name,
                        line_no=line.line_no,
                        quantity=0,
                        unit_price=line.unit_price,
                    ),
                )
                part.quantity += off
    return list(taken.values()), problems


class ReturnDecision(BaseModel):
    decision: str
    by: str
    at: datetime
    comment: str | None = None


class ReturnView(BaseModel):
    return_no: str
    workflow_id: str
    order_no: str
    customer_id: str
    customer_group: str | None = Field(default=None, description="Its SLA tier.")
    status: ReturnStatus
    status_label: dict[str, str]
    resolution: ReturnResolution
    reason: str
    requested_by: str
    lines: list[ReturnLineView]
    decision: ReturnDecision | None = None
    credit_note: CreditNoteView | None = None
    refund: RefundView | None = None
    replacement: ShipmentView | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    deadlines: list[DeadlineView] = Field(default_factory=list)
    overdue: bool = False
    escalation_level: int = 0
    requested_at: datetime
    updated_at: datetime
    closed: bool = False

    @property
    def accepted_value(self) -> Money:
        return sum(
            (line.unit_price * (line.accepted_quantity or 0) for line in self.lines), Money(0)
        )


class ReturnWorkflowInput(BaseModel):
    view: ReturnView
    fingerprint: str


class ReturnApproval(Frozen):
    comment: str | None = Field(default=None, max_length=2000)


class ReturnDecisionInput(ReturnApproval):
    by: ShortText


class ReturnRefusal(Frozen):
    reason: str = Field(min_length=1, max_length=2000)


class RefuseReturnInput(ReturnRefusal):
    by: ShortText


class ReceiveReturnInput(BaseModel):
    by: ShortText = "warehouse"


class InspectedLine(BaseModel):
    sku: ShortText
    accepted_quantity: int = Field(ge=0, le=10**9)


class Inspection(Frozen):
    """`accepted_quantity` for a return of one SKU, or `lines` for each SKU."""

    accepted_quantity: int | None = Field(default=None, ge=0, le=10**9)
    lines: list[InspectedLine] | None = Field(default=None, min_length=1, max_length=500)


class InspectReturnInput(Inspection):
    by: ShortText = "quality"


class ReturnStepInput(BaseModel):
    """A return's activity step: its number, the time, and the view as it stands."""

    view: ReturnView
    at: datetime


# The order workflow's signal a return sends when its credit settled part of what was owed.
RETURN_CREDITED_SIGNAL = "return_credited"


class ReturnCredited(BaseModel):
    """The order workflow's signal: a return's credit note settled part of what it owed."""

    return_no: str
    credit_note: CreditNoteView
    invoices: list[InvoiceView]


class SaveReturnInput(ReturnStepInput):
    fingerprint: str = ""
    escalations: list[EscalationRecord] = Field(default_factory=list)
    resolutions: list[DeadlineResolution] = Field(default_factory=list)
