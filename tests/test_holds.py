"""Holds (冻结): an order on hold does nothing, its deadlines pause, release resumes it."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx

from tests.helpers import Factory, eventually, post_ok, submit_ok
from tests.webhook import WebhookReceiver

HOLD = {"reason": "customer asked us to wait", "by": "sales.li"}
RELEASE = {"by": "sales.li", "comment": "go ahead"}


async def test_an_order_on_hold_does_nothing_until_released(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1, "unit_price": 50}],
    )
    order_no = order["order_no"]
    held = await post_ok(api, f"/orders/{order_no}/hold", HOLD)
    assert held["status"] == "ON_HOLD" and held["status_label"]["zh"] == "冻结"
    assert held["hold"]["resume_status"] == "PENDING_APPROVAL"
    assert (await api.post(f"/orders/{order_no}/hold", json=HOLD)).status_code == 409
    decision = {"approver": "sup.zhang", "role": "approver_l1"}
    assert (await api.post(f"/orders/{order_no}/approve", json=decision)).status_code == 409

    released = await post_ok(api, f"/orders/{order_no}/release", RELEASE)
    assert released["status"] == "PENDING_APPROVAL" and released["hold"] is None
    assert (await api.post(f"/orders/{order_no}/release", json=RELEASE)).status_code == 409
    approved = await post_ok(api, f"/orders/{order_no}/approve", decision)
    assert approved["status"] == "READY_TO_SHIP"
    events = [e["event"] for e in approved["timeline"]]
    assert (
        events.index("order_held") < events.index("order_released") < events.index("order_approved")
    )

    # The warehouse cannot dispatch a frozen order; it can still be cancelled.
    await post_ok(api, f"/orders/{order_no}/hold", HOLD)
    response = await api.post(
        f"/shipments/{approved['shipments'][0]['id']}/dispatch",
        json={"carrier": "SF", "tracking_no": "1"},
    )
    assert response.status_code == 409 and "on hold" in response.json()["detail"]
    cancelled = await post_ok(
        api, f"/orders/{order_no}/cancel", {"reason_code": "customer_request", "by": "sales.li"}
    )
    assert cancelled["status"] == "CANCELLED"


async def test_payment_on_hold_is_taken_but_the_order_waits_for_release(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = (
        await new_customer(payment_terms="prepaid"),
        await new_product(unit_price=10),
    )
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 3}]
    )
    order_no = order["order_no"]
    await post_ok(api, f"/orders/{order_no}/hold", HOLD)
    paid = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 30, "method": "card", "reference": "H1"}
    )
    assert paid["status"] == "ON_HOLD" and paid["invoices"][0]["status"] == "paid"
    assert paid["hold"]["resume_status"] == "AWAITING_PAYMENT"
    released = await post_ok(api, f"/orders/{order_no}/release", RELEASE)
    assert released["status"] == "READY_TO_SHIP"


async def test_deadlines_pause_on_hold_and_resume_later(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, webhook: WebhookReceiver
) -> None:
    customer, product = await new_customer(customer_group="sla-dispatch"), await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no = order["order_no"]
    due = _dispatch(order)["due_at"]
    held = await post_ok(api, f"/orders/{order_no}/hold", HOLD)
    assert _dispatch(held)["paused_at"] is not None
    await asyncio.sleep(4.5)  # past the 4-second deadline: nothing fires while frozen
    view = (await api.get(f"/orders/{order_no}")).json()
    assert _dispatch(view)["escalations"] == [] and view["overdue"] is False
    assert webhook.for_order(order_no) == []

    released = await post_ok(api, f"/orders/{order_no}/release", RELEASE)
    shifted = _dispatch(released)
    assert shifted["paused_at"] is None
    assert _seconds(shifted["due_at"]) - _seconds(due) >= 4.4

    async def escalated() -> None:
        view = (await api.get(f"/orders/{order_no}")).json()
        assert view["overdue"] is True
        assert [e["kind"] for e in _dispatch(view)["escalations"]] == ["reminder", "escalation"]

    await eventually(escalated, within=15)


async def test_a_credit_hold_needs_credit_and_lifts_on_payment(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="net_30", credit_limit=1000)
    cid = customer["customer_id"]
    product = await new_product(unit_price=100)
    # An earlier order on credit, shipped: its invoice is money owed.
    owed = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 4}])
    (shipment,) = [s["id"] for s in owed["shipments"]]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "1"})
    order = await submit_ok(
        api,
        customer_id=cid,
        lines=[{"sku": product["sku"], "quantity": 1}],
        payment_terms="prepaid",
    )
    order_no = order["order_no"]
    assert order["status"] == "AWAITING_PAYMENT"
    held = await post_ok(
        api, f"/orders/{order_no}/hold", HOLD | {"kind": "credit", "by": "finance.wu"}
    )
    assert held["hold"]["kind"] == "credit"
    # Finance lowers the limit below what the open invoice owes: the hold cannot be lifted.
    response = await api.patch(f"/customers/{cid}", json={"credit_limit": 100})
    assert response.status_code == 200 and response.json()["credit_limit"] == 100
    response = await api.post(f"/orders/{order_no}/release", json={"by": "finance.wu"})
    assert response.status_code == 409, response.text
    assert "exposure 400" in response.json()["detail"]
    assert (await api.get(f"/orders/{order_no}")).json()["status"] == "ON_HOLD"
    # The customer pays what was owed, then this order: credit is back in line, the hold
    # lifts, the order goes on.
    pay = {"amount": 400, "method": "bank", "reference": "C0"}
    await post_ok(api, f"/orders/{owed['order_no']}/payments", pay)
    paid = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 100, "method": "bank", "reference": "C1"}
    )
    assert paid["hold"] is None and paid["status"] == "READY_TO_SHIP"
    assert "order_released" in [e["event"] for e in paid["timeline"]]


async def test_finance_can_lift_a_customer_credit_hold(
    api: httpx.AsyncClient, new_customer: Factory
) -> None:
    customer = await new_customer()
    response = await api.post(
        f"/customers/{customer['customer_id']}/credit-hold/release", json={"by": "finance.wu"}
    )
    assert response.status_code == 409  # not on hold
    assert (await api.patch("/customers/NOPE", json={"credit_limit": 1})).status_code == 404
    assert (
        await api.patch(f"/customers/{customer['customer_id']}", json={"credit_limit": -1})
    ).status_code == 422


FINANCE = {"approver": "finance.qian", "role": "finance"}  # signed in with the finance role


async def test_finance_lifts_a_dunning_credit_hold_and_new_orders_pass_again(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(customer_group="sla-dunning")
    cid = customer["customer_id"]
    product = await new_product(unit_price=100)
    order = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 2}])
    shipment_id = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"})
    await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Wang"})

    async def on_hold() -> None:
        assert (await api.get(f"/customers/{cid}")).json()["credit_hold"] is True

    await eventually(on_hold, within=15)  # the unpaid invoice runs through the dunning ladder
    held = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 1}])
    assert held["status"] == "PENDING_APPROVAL"
    assert [r["code"] for r in held["approval"]["reasons"]] == ["customer_on_credit_hold"]

    # Sales cannot lift it; finance can, once.
    url = f"/customers/{cid}/credit-hold/release"
    response = await api.post(url, json={"approver": "sales.li", "role": "sales"})
    assert response.status_code == 403, response.text
    lifted = await post_ok(api, url, {"by": "finance.qian", "comment": "paid by phone"})
    assert lifted["customer_id"] == cid and lifted["credit_hold"] is False
    assert (await api.get(f"/customers/{cid}")).json()["credit_hold"] is False
    response = await api.post(url, json={"by": "finance.qian"})
    assert response.status_code == 409, response.text

    # A new order, as small as the held one, is no longer held for approval.
    fresh = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 1}])
    assert fresh["status"] == "READY_TO_SHIP"
    assert fresh["approval"]["reasons"] == [] and fresh["approval"]["required_levels"] == 0
    assert [d["approver"] for d in fresh["approvals"]] == ["system"]


async def test_finance_releases_a_credit_hold_when_credit_is_fine_and_the_order_resumes(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=10_000)
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 3}]
    )
    order_no = order["order_no"]
    assert order["status"] == "READY_TO_SHIP"
    held = await post_ok(
        api, f"/orders/{order_no}/hold", FINANCE | {"reason": "check the account", "kind": "credit"}
    )
    assert held["status"] == "ON_HOLD"
    assert held["hold"]["kind"] == "credit" and held["hold"]["by"] == "finance.qian"
    assert held["hold"]["resume_status"] == "READY_TO_SHIP"
    response = await api.post(
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        json={"carrier": "SF", "tracking_no": "1"},
    )
    assert response.status_code == 409, response.text

    released = await post_ok(api, f"/orders/{order_no}/release", FINANCE | {"comment": "ok"})
    assert released["status"] == "READY_TO_SHIP" and released["hold"] is None
    (entry,) = [e for e in released["timeline"] if e["event"] == "order_released"]
    assert entry["actor"] == "finance.qian" and entry["status"] == "READY_TO_SHIP"
    assert entry["detail"] == "ok; credit exposure 300 of limit 10000"
    assert released["credit"]["exposure"] == 300
    assert _dispatch(released)["paused_at"] is None
    # It goes on from where it was: the pick list it had is dispatched.
    shipped = await post_ok(
        api,
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    assert shipped["status"] == "SHIPPED"


async def test_a_prepaid_order_adds_nothing_to_credit_exposure_on_release(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """A cash customer (limit 100, prepaid) with a rush order of 500 awaiting approval: the
    uninvoiced order is not money owed on credit, so finance can lift a credit hold."""
    customer = await new_customer(payment_terms="prepaid", credit_limit=100)
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 5}],
        priority="rush",
    )
    order_no = order["order_no"]
    assert order["status"] == "PENDING_APPROVAL" and order["invoices"] == []
    await post_ok(
        api, f"/orders/{order_no}/hold", FINANCE | {"reason": "check the account", "kind": "credit"}
    )
    released = await post_ok(api, f"/orders/{order_no}/release", FINANCE | {"comment": "ok"})
    assert released["status"] == "PENDING_APPROVAL" and released["hold"] is None
    assert released["credit"]["exposure"] == 0


def _dispatch(order: dict[str, Any]) -> dict[str, Any]:
    (deadline,) = [d for d in order["deadlines"] if d["sla"] == "dispatch"]
    return dict(deadline)


def _seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
