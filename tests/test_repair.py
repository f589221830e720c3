"""Repairing an order whose workflow someone terminated: what the order held is undone from
the database's records, once, and only for a run that ended from outside."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from api.routes.repairs import refusal
from settings import Settings
from store import audit, migrate, queries
from store.db import Database
from tests.conftest import create_customer, create_product
from tests.helpers import Factory, api_for, eventually, post_ok, postgres_schema, submit_ok
from tests.test_cancellation import CANCEL, ledger
from worker import build_worker

REPAIR = {"reason": "order-SO terminated by mistake in the Temporal UI (ticket OPS-12)"}

Stage = Callable[[httpx.AsyncClient, Factory, Factory], Awaitable[tuple[dict[str, Any], str]]]


async def ready_to_ship(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str]:
    customer, product = await customers(), await products(stock_on_hand=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )
    assert order["status"] == "READY_TO_SHIP"
    assert [s["status"] for s in order["shipments"]] == ["ready"]
    return order, product["sku"]


async def prepaid_unpaid(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str]:
    customer = await customers(payment_terms="prepaid")
    product = await products(stock_on_hand=10, unit_price=100)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    assert order["status"] == "AWAITING_PAYMENT"
    assert [i["status"] for i in order["invoices"]] == ["issued"]
    return order, product["sku"]


async def prepaid_part_paid(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str]:
    order, sku = await prepaid_unpaid(api, customers, products)
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 120, "method": "bank", "reference": "P1"},
    )
    assert order["status"] == "AWAITING_PAYMENT"
    return order, sku


async def in_production(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str]:
    customer, product = await customers(), await products(stock_on_hand=3)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 8}]
    )
    assert order["status"] == "IN_PRODUCTION"
    return order, product["sku"]


async def terminated(
    temporal_client: Client, db: Database, order: dict[str, Any]
) -> WorkflowExecutionStatus:
    """The order's run terminated, once its read model shows where it stood."""

    async def saved() -> None:
        keys = await queries.order_keys(db, order["order_no"])
        assert keys is not None and keys.status == order["status"]

    await eventually(saved)
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    await handle.terminate(reason="test: someone pressed Terminate")
    status = (await handle.describe()).status
    assert status is WorkflowExecutionStatus.TERMINATED
    return status


@pytest.mark.parametrize("stage", [ready_to_ship, prepaid_unpaid, prepaid_part_paid, in_production])
async def test_a_terminated_order_is_repaired_once(
    api: httpx.AsyncClient,
    temporal_client: Client,
    db: Database,
    new_customer: Factory,
    new_product: Factory,
    stage: Stage,
) -> None:
    order, sku = await stage(api, new_customer, new_product)
    order_no = order["order_no"]
    before = await ledger(db, order_no, sku)
    await terminated(temporal_client, db, order)
    # A terminated run leaves everything where it stood, and every command is refused.
    assert await ledger(db, order_no, sku) == before
    assert (await api.post(f"/orders/{order_no}/cancel", json=CANCEL)).status_code == 409

    repaired = await post_ok(api, f"/orders/{order_no}/repair", REPAIR)

    after = await ledger(db, order_no, sku)
    assert after.reserved == 0 and after.active_reservations == 0
    assert after.stock_on_hand == before.stock_on_hand
    assert "ready" not in after.shipments and "planned" not in after.production
    paid = before.paid > 0
    # Money is finance's: nothing refunded, a part-paid invoice left open and reported.
    assert (after.paid, after.refunded, after.refunds) == (before.paid, Decimal(0), 0)
    assert after.invoices == (["issued"] if paid else ["void"] * len(before.invoices))
    assert repaired["run_status"] == "TERMINATED"
    assert (repaired["status"], repaired["reason_code"]) == ("CANCELLED", "terminated_repaired")
    assert repaired["repaired_by"] == "ops" and repaired["reason"] == REPAIR["reason"]
    assert repaired["reservations_released"] == (
        [f"{sku}x{before.reserved}"] if before.reserved else []
    )
    assert repaired["shipments_withdrawn"] == [s["id"] for s in order["shipments"]]
    assert repaired["production_orders_cancelled"] == [p["id"] for p in order["production_orders"]]
    assert repaired["invoices_voided"] == ([] if paid else [i["id"] for i in order["invoices"]])
    assert repaired["invoices_left_open"] == ([order["invoices"][0]["id"]] if paid else [])
    assert Decimal(str(repaired["paid"])) == before.paid
    assert len(repaired["payments"]) == before.payments and repaired["shipments_shipped"] == []

    shown = (await api.get(f"/orders/{order_no}")).json()
    assert (shown["status"], shown["closed"]) == ("CANCELLED", True)
    assert shown["cancellation"]["reason_code"] == "terminated_repaired"
    assert shown["cancellation"]["by"] == "ops"
    assert shown["cancellation"]["comment"] == REPAIR["reason"]
    assert shown["timeline"][-1]["event"] == "order_repaired"
    assert all(line["reserved_quantity"] == 0 for line in shown["lines"])
    assert "ready" not in [s["status"] for s in shown["shipments"]]
    listed = (await api.get("/orders", params={"customer_id": order["customer_id"]})).json()
    assert [o["status"] for o in listed["items"]] == ["CANCELLED"]

    entries = (await api.get("/audit", params={"order_no": order_no})).json()
    repairs = [e for e in entries if e["action"] == "order_repaired"]
    assert len(repairs) == 1
    assert (repairs[0]["actor"], repairs[0]["role"]) == ("ops", "ops")
    assert repairs[0]["detail"]["reason"] == REPAIR["reason"]
    assert repairs[0]["detail"]["reservations_released"] == repaired["reservations_released"]
    assert (await audit.verify(db)).ok  # the chain still verifies

    # Again: nothing more is undone, the answer is the same, and the record has one repair.
    again = await post_ok(api, f"/orders/{order_no}/repair", REPAIR | {"reason": "again"})
    assert again == repaired
    assert await ledger(db, order_no, sku) == after
    entries = (await api.get("/audit", params={"order_no": order_no})).json()
    assert [e["action"] for e in entries].count("order_repaired") == 1


