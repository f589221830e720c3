"""Where `GET /orders/{order_no}` reads an order: live from its workflow while it runs, from the
read model once it has ended; and its log lines name the order and its workflow."""

from __future__ import annotations

from typing import Any

import httpx
from temporalio.client import Client

from domain.orders import OrderView
from store.db import Database
from store.tables import OrderRecord
from tests.helpers import Factory, eventually, post_ok, submit_ok
from tests.test_logging import json_logs  # noqa: F401  (the JSON log pipeline fixture)
from workflows.order import OrderWorkflow


async def overwrite_stored_view(db: Database, order_no: str, **fields: Any) -> None:
    """Change the read model's copy of the order behind the workflow's back."""
    async with db.writer() as session:
        record = await session.get(OrderRecord, order_no)
        assert record is not None
        record.view = {**record.view, **fields}  # a new dict: the JSON column sees the change
        session.add(record)


async def test_an_open_order_is_read_live_and_a_closed_one_from_the_read_model(
    api: httpx.AsyncClient,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",  # waits for a supervisor: nothing writes its read model meanwhile
    )
    order_no = order["order_no"]
    assert order["status"] == "PENDING_APPROVAL"
    # A stale (here: false) copy in the read model; the workflow knows better.
    await overwrite_stored_view(
        db,
        order_no,
        status="REJECTED",
        status_label={"en": "Rejected", "zh": "已拒绝"},
        customer_name="stale read model",
    )

    response = await api.get(f"/orders/{order_no}")
    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["status"], shown["customer_name"]) == ("PENDING_APPROVAL", "Test customer")
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    live = await handle.query(OrderWorkflow.view)
    assert shown == live.model_dump(mode="json")

    # Once the order has ended, the read model is the record (its workflow is not asked).
    rejected = await post_ok(
        api,
        f"/orders/{order_no}/reject",
        {"approver": "sup.view", "role": "approver_l1", "reason": "no capacity"},
    )
    assert rejected["status"] == "REJECTED"
    await handle.result()

    async def archived() -> None:
        async with db.reader() as session:
            record = await session.get(OrderRecord, order_no, populate_existing=True)
            assert record is not None and record.closed

    await eventually(archived)
    await overwrite_stored_view(db, order_no, customer_name="archived copy")
    shown = (await api.get(f"/orders/{order_no}")).json()
    assert (shown["status"], shown["closed"], shown["customer_name"]) == (
        "REJECTED",
        True,
        "archived copy",
    )
    ended: OrderView = await handle.query(OrderWorkflow.view)
    assert ended.customer_name == "Test customer"  # the workflow would have said otherwise


async def test_reading_an_order_logs_its_number_and_workflow(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    json_logs: Any,  # noqa: F811
) -> None:
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no, workflow_id = order["order_no"], order["workflow_id"]
    assert (await api.get(f"/orders/{order_no}")).status_code == 200
    (line,) = [
        line
        for line in json_logs()
        if line["event"] == "request_handled" and line.get("path") == f"/orders/{order_no}"
    ]
    assert (line["order_no"], line["workflow_id"]) == (order_no, workflow_id)
