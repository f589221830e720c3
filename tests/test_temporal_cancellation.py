"""A cancellation requested in Temporal (the UI's "Request Cancellation", `temporal workflow
cancel`) is the business's: the saga undoes every step, as `POST /orders/{no}/cancel` does."""

from __future__ import annotations

import httpx
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus

from store.db import Database
from store.tables import AuditEntry
from tests.helpers import Factory, eventually, post_ok, submit_ok
from tests.scenarios import cancelled_in_temporal
from tests.test_cancellation import assert_nothing_left, ledger


async def test_a_temporal_cancellation_undoes_a_paid_order_ready_to_ship(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    db: Database,
    temporal_client: Client,
) -> None:
    workflow_id = await cancelled_in_temporal(api, new_customer, new_product, temporal_client)
    handle = temporal_client.get_workflow_handle(workflow_id)
    # The run completes with the cancelled order: its number stays taken.
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    order = (await api.get(f"/orders/{workflow_id.removeprefix('order-')}")).json()
    assert order["status"] == "CANCELLED" and order["closed"]
    assert order["cancellation"]["reason_code"] == "cancelled_in_temporal"
    assert (order["cancellation"]["by"], order["cancellation"]["comment"]) == (
        "temporal",
        "duplicate, per ops",
    )
    sku = order["lines"][0]["sku"]
    after = await ledger(db, order["order_no"], sku)
    assert_nothing_left(after, 10)
    assert after.shipments == ["cancelled"] and after.invoices == ["credited"]
    assert (after.payments, after.refunds, after.credit_notes) == (1, 1, 1)
    assert (await api.get(f"/products/{sku}")).json()["available"] == 10
    events = [e["event"] for e in order["timeline"]]
    assert events.index("cancellation_requested") < events.index("shipments_cancelled")
    assert events[-2:] == ["order_cancelled", "order_archived"]


async def test_a_temporal_cancellation_while_pending_approval(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, temporal_client: Client
) -> None:
    customer, product = await new_customer(), await new_product(stock_on_hand=10)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 2, "unit_price": 50}],
    )
    assert order["status"] == "PENDING_APPROVAL"
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    await handle.cancel()
    final = await handle.result()
    assert final["status"] == "CANCELLED"
    assert final["cancellation"]["reason_code"] == "cancelled_in_temporal"
    assert final["cancellation"]["comment"] is None  # the request gave no reason
    decision = {"approver": "sup.zhang", "role": "approver_l1"}
    response = await api.post(f"/orders/{order['order_no']}/approve", json=decision)
    assert response.status_code == 409, response.text
    assert (await api.get(f"/products/{product['sku']}")).json()["available"] == 10


async def test_a_temporal_cancellation_after_dispatch_is_refused_and_the_order_completes(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    db: Database,
    temporal_client: Client,
) -> None:
    customer, product = await new_customer(), await new_product(unit_price=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 3}]
    )
    order_no, shipment = order["order_no"], order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "1"})
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    await handle.cancel(reason="wrong button")

    async def refused() -> None:
        view = (await api.get(f"/orders/{order_no}")).json()
        (entry,) = [e for e in view["timeline"] if e["event"] == "cancellation_refused"]
        assert entry["actor"] == "temporal" and entry["status"] == "SHIPPED"
        assert entry["detail"].startswith("wrong button; Goods of order")
        assert view["status"] == "SHIPPED" and view["cancellation"] is None

    await eventually(refused)

    async def audited() -> None:
        async with db.reader() as session:
            entries = (
                await session.exec(
                    select(AuditEntry).where(
                        col(AuditEntry.order_no) == order_no,
                        col(AuditEntry.action) == "cancellation_refused",
                    )
                )
            ).all()
        assert [(a.actor, a.outcome) for a in entries] == [("temporal", "refused:409")]

    await eventually(audited)

    await post_ok(api, f"/shipments/{shipment}/deliver", {"signed_by": "Wang"})
    done = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 30, "method": "bank", "reference": "P"}
    )
    assert done["status"] == "COMPLETED"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
