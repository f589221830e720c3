"""Order paths driven through the API, shared by the flow, replay and history-cost tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
from temporalio.client import Client

from tests.helpers import Factory, eventually, post_ok, submit, submit_ok


async def auto_approved(api: httpx.AsyncClient, new_customer: Factory, new_product: Factory) -> str:
    """Credit terms, stock in hand: submit, dispatch, deliver, pay."""
    customer = await new_customer(payment_terms="net_30")
    product = await new_product(unit_price=120, stock_on_hand=50)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    await _ship_and_settle(api, order)
    return f"order-{order['order_no']}"


async def two_level_approval(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(unit_price=1000, stock_on_hand=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 250}]
    )
    order_no = order["order_no"]
    await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "sup.zhang", "role": "approver_l1"}
    )
    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "mgr.chen", "role": "approver_l2"}
    )
    await _ship_and_settle(api, order)
    return f"order-{order_no}"


async def production_shortage(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    customer = await new_customer()
    product = await new_product(stock_on_hand=2)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order = await post_ok(api, f"/production-orders/{order['production_orders'][0]['id']}/complete")
    await _ship_and_settle(api, order)
    return f"order-{order['order_no']}"


async def production_partly_reported(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Short by five: three reported produced (`partially_completed`), then the rest."""
    customer = await new_customer()
    product = await new_product(stock_on_hand=2)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 7}]
    )
    url = f"/production-orders/{order['production_orders'][0]['id']}/complete"
    order = await post_ok(api, url, {"produced_quantity": 3})
    assert order["production_orders"][0]["status"] == "partially_completed"
    order = await post_ok(api, url)
    assert order["production_orders"][0]["status"] == "completed"
    await _ship_and_settle(api, order)
    return f"order-{order['order_no']}"


async def prepaid(api: httpx.AsyncClient, new_customer: Factory, new_product: Factory) -> str:
    customer = await new_customer(payment_terms="prepaid")
    product = await new_product(unit_price=50)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 200, "method": "card", "reference": "C1"},
    )
    shipment_id = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Liu"})
    return f"order-{order['order_no']}"


async def rejected(api: httpx.AsyncClient, new_customer: Factory, new_product: Factory) -> str:
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",
    )
    await post_ok(
        api,
        f"/orders/{order['order_no']}/reject",
        {"approver": "sup.zhang", "role": "approver_l1", "reason": "no"},
    )
    return f"order-{order['order_no']}"


async def approval_expired(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Nobody decides: reminder, two escalations, expiry, cancellation (seconds-long SLAs)."""
    customer = await new_customer(customer_group="sla-approval")
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1, "unit_price": 50}],
    )

    async def cancelled() -> None:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["status"] == "CANCELLED" and view["closed"]

    await eventually(cancelled, within=15)
    return f"order-{order['order_no']}"


async def entry_refused(api: httpx.AsyncClient, new_customer: Factory, new_product: Factory) -> str:
    """Entry validation refuses the order: the run completes as INVALID, nothing is created."""
    product = await new_product()
    response = await submit(
        api, customer_id="NO-SUCH-CUSTOMER", lines=[{"sku": product["sku"], "quantity": 1}]
    )
    assert response.status_code == 422, response.text
    return f"order-{response.json()['order_no']}"


async def amended(api: httpx.AsyncClient, new_customer: Factory, new_product: Factory) -> str:
    """Auto-approved, amended to more than stock (production), then to more than the
    approval limit (approval again, production replaced), then produced, shipped, paid."""
    customer = await new_customer()
    product = await new_product(unit_price=1000, stock_on_hand=20)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 10}]
    )
    order_no = order["order_no"]
    who = {"requested_by": "sales.li", "reason": "customer called"}
    for quantity, status in ((30, "IN_PRODUCTION"), (60, "PENDING_APPROVAL")):
        response = await api.patch(
            f"/orders/{order_no}", json=who | {"lines": [{"sku": sku, "quantity": quantity}]}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "sup.zhang", "role": "approver_l1"}
    )
    assert order["status"] == "IN_PRODUCTION"
    (planned,) = [p for p in order["production_orders"] if p["status"] == "planned"]
    assert planned["quantity"] == 40
    order = await post_ok(api, f"/production-orders/{planned['id']}/complete")
    await _ship_and_settle(api, order)
    return f"order-{order_no}"


async def partial_delivery(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Partial delivery: ship what is there, produce and ship the backorder, pay both."""
    customer = await new_customer(delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=2)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order_no = order["order_no"]
    for step in range(2):
        (shipment,) = [s["id"] for s in order["shipments"] if s["status"] == "ready"]
        await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
        order = await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
        if step == 0:
            order = await post_ok(
                api, f"/production-orders/{order['production_orders'][0]['id']}/complete"
            )
    for invoice in order["invoices"]:
        order = await post_ok(
            api,
            f"/orders/{order_no}/payments",
            {"amount": invoice["amount"], "method": "bank", "reference": invoice["id"]},
        )
    assert order["status"] == "COMPLETED", order["status"]
    return f"order-{order_no}"


async def cancelled_in_temporal(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, temporal: Client
) -> str:
    """Prepaid, paid, ready to ship: ops press "Request Cancellation" in the Temporal UI and
    the saga undoes it all (pick list, refund, credit note, stock)."""
    customer = await new_customer(payment_terms="prepaid")
    product = await new_product(unit_price=100, stock_on_hand=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 400, "method": "bank", "reference": "P"},
    )
    assert order["status"] == "READY_TO_SHIP"
    handle = temporal.get_workflow_handle(order["workflow_id"])
    await handle.cancel(reason="duplicate, per ops")
    final = await handle.result()
    assert final["status"] == "CANCELLED", final["status"]
    return str(order["workflow_id"])


