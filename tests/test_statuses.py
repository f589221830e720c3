"""Statuses as StrEnums: the views carrying them keep the JSON they had as bare strings.

History payloads, the read model's JSON column and HTTP answers are those views' JSON, so a
status typed as a plain `Enum` (or dumped as its name) would break replay and integrators.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pydantic import BaseModel

from domain.orders import DeadlineView, InvoiceView, ProductionOrderView, ShipmentView
from domain.statuses import DeadlineStatus, InvoiceStatus, ProductionOrderStatus, ShipmentStatus

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

VIEWS: list[tuple[BaseModel, object, str]] = [
    (
        ShipmentView(id="SHP-1", status="dispatched", lines=[], created_at=AT),
        ShipmentStatus.DISPATCHED,
        "dispatched",
    ),
    (
        InvoiceView(
            id="INV-1",
            amount=Decimal(100),
            paid_amount=Decimal(0),
            due_date=date(2027, 1, 6),
            status="issued",
            issued_at=AT,
        ),
        InvoiceStatus.ISSUED,
        "issued",
    ),
    (
        ProductionOrderView(
            id="PO-1",
            line_no=1,
            sku="VALVE-25",
            quantity=5,
            due_date=date(2026, 12, 20),
            status="planned",
            created_at=AT,
        ),
        ProductionOrderStatus.PLANNED,
        "planned",
    ),
    (
        DeadlineView(sla="dispatch", key="order", started_at=AT, due_at=AT),
        DeadlineStatus.ON_TRACK,
        "on_track",
    ),
]


@pytest.mark.parametrize(("view", "member", "text"), VIEWS)
def test_a_status_decodes_to_its_member_and_encodes_as_its_string(
    view: BaseModel, member: object, text: str
) -> None:
    status = view.status  # type: ignore[attr-defined]
    assert status is member
    assert status == text  # code comparing with the string keeps working
    assert json.loads(view.model_dump_json())["status"] == text
    assert view.model_dump(mode="json")["status"] == text
    again = type(view).model_validate_json(view.model_dump_json())
    assert again == view


def test_a_status_no_code_produces_is_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        ShipmentView(id="SHP-1", status="lost", lines=[], created_at=AT)
