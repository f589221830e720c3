"""The HTTP answers are their own models (`api.schemas`), built from the workflows' views:
today's JSON, field for field, from views with every part filled."""

from __future__ import annotations

from typing import Any

from api.schemas import OrderPublic, ReturnPublic, order_public, return_public
from domain.orders import OrderView
from domain.returns import ReturnView

AT = "2026-12-07T08:30:00Z"
SHIPMENT: dict[str, Any] = {
    "id": "SH-1",
    "status": "delivered",
    "lines": [{"line_no": 1, "sku": "VALVE-25", "quantity": 2}],
    "created_at": AT,
    "carrier": "SF",
    "tracking_no": "T1",
    "dispatched_at": AT,
    "delivered_at": AT,
    "signed_by": "Li",
}
CREDIT_NOTE = {"id": "CN-1", "invoice_id": "INV-1", "amount": 85, "issued_at": AT}
REFUND = {"id": "RF-1", "payment_id": "PAY-1", "amount": 85.5, "refunded_at": AT}
TIMELINE = [{"at": AT, "event": "received", "actor": "ana", "status": "RECEIVED", "detail": "x"}]
DEADLINES = [
    {
        "sla": "approval",
        "key": "1",
        "started_at": AT,
        "due_at": AT,
        "status": "breached",
        "met_at": AT,
        "paused_at": AT,
        "escalation_level": 2,
        "held_by": ["boss"],
        "escalations": [
            {
                "step": 1,
                "kind": "escalation",
                "level": 2,
                "notify": ["boss"],
                "action": "notify",
                "message": "late",
                "at": AT,
                "notification_id": "N-1",
                "delivered_at": AT,
            }
        ],
    }
]
ORDER: dict[str, Any] = {
    "order_no": "SO-1",
    "workflow_id": "order-SO-1",
    "status": "DELIVERED",
    "status_label": {"en": "Delivered", "zh": "已签收"},
    "customer_id": "C-1",
    "customer_name": "Acme",
    "entered_by": "ana",
    "priority": "rush",
    "payment_terms": "net_30",
    "delivery_policy": "partial",
    "requested_delivery_date": "2026-12-24",
    "shipping_address": "1 Road",
    "notes": "n",
    "currency": "CNY",
    "revision": 2,
    "changes": [
        {
            "revision": 2,
            "at": AT,
            "requested_by": "ana",
            "reason": "r",
            "fields": {"shipping_address": ["a", "b"]},
            "lines": [{"line_no": 1, "quantity": [1, 2]}],
            "reapproval": True,
            "approved_by": ["bo"],
            "superseded_approvals": ["cy"],
        }
    ],
    "lines": [
        {
            "line_no": 1,
            "sku": "VALVE-25",
            "name": "Valve",
            "quantity": 3,
            "list_price": 100,
            "unit_price": 85.25,
            "discount_pct": 14.75,
            "amount": 255.75,
            "short_closed_quantity": 1,
            "reserved_quantity": 0,
            "produced_quantity": 1,
            "shipped_quantity": 1,
            "delivered_quantity": 1,
        }
    ],
    "total": 255.75,
    "credit": {"credit_limit": 1000, "open_receivables": 10, "exposure": 265.75},
    "approval": {
        "required_levels": 1,
        "reasons": [{"code": "discount", "message": "deep", "level": 1}],
        "awaiting_level": None,
    },
    "approvals": [
        {
            "level": 1,
            "decision": "approved",
            "approver": "bo",
            "role": "approver_l1",
            "comment": "ok",
            "at": AT,
        }
    ],
    "production_orders": [
        {
            "id": "PO-1",
            "line_no": 1,
            "sku": "VALVE-25",
            "quantity": 1,
            "produced_quantity": 1,
            "due_date": "2026-12-20",
            "status": "completed",
            "created_at": AT,
            "completed_at": AT,
        }
    ],
    "shipments": [SHIPMENT],
    "invoices": [
        {
            "id": "INV-1",
            "amount": 255.75,
            "paid_amount": 100,
            "credited_amount": 85,
            "due_date": "2027-01-06",
            "status": "issued",
            "issued_at": AT,
        }
    ],
    "payments": [
        {
            "id": "PAY-1",
            "invoice_id": "INV-1",
            "amount": 100,
            "method": "bank",
            "reference": "R",
            "received_at": AT,
        }
    ],
    "credit_notes": [CREDIT_NOTE],
    "refunds": [REFUND],
    "timeline": TIMELINE,
    "deadlines": DEADLINES,
    "overdue": True,
    "escalation_level": 2,
    "cancellation": {"reason_code": "customer_request", "by": "ana", "at": AT, "comment": "c"},
    "hold": {"kind": "manual", "reason": "r", "by": "ana", "at": AT, "resume_status": "SHIPPED"},
    "return_status": "REQUESTED",
    "returns": [{"return_no": "RT-1", "status": "REQUESTED"}],
    "waiting_for": "payment",
    "problems": [{"field": "lines[0].sku", "message": "unknown"}],
    "received_at": AT,
    "updated_at": AT,
    "closed": True,
}
RETURN: dict[str, Any] = {
    "return_no": "RT-1",
    "workflow_id": "return-RT-1",
    "order_no": "SO-1",
    "customer_id": "C-1",
    "customer_group": "key",
    "status": "COMPLETED",
    "status_label": {"en": "Completed", "zh": "已完成"},
    "resolution": "replace",
    "reason": "broken",
    "requested_by": "ana",
    "lines": [
        {
            "sku": "VALVE-25",
            "name": "Valve",
            "line_no": 1,
            "quantity": 1,
            "unit_price": 85.25,
            "accepted_quantity": 1,
        }
    ],
    "decision": {"decision": "approved", "by": "bo", "at": AT, "comment": "ok"},
    "credit_note": CREDIT_NOTE,
    "refund": REFUND,
    "replacement": SHIPMENT,
    "timeline": TIMELINE,
    "deadlines": DEADLINES,
    "overdue": True,
    "escalation_level": 1,
    "requested_at": AT,
    "updated_at": AT,
    "closed": True,
}


def test_an_orders_http_answer_is_its_views_json_field_for_field() -> None:
    view = OrderView.model_validate(ORDER)
    public = order_public(view)
    assert isinstance(public, OrderPublic)
    assert public.model_dump_json() == view.model_dump_json()
    # every field of the answer came from the view (none left at its default by a typo)
    assert public.model_dump(mode="json", exclude_defaults=True).keys() >= {
        name for name in ORDER if ORDER[name] not in (None, False, [], "CNY")
    }


def test_a_returns_http_answer_is_its_views_json_field_for_field() -> None:
    view = ReturnView.model_validate(RETURN)
    public = return_public(view)
    assert isinstance(public, ReturnPublic)
    assert public.model_dump_json() == view.model_dump_json()


def test_a_field_of_the_workflows_view_stays_out_of_the_http_answer_until_published() -> None:
    """The contracts are apart: a field the workflow adds to its state is no HTTP field."""

    class LaterOrderView(OrderView):
        internal_note: str = "workflow only"

    view = LaterOrderView.model_validate(ORDER)
    assert "internal_note" not in order_public(view).model_dump()
