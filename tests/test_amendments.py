"""Amendments (修改): a new revision, approval re-run on new content, deadlines re-armed."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.helpers import Factory, error_fields, eventually, post_ok, submit_ok

WHO = {"requested_by": "sales.li", "reason": "customer called"}


async def patch_ok(api: httpx.AsyncClient, order_no: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.patch(f"/orders/{order_no}", json=WHO | body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_amendment_that_raises_risk_needs_approval_again(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = (
        await new_customer(credit_limit=10_000_000),
        await new_product(unit_price=1000),
    )
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 60}]
    )
    order_no = order["order_no"]
    assert order["approval"]["required_levels"] == 1
    order = await post_ok(api, f"/orders/{order_no}/hold", {"reason": "x", "by": "sales.li"})
    assert (
        await api.patch(f"/orders/{order_no}", json=WHO | {"lines": [{"sku": sku, "quantity": 1}]})
    ).status_code == 409
    order = await post_ok(api, f"/orders/{order_no}/release", {"by": "sales.li"})

    # Still awaiting its level-1 approval (nobody has approved it yet), the order grows from
    # 60 to 250 units: above the two-level limit, so it now needs two levels.
    order = await patch_ok(api, order_no, {"lines": [{"sku": sku, "quantity": 250}]})
    assert order["revision"] == 2 and order["status"] == "PENDING_APPROVAL"
    assert order["total"] == 250_000
    assert order["approval"]["required_levels"] == 2
    assert [r["code"] for r in order["approval"]["reasons"]] == ["total_above_two_level_limit"]
    (change,) = order["changes"]
    assert change["reapproval"] is True
    assert change["lines"] == [
        {
            "sku": sku,
            "change": "changed",
            "quantity": [60, 250],
            "unit_price": [1000, 1000],
        }
    ]
    assert change["fields"]["total"] == [60_000, 250_000]
    assert (change["requested_by"], change["reason"]) == ("sales.li", "customer called")
    # Nothing reserved until it is approved again, at both levels.
    assert (await api.get(f"/products/{sku}")).json()["reserved"] == 0
    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "sup.zhang", "role": "approver_l1"}
    )
    assert order["approval"]["awaiting_level"] == 2
    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "mgr.chen", "role": "approver_l2"}
    )
    assert order["status"] == "READY_TO_SHIP"
    assert order["lines"][0]["reserved_quantity"] == 250
    assert order["changes"][0]["approved_by"] == ["sup.zhang", "mgr.chen"]


async def test_an_amendment_that_lowers_risk_goes_on_without_approval(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 60}]
    )
    assert order["status"] == "PENDING_APPROVAL"
    order = await patch_ok(
        api, order["order_no"], {"lines": [{"sku": product["sku"], "quantity": 5}]}
    )
    assert order["status"] == "READY_TO_SHIP"
    assert order["approvals"][-1]["approver"] == "system"
    assert order["changes"][0]["reapproval"] is False
    assert deadline(order, "approval")["status"] == "met"


async def test_amended_lines_pass_entry_validation(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",
    )
    response = await api.patch(
        f"/orders/{order['order_no']}", json=WHO | {"lines": [{"sku": "NOPE", "quantity": 0}]}
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"lines[0].sku", "lines[0].quantity"}
    response = await api.patch(f"/orders/{order['order_no']}", json=WHO)
    assert response.status_code == 422  # nothing to change
    response = await api.patch(
        f"/orders/{order['order_no']}", json={"lines": [{"sku": "A", "quantity": 1}]}
    )
    assert response.status_code == 422 and {"reason"} <= error_fields(response)
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    response = await api.patch(
        f"/orders/{order['order_no']}", json=WHO | {"requested_delivery_date": yesterday}
    )
    assert response.status_code == 422 and error_fields(response) == {"requested_delivery_date"}
    assert (await api.get(f"/orders/{order['order_no']}")).json()["revision"] == 1


async def test_after_shipment_lines_and_address_are_final_and_the_date_moves_the_deadline(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no = order["order_no"]
    # Before shipment the address may change.
    order = await patch_ok(api, order_no, {"shipping_address": "上海市浦东新区 1 号"})
    assert order["shipping_address"] == "上海市浦东新区 1 号" and order["revision"] == 2

    order = await post_ok(
        api,
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    for body in (
        {"lines": [{"sku": product["sku"], "quantity": 2}]},
        {"shipping_address": "elsewhere"},
    ):
        response = await api.patch(f"/orders/{order_no}", json=WHO | body)
        assert response.status_code == 409, response.text
        assert (
            "have shipped" in response.json()["detail"] and "/returns" in response.json()["detail"]
        )

    before = deadline(order, "delivery")
    later = (date.today() + timedelta(days=30)).isoformat()
    order = await patch_ok(api, order_no, {"requested_delivery_date": later})
    moved = deadline(order, "delivery")
    assert moved["due_at"] > before["due_at"] and moved["due_at"][:10] <= later
    assert order["changes"][-1]["fields"]["requested_delivery_date"] == [None, later]
    assert order["revision"] == 3


async def test_the_approval_deadline_is_rearmed_by_an_amendment(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = (
        await new_customer(customer_group="sla-approval"),
        await new_product(unit_price=100),
    )
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1, "unit_price": 50}],
    )
    first = deadline(order, "approval")
    await asyncio.sleep(1.5)  # past the reminder
    order = await patch_ok(
        api,
        order["order_no"],
        {"lines": [{"sku": product["sku"], "quantity": 2, "unit_price": 50}]},
    )
    again = deadline(order, "approval")
    assert again["started_at"] > first["started_at"] and again["escalations"] == []
    assert order["status"] == "PENDING_APPROVAL"

    async def expired() -> None:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["status"] == "CANCELLED"

    await eventually(expired, within=15)


def deadline(order: dict[str, Any], sla: str) -> dict[str, Any]:
    (found,) = [d for d in order["deadlines"] if d["sla"] == sla]
    return dict(found)


async def test_less_of_an_approved_order_keeps_its_approval_and_releases_stock(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product(stock_on_hand=20)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 8}]
    )
    assert order["status"] == "READY_TO_SHIP"
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 3}]})
    assert order["status"] == "READY_TO_SHIP" and order["changes"][0]["reapproval"] is False
    assert order["lines"][0]["reserved_quantity"] == 3
    assert (await api.get(f"/products/{sku}")).json()["reserved"] == 3
    # The pick list follows: the old one is withdrawn, a new one carries 3.
    assert [(s["id"][-2:], s["status"]) for s in order["shipments"]] == [
        ("-1", "cancelled"),
        ("-2", "ready"),
    ]
    assert order["shipments"][1]["lines"][0]["quantity"] == 3
    order = await post_ok(
        api,
        f"/shipments/{order['shipments'][1]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    assert order["status"] == "SHIPPED" and order["invoices"][0]["amount"] == 300
    response = await api.post(
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        json={"carrier": "SF", "tracking_no": "1"},
    )
    assert response.status_code == 409


async def test_more_than_is_in_stock_goes_to_production(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product(stock_on_hand=5)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 4}]
    )
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 9}]})
    assert order["status"] == "IN_PRODUCTION"
    assert order["lines"][0]["reserved_quantity"] == 5
    (po,) = order["production_orders"]
    assert po["id"].endswith("-r2") and po["quantity"] == 4
    # Fewer again: the production order no longer fits; it is cancelled and nothing replaces it.
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 5}]})
    assert order["status"] == "READY_TO_SHIP"
    assert [p["status"] for p in order["production_orders"]] == ["cancelled"]
    assert deadline(order, "production")["status"] == "cancelled"


async def test_more_risk_after_approval_goes_back_to_approval_and_rejection_undoes_it(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=1000, stock_on_hand=100)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 10}]
    )
    assert order["status"] == "READY_TO_SHIP"
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 60}]})
    assert order["status"] == "PENDING_APPROVAL"
    assert order["changes"][0]["reapproval"] is True
    assert order["changes"][0]["superseded_approvals"] == ["system"]
    assert [r["code"] for r in order["approval"]["reasons"]] == ["total_above_auto_approval_limit"]
    # No dispatching around the approval.
    response = await api.post(
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        json={"carrier": "SF", "tracking_no": "1"},
    )
    assert response.status_code == 409
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/reject",
        {"approver": "sup.zhang", "role": "approver_l1", "reason": "too much"},
    )
    assert order["status"] == "REJECTED"
    assert (await api.get(f"/products/{sku}")).json()["reserved"] == 0
    assert [s["status"] for s in order["shipments"]] == ["cancelled"]


async def test_an_unpaid_prepaid_invoice_is_reissued_and_a_paid_order_is_not_amended(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = (
        await new_customer(payment_terms="prepaid"),
        await new_product(unit_price=10),
    )
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 4}]
    )
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 6}]})
    assert order["status"] == "AWAITING_PAYMENT"
    assert [(i["amount"], i["status"]) for i in order["invoices"]] == [(40, "void"), (60, "issued")]
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 10, "method": "card", "reference": "A"},
    )
    response = await api.patch(
        f"/orders/{order['order_no']}", json=WHO | {"lines": [{"sku": sku, "quantity": 1}]}
    )
    assert response.status_code == 409 and "payments" in response.json()["detail"]
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 50, "method": "card", "reference": "B"},
    )
    assert order["status"] == "READY_TO_SHIP"


async def test_a_cash_customers_prepaid_order_needs_no_approval_for_credit(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """Credit limit 0 and prepaid terms (款到发货): a prepaid order owes nothing on credit, so it
    goes straight to payment, also when amended; other reasons still ask for people."""
    customer, product = (
        await new_customer(payment_terms="prepaid", credit_limit=0),
        await new_product(unit_price=10),
    )
    sku, customer_id = product["sku"], customer["customer_id"]
    order = await submit_ok(api, customer_id=customer_id, lines=[{"sku": sku, "quantity": 4}])
    assert order["status"] == "AWAITING_PAYMENT" and order["approval"]["reasons"] == []
    assert order["approval"]["reasons"] == [] and order["credit"]["exposure"] == 0
    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 6}]})
    assert order["status"] == "AWAITING_PAYMENT" and order["approval"]["reasons"] == []
    rush = await submit_ok(
        api, customer_id=customer_id, lines=[{"sku": sku, "quantity": 1}], priority="rush"
    )
    assert rush["status"] == "PENDING_APPROVAL"
    assert [r["code"] for r in rush["approval"]["reasons"]] == ["rush_priority"]
    on_credit = await submit_ok(
        api, customer_id=customer_id, lines=[{"sku": sku, "quantity": 1}], payment_terms="net_30"
    )
    assert [r["code"] for r in on_credit["approval"]["reasons"]] == [
        "credit_limit_exceeded",
        "non_standard_terms",
    ]


SUPERVISOR = {"approver": "sup.xu", "role": "approver_l1"}
DISPATCH = {"carrier": "SF", "tracking_no": "1"}


def events(order: dict[str, Any]) -> list[str]:
    return [e["event"] for e in order["timeline"]]


async def approved_by_supervisor(
    api: httpx.AsyncClient, codes: list[str], **fields: Any
) -> dict[str, Any]:
    """An order that waits for one level for `codes`, then approved by the supervisor."""
    order = await submit_ok(api, **fields)
    assert order["status"] == "PENDING_APPROVAL"
    assert [r["code"] for r in order["approval"]["reasons"]] == codes
    assert order["approval"]["required_levels"] == 1
    order = await post_ok(api, f"/orders/{order['order_no']}/approve", SUPERVISOR)
    assert order["status"] == "READY_TO_SHIP"
    assert [(d["approver"], d["decision"]) for d in order["approvals"]] == [("sup.xu", "approved")]
    return order


@pytest.mark.parametrize(
    ("priority", "before", "after", "code"),
    [
        ("normal", 60, 55, "total_above_auto_approval_limit"),  # 60 000 -> 55 000, still > 50 000
        ("rush", 5, 3, "rush_priority"),
    ],
)
async def test_less_of_an_order_a_person_approved_keeps_that_persons_approval(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    priority: str,
    before: int,
    after: int,
    code: str,
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=1000)
    sku = product["sku"]
    order = await approved_by_supervisor(
        api,
        [code],
        customer_id=customer["customer_id"],
        lines=[{"sku": sku, "quantity": before}],
        priority=priority,
    )
    order_no = order["order_no"]
    assert order["lines"][0]["reserved_quantity"] == before

    order = await patch_ok(api, order_no, {"lines": [{"sku": sku, "quantity": after}]})
    assert order["revision"] == 2
    assert order["status"] == "READY_TO_SHIP"
    (change,) = order["changes"]
    assert change["reapproval"] is False
    assert change["approved_by"] == ["sup.xu"]
    assert change["superseded_approvals"] == []
    assert change["fields"]["total"] == [before * 1000, after * 1000]
    # The supervisor's decision still stands; nobody was asked again.
    assert [(d["approver"], d["decision"]) for d in order["approvals"]] == [("sup.xu", "approved")]
    assert order["approval"]["awaiting_level"] is None
    assert events(order).count("approval_required") == 1  # only the one at entry
    assert "PENDING_APPROVAL" not in [
        e["status"] for e in order["timeline"][events(order).index("lines_amended") :]
    ]
    assert deadline(order, "approval")["status"] == "met"
    assert order["lines"][0]["reserved_quantity"] == after
    assert (await api.get(f"/products/{sku}")).json()["reserved"] == after

    # It goes on: the new pick list ships the amended quantity.
    (ready,) = [s for s in order["shipments"] if s["status"] == "ready"]
    assert ready["lines"][0]["quantity"] == after
    order = await post_ok(api, f"/shipments/{ready['id']}/dispatch", DISPATCH)
    assert order["status"] == "SHIPPED"
    assert [i["amount"] for i in order["invoices"]] == [after * 1000]


async def test_more_of_an_order_a_person_approved_voids_that_approval(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=1000)
    sku = product["sku"]
    order = await approved_by_supervisor(
        api,
        ["total_above_auto_approval_limit"],
        customer_id=customer["customer_id"],
        lines=[{"sku": sku, "quantity": 60}],
    )
    order_no = order["order_no"]
    (pick_list,) = order["shipments"]

    # Same level (70 000 is still below the two-level limit), but more than was approved.
    order = await patch_ok(api, order_no, {"lines": [{"sku": sku, "quantity": 70}]})
    assert order["status"] == "PENDING_APPROVAL"
    assert order["approvals"] == []
    assert order["approval"]["required_levels"] == 1
    assert order["approval"]["awaiting_level"] == 1
    assert [r["code"] for r in order["approval"]["reasons"]] == ["total_above_auto_approval_limit"]
    (change,) = order["changes"]
    assert change["reapproval"] is True
    assert change["superseded_approvals"] == ["sup.xu"]
    assert change["approved_by"] == []
    assert events(order).count("approval_required") == 2
    # No dispatching on the voided approval.
    response = await api.post(f"/shipments/{pick_list['id']}/dispatch", json=DISPATCH)
    assert response.status_code == 409, response.text

    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "sup.ma", "role": "approver_l1"}
    )
    assert order["status"] == "READY_TO_SHIP"
    assert [(d["approver"], d["decision"]) for d in order["approvals"]] == [("sup.ma", "approved")]
    (change,) = order["changes"]
    assert change["approved_by"] == ["sup.ma"]
    assert change["superseded_approvals"] == ["sup.xu"]
    assert order["lines"][0]["reserved_quantity"] == 70
    assert (await api.get(f"/products/{sku}")).json()["reserved"] == 70


@pytest.mark.parametrize(
    ("first_price", "approved_by"),
    [
        (95, ["system"]),  # 5 % off: within the limit, approved automatically
        (85, ["sup.xu"]),  # 15 % off: a supervisor approved that discount
    ],
)
async def test_a_deeper_discount_sends_an_approved_order_back_to_approval(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    first_price: int,
    approved_by: list[str],
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=100)
    sku = product["sku"]
    entry: dict[str, Any] = {
        "customer_id": customer["customer_id"],
        "lines": [{"sku": sku, "quantity": 10, "unit_price": first_price}],
    }
    if approved_by == ["system"]:
        order = await submit_ok(api, **entry)
        assert order["status"] == "READY_TO_SHIP"
    else:
        order = await approved_by_supervisor(api, ["discount_beyond_limit"], **entry)
    assert [d["approver"] for d in order["approvals"]] == approved_by

    # 30 % off: a lower total, so only the discount can be what needs approval.
    order = await patch_ok(
        api, order["order_no"], {"lines": [{"sku": sku, "quantity": 10, "unit_price": 70}]}
    )
    assert order["status"] == "PENDING_APPROVAL"
    assert order["total"] == 700
    assert [r["code"] for r in order["approval"]["reasons"]] == ["discount_beyond_limit"]
    assert order["approval"]["required_levels"] == 1
    assert order["approvals"] == []
    (change,) = order["changes"]
    assert change["reapproval"] is True
    assert change["superseded_approvals"] == approved_by
    assert change["lines"] == [
        {"sku": sku, "change": "changed", "quantity": [10, 10], "unit_price": [first_price, 70]}
    ]


async def test_going_over_the_credit_limit_sends_an_approved_order_back_to_approval(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=1000)
    product = await new_product(unit_price=100)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 5}]
    )
    assert order["status"] == "READY_TO_SHIP"
    assert [d["approver"] for d in order["approvals"]] == ["system"]

    order = await patch_ok(api, order["order_no"], {"lines": [{"sku": sku, "quantity": 15}]})
    assert order["status"] == "PENDING_APPROVAL"
    assert order["credit"]["exposure"] == 1500 and order["credit"]["credit_limit"] == 1000
    assert [r["code"] for r in order["approval"]["reasons"]] == ["credit_limit_exceeded"]
    assert order["approval"]["required_levels"] == 2
    assert order["approvals"] == []
    (change,) = order["changes"]
    assert change["reapproval"] is True and change["superseded_approvals"] == ["system"]

    order = await post_ok(api, f"/orders/{order['order_no']}/approve", SUPERVISOR)
    assert order["status"] == "PENDING_APPROVAL" and order["approval"]["awaiting_level"] == 2
    order = await post_ok(
        api, f"/orders/{order['order_no']}/approve", {"approver": "mgr.he", "role": "approver_l2"}
    )
    assert order["status"] == "READY_TO_SHIP"
    assert order["changes"][0]["approved_by"] == ["sup.xu", "mgr.he"]
    assert order["lines"][0]["reserved_quantity"] == 15


async def test_a_delivery_date_is_in_the_past_by_the_companys_calendar(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """From 00:00 to 08:00 in Shanghai, UTC's date is still the company's yesterday: that
    date is past for the company, whatever the workflow's clock says."""
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    response = await api.patch(
        f"/orders/{order['order_no']}", json=WHO | {"requested_delivery_date": yesterday}
    )
    assert response.status_code == 422 and error_fields(response) == {"requested_delivery_date"}
    order = await patch_ok(api, order["order_no"], {"requested_delivery_date": today.isoformat()})
    assert order["requested_delivery_date"] == today.isoformat()
