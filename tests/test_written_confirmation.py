"""Written confirmation (书面确认) on the real stack: a large order, or one on non-standard
terms, waits for the customer's signed confirmation once confirmed; the wait has its own
deadline ladder, an amendment re-runs approval and the promise, a cancellation ends it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.helpers import Factory, error_fields, eventually, post_ok, submit_ok

WHO = {"requested_by": "sales.li", "reason": "customer called"}


async def approve(api: httpx.AsyncClient, order_no: str, *roles: str) -> dict[str, Any]:
    names = {"approver_l1": "sup.zhang", "approver_l2": "mgr.chen"}
    order: dict[str, Any] = {}
    for role in roles:
        order = await post_ok(
            api, f"/orders/{order_no}/approve", {"approver": names[role], "role": role}
        )
    return order


async def test_a_large_order_waits_for_written_confirmation_then_is_fulfilled(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(stock_on_hand=100, unit_price=100_000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 6}]
    )
    order_no = order["order_no"]
    early = await api.post(
        f"/orders/{order_no}/confirm",
        json={"document_reference": "DOC-1", "confirmed_by_customer_contact": "Li Lei"},
    )
    assert early.status_code == 409, early.text  # still pending approval
    order = await approve(api, order_no, "approver_l1", "approver_l2")
    assert order["status"] == "AWAITING_CONFIRMATION"
    assert order["status_label"] == {"en": "Awaiting written confirmation", "zh": "待书面确认"}
    written = order["written_confirmation"]
    assert "above the written confirmation limit 500000" in written["reason"]
    assert written["document_reference"] is None
    assert order["promise"] is not None and order["shipments"] == []
    assert "written_confirmation" in [d["sla"] for d in order["deadlines"]]
    for body in (
        {"document_reference": "", "confirmed_by_customer_contact": "Li Lei"},
        {"document_reference": "   ", "confirmed_by_customer_contact": "Li Lei"},
        {"confirmed_by_customer_contact": "Li Lei"},
    ):
        bad = await api.post(f"/orders/{order_no}/confirm", json=body)
        assert bad.status_code == 422, bad.text
        assert "document_reference" in error_fields(bad)
    confirmed = await post_ok(
        api,
        f"/orders/{order_no}/confirm",
        {"document_reference": "SIGNED-2026-001", "confirmed_by_customer_contact": "Li Lei"},
    )
    assert confirmed["status"] == "READY_TO_SHIP"
    written = confirmed["written_confirmation"]
    assert (written["document_reference"], written["confirmed_by_customer_contact"]) == (
        "SIGNED-2026-001",
        "Li Lei",
    )
    assert written["confirmed_at"] is not None
    assert "customer_confirmed" in [e["event"] for e in confirmed["timeline"]]
    (deadline,) = [d for d in confirmed["deadlines"] if d["sla"] == "written_confirmation"]
    assert deadline["status"] == "met"
    again = await api.post(
        f"/orders/{order_no}/confirm",
        json={"document_reference": "DOC-2", "confirmed_by_customer_contact": "Li Lei"},
    )
    assert again.status_code == 409, again.text
    shipment = confirmed["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T1"})
    delivered = await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Li Lei"})
    assert delivered["status"] == "DELIVERED"


async def test_unsigned_written_confirmation_expires_through_its_ladder(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(customer_group="sla-written", payment_terms="net_30")
    product = await new_product(stock_on_hand=100, unit_price=10)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 5}],
        payment_terms="net_90",  # more generous than the customer's: non-standard terms
    )
    assert "non_standard_terms" in [r["code"] for r in order["approval"]["reasons"]]
    order = await approve(api, order["order_no"], "approver_l1")
    assert order["status"] == "AWAITING_CONFIRMATION"
    assert order["written_confirmation"]["reason"] == "non-standard terms"

    async def expired() -> dict[str, Any]:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["status"] == "CANCELLED", view["status"]
        return dict(view)

    view = await eventually(expired, within=20)
    assert view["cancellation"]["reason_code"] == "confirmation_expired"
    (deadline,) = [d for d in view["deadlines"] if d["sla"] == "written_confirmation"]
    assert [e["kind"] for e in deadline["escalations"]] == ["reminder", "escalation", "action"]
    stock = (await api.get(f"/products/{product['sku']}")).json()
    assert stock["reserved"] == 0  # the saga gave the reservation back


async def test_an_amendment_while_awaiting_written_confirmation_re_runs_approval_and_promise(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(stock_on_hand=10, safety_stock=0, unit_price=100_000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 6}]
    )
    order_no = order["order_no"]
    order = await approve(api, order_no, "approver_l1", "approver_l2")
    assert order["status"] == "AWAITING_CONFIRMATION"
    first = order["promise"]["promised_date"]
    response = await api.patch(
        f"/orders/{order_no}", json=WHO | {"lines": [{"sku": product["sku"], "quantity": 12}]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PENDING_APPROVAL"  # more than was approved
    order = await approve(api, order_no, "approver_l1", "approver_l2")
    assert order["status"] == "AWAITING_CONFIRMATION"  # still unsigned
    promise = order["promise"]
    assert promise["revision"] == 2 and promise["first_promised_date"] == first
    assert promise["promised_date"] > first  # two short: after production now
    assert promise["history"][-1]["reason"] == "amendment"
    # The customer refuses to sign: a cancellation ends the wait.
    cancelled = await post_ok(
        api, f"/orders/{order_no}/cancel", {"reason_code": "customer_request"}
    )
    assert cancelled["status"] == "CANCELLED"
    assert (await api.get(f"/products/{product['sku']}")).json()["reserved"] == 0