async def test_only_a_run_ended_from_outside_is_repaired(
    api: httpx.AsyncClient, db: Database, new_customer: Factory, new_product: Factory
) -> None:
    running, sku = await ready_to_ship(api, new_customer, new_product)
    before = await ledger(db, running["order_no"], sku)
    response = await api.post(f"/orders/{running['order_no']}/repair", json=REPAIR)
    assert response.status_code == 409, response.text
    assert "running" in response.json()["detail"] and "/cancel" in response.json()["detail"]
    assert await ledger(db, running["order_no"], sku) == before

    cancelled = await post_ok(api, f"/orders/{running['order_no']}/cancel", CANCEL)
    assert cancelled["status"] == "CANCELLED"
    response = await api.post(f"/orders/{running['order_no']}/repair", json=REPAIR)
    assert response.status_code == 409, response.text
    assert "completed" in response.json()["detail"]
    shown = (await api.get(f"/orders/{running['order_no']}")).json()
    assert shown["cancellation"]["reason_code"] == "customer_request"

    assert (await api.post("/orders/SO-NOPE/repair", json=REPAIR)).status_code == 404
    assert (await api.post("/orders/SO-NOPE/repair", json={})).status_code == 422
    entries = (await api.get("/audit", params={"order_no": running["order_no"]})).json()
    refused = [e for e in entries if e["action"] == "command:repair"]
    assert [e["outcome"] for e in refused] == ["refused:409", "refused:409"]


async def test_only_ops_may_repair(api: httpx.AsyncClient) -> None:
    # `by` signs the request in as that person, with a role that is not ops (tests/auth.py).
    response = await api.post("/orders/SO-ANY/repair", json=REPAIR | {"by": "sales.li"})
    assert response.status_code == 403, response.text
    assert response.json()["permission"] == "orders:repair"


def test_which_run_endings_need_repair() -> None:
    needs = {status for status in WorkflowExecutionStatus if refusal(status) is None}
    assert needs == {
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.CANCELED,
    }
    assert refusal(None) is not None


@pytest.fixture
async def pg_api(
    settings: Settings, temporal_client: Client
) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    """An API and a worker of their own with the read model on PostgreSQL, as in production,
    and the database they share."""
    with postgres_schema("orders_repair") as (url, _):
        own = settings.model_copy(
            update={"database_url": url, "task_queue": f"pg-{uuid.uuid4().hex[:6]}"}
        )
        await migrate.upgrade(url)
        db = Database(url, audit_seal=own.audit_seal())
        try:
            async with api_for(own) as api, build_worker(temporal_client, db, own):
                yield api, db
        finally:
            await db.dispose()


async def test_on_postgresql_shipped_goods_stay_billed_and_two_repairs_are_one(
    pg_api: tuple[httpx.AsyncClient, Database], temporal_client: Client
) -> None:
    api, db = pg_api
    customer, product = await create_customer(api), await create_product(api, stock_on_hand=10)
    lines = [{"sku": product["sku"], "quantity": 3}]
    order = await submit_ok(api, customer_id=customer["customer_id"], lines=lines)
    shipped = await post_ok(
        api,
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "T1"},
    )
    assert shipped["status"] == "SHIPPED" and shipped["invoices"][0]["status"] == "issued"
    await terminated(temporal_client, db, shipped)
    # Two people press repair at once: one repair, one answer.
    first, second = await asyncio.gather(
        post_ok(api, f"/orders/{order['order_no']}/repair", REPAIR),
        post_ok(api, f"/orders/{order['order_no']}/repair", REPAIR),
    )
    assert first == second
    assert first["shipments_shipped"] == [order["shipments"][0]["id"]]
    # The invoice bills goods the customer has: it stays, for finance, and so does the stock.
    assert first["invoices_voided"] == [] and first["reservations_released"] == []
    assert first["invoices_left_open"] == [shipped["invoices"][0]["id"]]
    after = await ledger(db, order["order_no"], product["sku"])
    assert (after.shipments, after.invoices) == (["dispatched"], ["issued"])
    assert (after.stock_on_hand, after.reserved) == (7, 0)
    entries = (await api.get("/audit", params={"order_no": order["order_no"]})).json()
    assert [e["action"] for e in entries].count("order_repaired") == 1
    assert (await api.get(f"/orders/{order['order_no']}")).json()["status"] == "CANCELLED"
