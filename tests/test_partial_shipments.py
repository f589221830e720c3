"""Partial shipments and backorders (缺货): ship what is there, produce and ship the rest."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx

from tests.helpers import Factory, post_ok, submit_ok

DISPATCH = {"carrier": "SF", "tracking_no": "T"}


def line(order: dict[str, Any]) -> dict[str, Any]:
    return dict(order["lines"][0])


def ready(order: dict[str, Any]) -> dict[str, Any]:
    (shipment,) = [s for s in order["shipments"] if s["status"] == "ready"]
    return dict(shipment)


async def test_partial_delivery_ships_now_and_backorders_the_rest(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(delivery_policy="partial")
    assert customer["delivery_policy"] == "partial"
    product = await new_product(unit_price=10, stock_on_hand=4)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no = order["order_no"]
    assert order["delivery_policy"] == "partial"
    assert order["status"] == "READY_TO_SHIP"
    first = ready(order)
    assert first["lines"][0]["quantity"] == 4
    assert (line(order)["reserved_quantity"], line(order)["backordered_quantity"]) == (4, 6)
    (po,) = order["production_orders"]
    assert po["quantity"] == 6

    order = await post_ok(api, f"/shipments/{first['id']}/dispatch", DISPATCH)
    assert order["status"] == "IN_PRODUCTION"  # not SHIPPED: six are still to come
    assert (line(order)["shipped_quantity"], line(order)["backordered_quantity"]) == (4, 6)
    assert [(i["amount"], i["status"]) for i in order["invoices"]] == [(40, "issued")]
    order = await post_ok(api, f"/shipments/{first['id']}/deliver", {"signed_by": "Wang"})
    assert order["status"] == "IN_PRODUCTION"
    dispatch_deadline = next(d for d in order["deadlines"] if d["sla"] == "dispatch")
    assert dispatch_deadline["status"] != "met"

    order = await post_ok(api, f"/production-orders/{po['id']}/complete")
    assert order["status"] == "READY_TO_SHIP"
    second = ready(order)
    assert second["lines"][0]["quantity"] == 6
    order = await post_ok(api, f"/shipments/{second['id']}/dispatch", DISPATCH)
    assert order["status"] == "SHIPPED"
    assert [i["amount"] for i in order["invoices"]] == [40, 60]
    assert [d["status"] for d in order["deadlines"] if d["sla"] == "dispatch"] == ["met"]
    assert {d["key"] for d in order["deadlines"] if d["sla"] == "delivery"} == {
        first["id"],
        second["id"],
    }
    order = await post_ok(api, f"/shipments/{second['id']}/deliver", {"signed_by": "Wang"})
    assert order["status"] == "DELIVERED"
    for invoice in order["invoices"]:
        order = await post_ok(
            api,
            f"/orders/{order_no}/payments",
            {"amount": invoice["amount"], "method": "bank", "reference": invoice["id"]},
        )
    assert order["status"] == "COMPLETED"
    assert (line(order)["shipped_quantity"], line(order)["delivered_quantity"]) == (10, 10)
    stock = (await api.get(f"/products/{product['sku']}")).json()
    assert (stock["stock_on_hand"], stock["reserved"]) == (0, 0)


async def test_sales_short_closes_a_backorder(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()  # complete by default; this order asks for partial
    product = await new_product(unit_price=10, stock_on_hand=3)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 5}],
        delivery_policy="partial",
    )
    order_no = order["order_no"]
    close = {"by": "sales.li", "reason": "customer takes what we have"}
    response = await api.post(f"/orders/{order_no}/short-close", json=close)
    assert response.status_code == 409 and "cancel it instead" in response.json()["detail"]
    order = await post_ok(api, f"/shipments/{ready(order)['id']}/dispatch", DISPATCH)
    assert order["status"] == "IN_PRODUCTION"

    order = await post_ok(api, f"/orders/{order_no}/short-close", close)
    assert order["status"] == "SHIPPED"
    assert (line(order)["short_closed_quantity"], line(order)["backordered_quantity"]) == (2, 0)
    assert [p["status"] for p in order["production_orders"]] == ["cancelled"]
    assert "short_closed" in [e["event"] for e in order["timeline"]]
    assert (await api.post(f"/orders/{order_no}/short-close", json=close)).status_code == 409
    order = await post_ok(
        api, f"/shipments/{order['shipments'][0]['id']}/deliver", {"signed_by": "Wang"}
    )
    order = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 30, "method": "bank", "reference": "P"}
    )
    assert order["status"] == "COMPLETED"
    stock = (await api.get(f"/products/{product['sku']}")).json()
    assert (stock["stock_on_hand"], stock["reserved"]) == (0, 0)


async def test_an_amendment_that_cuts_a_line_replaces_the_larger_pick_list(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """A pick list never ships more than the order still holds for it."""
    customer = await new_customer(delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=4)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no, first = order["order_no"], ready(order)
    assert first["lines"][0]["quantity"] == 4

    response = await api.patch(
        f"/orders/{order_no}",
        json={"reason": "customer needs two", "lines": [{"sku": product["sku"], "quantity": 2}]},
    )
    assert response.status_code == 200, response.text
    order = response.json()
    statuses = {s["id"]: s["status"] for s in order["shipments"]}
    assert statuses[first["id"]] == "cancelled"
    second = ready(order)
    assert second["lines"][0]["quantity"] == 2
    assert (line(order)["reserved_quantity"], line(order)["backordered_quantity"]) == (2, 0)
    assert [p["status"] for p in order["production_orders"]] == ["cancelled"]
    response = await api.post(f"/shipments/{first['id']}/dispatch", json=DISPATCH)
    assert response.status_code == 409, response.text

    order = await post_ok(api, f"/shipments/{second['id']}/dispatch", DISPATCH)
    assert order["status"] == "SHIPPED"
    assert (line(order)["shipped_quantity"], line(order)["reserved_quantity"]) == (2, 0)
    assert [i["amount"] for i in order["invoices"]] == [20]
    stock = (await api.get(f"/products/{product['sku']}")).json()
    assert (stock["stock_on_hand"], stock["reserved"]) == (2, 0)


async def test_a_new_date_moves_each_shipments_delivery_deadline(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=4)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no, first = order["order_no"], ready(order)
    order = await post_ok(api, f"/shipments/{first['id']}/dispatch", DISPATCH)
    (before,) = [d for d in order["deadlines"] if d["sla"] == "delivery"]
    assert before["key"] == first["id"]

    later = (date.today() + timedelta(days=40)).isoformat()
    response = await api.patch(
        f"/orders/{order_no}", json={"reason": "site not ready", "requested_delivery_date": later}
    )
    assert response.status_code == 200, response.text
    order = response.json()
    (moved,) = [d for d in order["deadlines"] if d["sla"] == "delivery"]  # no stray order-level one
    assert moved["key"] == first["id"] and moved["status"] == "on_track"
    assert moved["due_at"] > before["due_at"] and moved["due_at"][:10] <= later


async def test_a_prepaid_backorder_short_closed_is_credited_and_refunded(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="prepaid", delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=3)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order_no = order["order_no"]
    assert order["status"] == "AWAITING_PAYMENT"
    order = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 50, "method": "bank", "reference": "PRE"}
    )
    order = await post_ok(api, f"/shipments/{ready(order)['id']}/dispatch", DISPATCH)
    assert order["status"] == "IN_PRODUCTION"

    close = {"by": "sales.li", "reason": "customer takes what we have"}
    order = await post_ok(api, f"/orders/{order_no}/short-close", close)
    assert order["status"] == "SHIPPED"
    # Paid for five, gets three: the two short-closed are credited and paid back.
    assert [(n["amount"], n["invoice_id"]) for n in order["credit_notes"]] == [
        (20, order["invoices"][0]["id"])
    ]
    assert [r["amount"] for r in order["refunds"]] == [20]
    assert "short_close_credited" in [e["event"] for e in order["timeline"]]
    order = await post_ok(
        api, f"/shipments/{order['shipments'][0]['id']}/deliver", {"signed_by": "Wang"}
    )
    assert order["status"] == "COMPLETED"