async def return_replaced(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """A delivered order's goods come back and are replaced."""
    workflow_id = await auto_approved(api, new_customer, new_product)
    order = (await api.get(f"/orders/{workflow_id.removeprefix('order-')}")).json()
    ret = await return_one(api, order["order_no"], order["lines"][0]["sku"], "replace")
    shipment = ret["replacement"]["id"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "R"})
    ret = await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    assert ret["status"] == "COMPLETED"
    return str(ret["workflow_id"])


async def partial_amended(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Partial delivery cut below its pick list (the pick list is made anew), shipped, its
    delivery date moved (the shipment's deadline re-armed), delivered and paid."""
    customer = await new_customer(delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=4)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no = order["order_no"]
    order = await patch(api, order_no, {"lines": [{"sku": product["sku"], "quantity": 3}]})
    (shipment,) = [s["id"] for s in order["shipments"] if s["status"] == "ready"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    later = (date.today() + timedelta(days=20)).isoformat()
    await patch(api, order_no, {"requested_delivery_date": later})
    order = await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    order = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 30, "method": "bank", "reference": "P"}
    )
    assert order["status"] == "COMPLETED", order["status"]
    return f"order-{order_no}"


async def prepaid_short_closed(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Prepaid, partial: paid for five, three shipped, the rest short-closed and refunded."""
    customer = await new_customer(payment_terms="prepaid", delivery_policy="partial")
    product = await new_product(unit_price=10, stock_on_hand=3)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order_no = order["order_no"]
    order = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 50, "method": "bank", "reference": "P"}
    )
    (shipment,) = [s["id"] for s in order["shipments"] if s["status"] == "ready"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/orders/{order_no}/short-close", {"by": "sales.li", "reason": "enough"})
    order = await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    assert order["status"] == "COMPLETED" and order["refunds"], order["status"]
    return f"order-{order_no}"


async def return_refunded_unpaid(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """A delivered, unpaid order's goods come back: the credit note settles part of the
    invoice and the return tells the order (the order then completes on the rest)."""
    customer = await new_customer()
    product = await new_product(unit_price=100, stock_on_hand=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 3}]
    )
    (shipment,) = [s["id"] for s in order["shipments"]]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    ret = await return_one(api, order["order_no"], product["sku"], "refund")
    assert ret["status"] == "COMPLETED" and ret["refund"] is None

    async def credited() -> None:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["invoices"][0]["credited_amount"] == 100

    await eventually(credited)
    final = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 200, "method": "bank", "reference": "P"},
    )
    assert final["status"] == "COMPLETED", final["status"]
    return str(ret["workflow_id"])


async def return_nothing_accepted(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """Goods come back, inspection accepts none: the return ends with nothing to credit."""
    workflow_id = await auto_approved(api, new_customer, new_product)
    order = (await api.get(f"/orders/{workflow_id.removeprefix('order-')}")).json()
    ret = await return_one(api, order["order_no"], order["lines"][0]["sku"], "refund", 0)
    assert ret["status"] == "COMPLETED" and ret["credit_note"] is None
    return str(ret["workflow_id"])


async def return_one(
    api: httpx.AsyncClient, order_no: str, sku: str, resolution: str, accepted: int = 1
) -> dict[str, Any]:
    """One unit of `sku` comes back: requested, approved, received, `accepted` of it kept."""
    ret = await post_ok(
        api,
        f"/orders/{order_no}/returns",
        {
            "lines": [{"sku": sku, "quantity": 1}],
            "reason": "dented",
            "resolution": resolution,
            "requested_by": "y",
        },
        status=201,
    )
    for step, body in (
        ("approve", {"by": "lead"}),
        ("receive", None),
        ("inspect", {"accepted_quantity": accepted}),
    ):
        ret = await post_ok(api, f"/returns/{ret['return_no']}/{step}", body)
    return ret


async def patch(api: httpx.AsyncClient, order_no: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.patch(f"/orders/{order_no}", json={"reason": "customer called"} | body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _ship_and_settle(api: httpx.AsyncClient, order: dict[str, Any]) -> None:
    (shipment_id,) = [s["id"] for s in order["shipments"] if s["status"] == "ready"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "T"})
    await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Wang"})
    final = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": order["total"], "method": "bank_transfer", "reference": "B1"},
    )
    assert final["status"] == "COMPLETED", final


SCENARIOS = {
    "auto_approved": auto_approved,
    "two_level_approval": two_level_approval,
    "production_shortage": production_shortage,
    "production_partly_reported": production_partly_reported,
    "prepaid": prepaid,
    "rejected": rejected,
    "entry_refused": entry_refused,
    "approval_expired": approval_expired,
    "amended": amended,
    "partial_delivery": partial_delivery,
    "return_replaced": return_replaced,
    "partial_amended": partial_amended,
    "prepaid_short_closed": prepaid_short_closed,
    "return_refunded_unpaid": return_refunded_unpaid,
    "return_nothing_accepted": return_nothing_accepted,
}

# Paths that need Temporal's own client as well (ops acting in the Temporal UI).
TEMPORAL_SCENARIOS = {"cancelled_in_temporal": cancelled_in_temporal}
