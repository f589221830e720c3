"""Orders end to end through the API, on the real stack."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import select
from temporalio import workflow
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributeKey

from domain.contract import (
    CUSTOMER_ID_ATTRIBUTE,
    ORDER_STATUS_ATTRIBUTE,
    ORDER_WORKFLOW,
    RETURN_WORKFLOW,
    VIEW_QUERY,
    OrderUpdate,
    ReturnUpdate,
)
from domain.orders import OrderView
from settings import Settings
from store.db import Database
from store.tables import AuditEntry
from tests.conftest import unique
from tests.helpers import (
    Factory,
    api_for,
    error_fields,
    eventually,
    post_ok,
    submit,
    submit_ok,
)
from worker import build_worker
from workflows import search_attributes as sa
from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow


@pytest.mark.parametrize(
    ("workflow_class", "name", "updates"),
    [(OrderWorkflow, ORDER_WORKFLOW, OrderUpdate), (ReturnWorkflow, RETURN_WORKFLOW, ReturnUpdate)],
)
def test_the_api_sends_each_update_by_a_name_the_workflow_registers(
    workflow_class: type, name: str, updates: type[StrEnum]
) -> None:
    """The API starts, queries and commands workflows by the names in `domain.contract` (it
    imports no workflow code): each must be one the workflow registers, and every update the
    workflow has must be one the API can send."""
    definition = workflow._Definition.must_from_class(workflow_class)
    assert definition.name == name
    assert set(definition.updates) == {update.value for update in updates}
    assert VIEW_QUERY in definition.queries


def test_the_api_starts_orders_with_the_workers_search_attributes() -> None:
    assert SearchAttributeKey.for_keyword(ORDER_STATUS_ATTRIBUTE) == sa.ORDER_STATUS
    assert SearchAttributeKey.for_keyword(CUSTOMER_ID_ATTRIBUTE) == sa.CUSTOMER_ID


async def test_auto_approved_credit_order_runs_to_completion(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, temporal_client: Client
) -> None:
    customer = await new_customer(payment_terms="net_30")
    product = await new_product(unit_price=120, stock_on_hand=50)
    response = await submit(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert response.headers["location"] == f"/orders/{order['order_no']}"
    assert order["status"] == "READY_TO_SHIP"
    assert order["total"] == 1200
    assert order["approvals"][0]["approver"] == "system"
    shipment_id = order["shipments"][0]["id"]

    response = await api.post(
        f"/shipments/{shipment_id}/dispatch", json={"carrier": "SF", "tracking_no": "SF123"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    order = response.json()
    assert order["status"] == "SHIPPED"
    assert order["invoices"][0]["amount"] == 1200
    # The workflow's answer passes through as it was written: the same as the API's own JSON.
    assert OrderView.model_validate_json(response.content).model_dump(mode="json") == order

    response = await api.post(f"/shipments/{shipment_id}/deliver", json={"signed_by": "Wang"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "DELIVERED"

    order_no = order["order_no"]
    payment = {"amount": 1200, "method": "bank_transfer", "reference": "B1"}
    key = {"Idempotency-Key": f"pay-{order_no}"}
    response = await api.post(f"/orders/{order_no}/payments", json=payment, headers=key)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "COMPLETED"

    await temporal_client.get_workflow_handle(order["workflow_id"]).result()  # archived
    response = await api.get(f"/orders/{order_no}")
    assert response.status_code == 200
    assert response.json()["status"] == "COMPLETED"
    assert response.json()["closed"] is True
    # The payment closed the order; its answer lost, the client retries under the same key
    # and gets that answer, once; any other command is refused.
    retry = await api.post(f"/orders/{order_no}/payments", json=payment, headers=key)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "COMPLETED" and len(retry.json()["payments"]) == 1
    other = await api.post(
        f"/orders/{order_no}/payments",
        json=payment | {"reference": "B2"},
        headers={"Idempotency-Key": f"pay-again-{order_no}"},
    )
    assert other.status_code == 409, other.text


# --- 1. entry: validation, idempotent resubmission, malformed bodies --------------------------


async def test_entry_validation_lists_every_problem_and_keeps_the_number_free(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    db: Database,
    temporal_client: Client,
) -> None:
    customer = await new_customer(active=False)
    product = await new_product()
    order_no = unique("SO")
    response = await submit(
        api,
        order_no=order_no,
        customer_id=customer["customer_id"],
        lines=[
            {"sku": "NO-SUCH-SKU", "quantity": 1},
            {"sku": product["sku"], "quantity": 0},
            {"sku": product["sku"], "quantity": 2, "unit_price": -5},
        ],
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert error_fields(response) == {
        "customer_id",
        "lines[0].sku",
        "lines[1].quantity",
        "lines[2].unit_price",
    }
    # Not a live order: nothing to read, nothing listed, but the attempt is audited.
    assert (await api.get(f"/orders/{order_no}")).status_code == 404
    async with db.reader() as session:
        entries = (
            await session.exec(select(AuditEntry).where(AuditEntry.order_no == order_no))
        ).all()
    # The workflow's record of the refused entry, and the API's record of the command.
    assert [(e.action, e.outcome) for e in entries] == [
        ("submit_order", "invalid"),
        ("command:submit", "refused:422"),
    ]
    command = entries[1]
    assert (command.actor, command.role, command.source) == ("sales.li", "sales", "token@127.0.0.1")
    # A refused entry is a business outcome, not a failure on ops' screen: its run completed.
    handle = temporal_client.get_workflow_handle(f"order-{order_no}")
    refused = await handle.describe()
    assert refused.status == WorkflowExecutionStatus.COMPLETED
    assert (await handle.result())["status"] == "INVALID"

    # The same number, corrected, is a new order (a run of its own).
    active = await new_customer()
    order = await submit_ok(
        api,
        order_no=order_no,
        customer_id=active["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 2}],
    )
    assert order["status"] == "READY_TO_SHIP"
    assert (await handle.describe()).run_id != refused.run_id

    async def runs() -> None:
        listed = temporal_client.list_workflows(f"WorkflowId = 'order-{order_no}'")
        statuses = sorted([str(w.status) async for w in listed])
        assert statuses == sorted(
            str(s) for s in (WorkflowExecutionStatus.COMPLETED, WorkflowExecutionStatus.RUNNING)
        )

    await eventually(runs)


async def test_an_unknown_customer_is_a_422_naming_the_field(
    api: httpx.AsyncClient, new_product: Factory
) -> None:
    product = await new_product()
    order_no = unique("SO")
    response = await submit(
        api,
        order_no=order_no,
        customer_id=unique("C-NOBODY"),
        lines=[{"sku": product["sku"], "quantity": 1}],
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"customer_id"}
    (problem,) = response.json()["errors"]
    assert "customer" in problem["message"].lower()
    assert (await api.get(f"/orders/{order_no}")).status_code == 404


async def test_resubmitting_the_same_order_returns_it_and_different_content_conflicts(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=100)
    body = {
        "order_no": unique("SO"),
        "customer_id": customer["customer_id"],
        "lines": [{"sku": product["sku"], "quantity": 3}],
        "entered_by": "sales.li",
    }
    first = await api.post("/orders", json=body)
    assert first.status_code == 201, first.text
    again = await api.post("/orders", json=body)
    assert again.status_code == 200, again.text
    assert again.json()["order_no"] == body["order_no"]
    assert again.json()["shipments"] == first.json()["shipments"]
    changed = await api.post(
        "/orders", json=body | {"lines": [{"sku": product["sku"], "quantity": 4}]}
    )
    assert changed.status_code == 409, changed.text
    # Only three units were ever reserved: there is one order, not two.
    assert (await api.get(f"/products/{product['sku']}")).json()["reserved"] == 3

    # After the order has ended, the same holds (answered from the archive).
    shipment_id = first.json()["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"})
    await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Zhao"})
    await post_ok(
        api,
        f"/orders/{body['order_no']}/payments",
        {"amount": 300, "method": "cash", "reference": "R1"},
    )
    closed = await api.post("/orders", json=body)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "COMPLETED"
    assert (await api.post("/orders", json=body | {"notes": "different"})).status_code == 409


async def test_order_number_is_generated_when_absent(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product()
    response = await api.post(
        "/orders",
        json={
            "customer_id": customer["customer_id"],
            "lines": [{"sku": product["sku"], "quantity": 1}],
            "entered_by": "x",
        },
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["order_no"].startswith("SO-")
    assert order["workflow_id"] == f"order-{order['order_no']}"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"customer_id", "lines"}),
        ({"customer_id": "C", "lines": [], "entered_by": "x"}, {"lines"}),
        (
            {"customer_id": "C", "lines": [{"sku": "A", "quantity": "many"}], "entered_by": "x"},
            {"lines[0].quantity"},
        ),
        (
            {
                "customer_id": "C",
                "lines": [{"sku": "A", "quantity": 1}],
                "entered_by": "x",
                "priority": "asap",
            },
            {"priority"},
        ),
        (
            {
                "customer_id": "C",
                "lines": [{"sku": "A", "quantity": 1}],
                "entered_by": "x",
                "payment_terms": "later",
            },
            {"payment_terms"},
        ),
        (
            {
                "customer_id": "C",
                "lines": [{"sku": "A", "quantity": 1}],
                "entered_by": "x",
                "order_no": "has space",
            },
            {"order_no"},
        ),
        (
            {
                "customer_id": "C",
                "lines": [{"sku": "A", "quantity": 1}],
                "entered_by": "x",
                "requested_delivery_date": "soon",
            },
            {"requested_delivery_date"},
        ),
        (
            {
                "customer_id": "C",
                "lines": [{"sku": "A", "quantity": 1}],
                "entered_by": "x",
                "surprise": 1,
            },
            {"surprise"},
        ),
    ],
)
async def test_malformed_orders_get_field_level_422(
    api: httpx.AsyncClient, body: dict[str, Any], fields: set[str]
) -> None:
    response = await api.post("/orders", json=body)
    assert response.status_code == 422, response.text
    assert fields <= error_fields(response)


# --- 2 and 3. approval rules and decisions ----------------------------------------------------


async def test_two_level_approval_supervisor_then_manager(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(unit_price=1000, stock_on_hand=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 250}]
    )
    order_no = order["order_no"]
    assert order["status"] == "PENDING_APPROVAL"
    assert order["status_label"] == {"en": "Pending approval", "zh": "待审核"}
    assert order["approval"]["required_levels"] == 2
    assert [r["code"] for r in order["approval"]["reasons"]] == ["total_above_two_level_limit"]
    # Nothing is reserved before approval.
    assert (await api.get(f"/products/{product['sku']}")).json()["reserved"] == 0

    # Separation of duties: whoever entered the order cannot decide it.
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "sales.li", "role": "approver_l1"}
    )
    assert response.status_code == 403, response.text
    decision = {"approver": "sup.zhang", "role": "approver_l1", "comment": "ok"}
    key = {"Idempotency-Key": f"approve-{order_no}"}
    first = await api.post(f"/orders/{order_no}/approve", json=decision, headers=key)
    assert first.status_code == 200, first.text
    # A retry with the same key gets the same answer and decides nothing twice.
    retry = await api.post(f"/orders/{order_no}/approve", json=decision, headers=key)
    assert retry.status_code == 200, retry.text
    order = retry.json()
    assert len(order["approvals"]) == 1
    assert order["status"] == "PENDING_APPROVAL"
    assert order["approval"]["awaiting_level"] == 2
    # A supervisor lacks the second level; the same person cannot approve twice.
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "sup.wu", "role": "approver_l1"}
    )
    assert response.status_code == 403, response.text
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "sup.zhang", "role": "approver_l2"}
    )
    assert response.status_code == 403, response.text
    order = await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": "mgr.chen", "role": "approver_l2"}
    )
    assert order["status"] == "READY_TO_SHIP"
    decisions = [(d["level"], d["approver"], d["role"], d["decision"]) for d in order["approvals"]]
    assert decisions == [
        (1, "sup.zhang", "approver_l1", "approved"),
        (2, "mgr.chen", "approver_l2", "approved"),
    ]
    assert order["approvals"][0]["comment"] == "ok" and order["approvals"][0]["at"]
    # No longer awaiting a decision.
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "mgr.x", "role": "approver_l2"}
    )
    assert response.status_code == 409, response.text


@pytest.mark.parametrize(
    ("order_fields", "line_fields", "codes", "levels"),
    [
        ({}, {"quantity": 600}, ["total_above_auto_approval_limit"], 1),
        ({}, {"quantity": 1, "unit_price": 85}, ["discount_beyond_limit"], 1),
        ({"priority": "rush"}, {"quantity": 1}, ["rush_priority"], 1),
        ({"credit_limit": 50}, {"quantity": 1}, ["credit_limit_exceeded"], 2),
        ({"payment_terms": "net_90"}, {"quantity": 1}, ["non_standard_terms"], 1),
    ],
)
async def test_special_orders_wait_for_approval_with_their_reasons(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    order_fields: dict[str, Any],
    line_fields: dict[str, Any],
    codes: list[str],
    levels: int,
) -> None:
    customer = await new_customer(credit_limit=order_fields.pop("credit_limit", 1_000_000))
    product = await new_product(unit_price=100, stock_on_hand=1000)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"]} | line_fields],
        **order_fields,
    )
    assert order["status"] == "PENDING_APPROVAL"
    assert [r["code"] for r in order["approval"]["reasons"]] == codes
    assert order["approval"]["required_levels"] == levels
    assert order["waiting_for"].startswith("approval by level 1")


async def test_small_discount_within_limit_is_approved_automatically(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 2, "unit_price": 95}],
    )
    assert order["status"] == "READY_TO_SHIP"
    assert order["total"] == 190
    assert order["lines"][0]["discount_pct"] == 5


async def test_rejection_ends_the_order(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",
    )
    order_no = order["order_no"]
    response = await api.post(
        f"/orders/{order_no}/reject", json={"approver": "sup.zhang", "role": "approver_l1"}
    )
    assert response.status_code == 422 and "reason" in error_fields(response)
    order = await post_ok(
        api,
        f"/orders/{order_no}/reject",
        {"approver": "sup.zhang", "role": "approver_l1", "reason": "no rush capacity"},
    )
    assert order["status"] == "REJECTED"
    assert order["approvals"][-1]["decision"] == "rejected"
    assert order["approvals"][-1]["comment"] == "no rush capacity"
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "mgr.chen", "role": "approver_l2"}
    )
    assert response.status_code == 409, response.text
    archived = (await api.get(f"/orders/{order_no}")).json()
    assert archived["status"] == "REJECTED" and archived["closed"] is True


async def test_rejection_is_refused_to_the_author_below_the_level_and_when_not_pending(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(unit_price=1000, stock_on_hand=1000)
    author = unique("rep")
    order = await submit_ok(
        api,
        entered_by=author,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 250}],  # above the two-level limit
    )
    order_no = order["order_no"]
    assert order["approval"]["required_levels"] == 2
    url = f"/orders/{order_no}/reject"
    # Whoever entered the order cannot reject it, even holding an approver's role.
    response = await api.post(url, json={"approver": author, "role": "approver_l1", "reason": "x"})
    assert response.status_code == 403, response.text
    assert "separation of duties" in response.json()["detail"]
    supervisor = unique("sup")
    await post_ok(
        api, f"/orders/{order_no}/approve", {"approver": supervisor, "role": "approver_l1"}
    )
    # Level 2 is awaited: another supervisor lacks the level; the level-1 approver cannot
    # decide again, even as a manager.
    response = await api.post(
        url, json={"approver": unique("sup"), "role": "approver_l1", "reason": "x"}
    )
    assert response.status_code == 403, response.text
    assert "level 2 (manager)" in response.json()["detail"]
    response = await api.post(
        url, json={"approver": supervisor, "role": "approver_l2", "reason": "x"}
    )
    assert response.status_code == 403, response.text
    refused = (await api.get(f"/orders/{order_no}")).json()
    assert refused["status"] == "PENDING_APPROVAL" and len(refused["approvals"]) == 1
    manager = unique("mgr")
    rejected = await post_ok(
        api, url, {"approver": manager, "role": "approver_l2", "reason": "too big"}
    )
    assert rejected["status"] == "REJECTED"
    # Not pending approval: an order already rejected, and one approved automatically.
    response = await api.post(
        url, json={"approver": unique("mgr"), "role": "approver_l2", "reason": "x"}
    )
    assert response.status_code == 409, response.text
    auto = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    assert auto["status"] == "READY_TO_SHIP"
    response = await api.post(
        f"/orders/{auto['order_no']}/reject",
        json={"approver": unique("sup"), "role": "approver_l1", "reason": "x"},
    )
    assert response.status_code == 409, response.text
    assert response.json()["detail"].endswith("not awaiting an approval decision")


async def test_approval_limits_from_settings_reach_the_worker(
    api: httpx.AsyncClient,
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    """A worker configured with its own limits (AUTO_APPROVAL_LIMIT, TWO_LEVEL_LIMIT) applies
    them: an order just above its auto-approval limit waits for a supervisor."""
    own = settings.model_copy(
        update={
            "task_queue": f"limits-{uuid.uuid4().hex[:6]}",
            "auto_approval_limit": Decimal(1000),
            "two_level_limit": Decimal(5000),
        }
    )
    customer = await new_customer(credit_limit=1_000_000)
    product = await new_product(unit_price=100, stock_on_hand=1000)
    cid, sku = customer["customer_id"], product["sku"]
    async with api_for(own) as own_api, build_worker(temporal_client, db, own):
        at_limit = await submit_ok(own_api, customer_id=cid, lines=[{"sku": sku, "quantity": 10}])
        above = await submit_ok(own_api, customer_id=cid, lines=[{"sku": sku, "quantity": 11}])
        two_level = await submit_ok(own_api, customer_id=cid, lines=[{"sku": sku, "quantity": 51}])
    assert (at_limit["total"], at_limit["status"]) == (1000, "READY_TO_SHIP")
    assert (above["total"], above["status"]) == (1100, "PENDING_APPROVAL")
    (reason,) = above["approval"]["reasons"]
    assert reason["code"] == "total_above_auto_approval_limit"
    assert "auto-approval limit 1000" in reason["message"]
    assert above["approval"]["required_levels"] == 1
    assert [r["code"] for r in two_level["approval"]["reasons"]] == ["total_above_two_level_limit"]
    assert two_level["approval"]["required_levels"] == 2
    # The session's worker keeps the default limit (50,000): the same order goes straight on.
    default = await submit_ok(api, customer_id=cid, lines=[{"sku": sku, "quantity": 11}])
    assert (default["total"], default["status"]) == (1100, "READY_TO_SHIP")


async def test_decisions_on_unknown_or_unready_orders(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    response = await api.post(
        "/orders/NOPE-1/approve", json={"approver": "a", "role": "approver_l1"}
    )
    assert response.status_code == 404
    # Not an approver's role: 403 naming the permission (before looking for the order).
    response = await api.post("/orders/NOPE-1/approve", json={"approver": "w", "role": "warehouse"})
    assert response.status_code == 403 and response.json()["permission"] == "orders:approve"
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    response = await api.post(
        f"/orders/{order['order_no']}/approve", json={"approver": "a", "role": "approver_l1"}
    )
    assert response.status_code == 409
    assert response.json()["detail"].endswith("not awaiting an approval decision")


# --- 4. stock and production --------------------------------------------------------------


async def test_shortage_goes_through_production(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=4, lead_time_days=7)
    sku = product["sku"]
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 10}]
    )
    assert order["status"] == "IN_PRODUCTION"
    assert order["status_label"]["zh"] == "生产中"
    assert order["lines"][0]["reserved_quantity"] == 4
    (po,) = order["production_orders"]
    assert (po["quantity"], po["status"]) == (6, "planned")
    # Due after the lead time in working days of the company calendar.
    working = await api.get(
        "/calendar/working-time",
        params={"start": order["production_orders"][0]["created_at"], "duration": "P7D"},
    )
    assert po["due_date"] == working.json()["end"][:10]
    assert (await api.get(f"/products/{sku}")).json()["available"] == 0

    planned = (
        await api.get("/production-orders", params={"status": "planned", "limit": 200})
    ).json()
    assert po["id"] in {p["id"] for p in planned}

    order = await post_ok(api, f"/production-orders/{po['id']}/complete", {"produced_quantity": 2})
    assert order["status"] == "IN_PRODUCTION"
    assert order["lines"][0]["reserved_quantity"] == 6
    # Part of it produced: the plant's list says so, and still counts it as open.
    assert order["production_orders"][0]["status"] == "partially_completed"
    row = (await api.get(f"/production-orders/{po['id']}")).json()
    assert (row["status"], row["produced_quantity"]) == ("partially_completed", 2)

    async def listed(status: str) -> set[str]:
        page = await api.get("/production-orders", params={"status": status, "limit": 200})
        return {p["id"] for p in page.json()}

    assert po["id"] in await listed("open") and po["id"] in await listed("partially_completed")
    assert po["id"] not in await listed("planned")
    # Reports are cumulative: a repeated report adds nothing; going backwards is refused.
    order = await post_ok(api, f"/production-orders/{po['id']}/complete", {"produced_quantity": 2})
    assert order["lines"][0]["reserved_quantity"] == 6
    response = await api.post(
        f"/production-orders/{po['id']}/complete", json={"produced_quantity": 1}
    )
    assert response.status_code == 422, response.text

    order = await post_ok(api, f"/production-orders/{po['id']}/complete")
    assert order["status"] == "READY_TO_SHIP"
    assert order["lines"][0]["reserved_quantity"] == 10
    assert order["lines"][0]["produced_quantity"] == 6
    assert order["production_orders"][0]["status"] == "completed"
    stock = (await api.get(f"/products/{sku}")).json()
    assert (stock["stock_on_hand"], stock["reserved"], stock["available"]) == (10, 10, 0)
    response = await api.post(f"/production-orders/{po['id']}/complete")
    assert response.status_code == 409, response.text
    assert (await api.post("/production-orders/PO-NOPE/complete")).status_code == 404

    shipment_id = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "9"})
    stock = (await api.get(f"/products/{sku}")).json()
    assert (stock["stock_on_hand"], stock["reserved"]) == (0, 0)


# --- 5 to 7. prepaid and credit terms, shipment, settlement -------------------------------------


async def test_prepaid_order_waits_for_payment_before_shipping(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="prepaid")
    product = await new_product(unit_price=50, stock_on_hand=100)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 20}]
    )
    order_no = order["order_no"]
    assert order["status"] == "AWAITING_PAYMENT"
    assert order["payment_terms"] == "prepaid"
    (invoice,) = order["invoices"]
    assert (invoice["amount"], invoice["status"]) == (1000, "issued")
    assert order["shipments"] == []

    response = await api.post(
        f"/orders/{order_no}/payments",
        json={"amount": 1000.01, "method": "bank_transfer", "reference": "X0"},
    )
    assert response.status_code == 422, response.text
    order = await post_ok(
        api,
        f"/orders/{order_no}/payments",
        {"amount": 400, "method": "bank_transfer", "reference": "X1"},
    )
    assert order["status"] == "AWAITING_PAYMENT"
    assert order["invoices"][0]["paid_amount"] == 400
    # The same payment reported twice counts once.
    order = await post_ok(
        api,
        f"/orders/{order_no}/payments",
        {"amount": 400, "method": "bank_transfer", "reference": "X1"},
    )
    assert order["invoices"][0]["paid_amount"] == 400 and len(order["payments"]) == 1
    response = await api.post(
        f"/orders/{order_no}/payments",
        json={"amount": 500, "method": "bank_transfer", "reference": "X1"},
    )
    assert response.status_code == 409, response.text
    order = await post_ok(
        api,
        f"/orders/{order_no}/payments",
        {"amount": 600, "method": "bank_transfer", "reference": "X2"},
    )
    assert order["status"] == "READY_TO_SHIP"
    assert order["invoices"][0]["status"] == "paid"

    shipment_id = order["shipments"][0]["id"]
    order = await post_ok(
        api, f"/shipments/{shipment_id}/dispatch", {"carrier": "EMS", "tracking_no": "E1"}
    )
    assert order["status"] == "SHIPPED" and len(order["invoices"]) == 1
    order = await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Liu"})
    assert order["status"] == "COMPLETED"
    assert [e["event"] for e in order["timeline"]][-1] == "order_archived"


async def test_credit_terms_payments_and_shipment_rules(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="net_45")
    product = await new_product(unit_price=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no = order["order_no"]
    shipment_id = order["shipments"][0]["id"]
    # No invoice before dispatch; no delivery before dispatch.
    response = await api.post(
        f"/orders/{order_no}/payments", json={"amount": 10, "method": "cash", "reference": "P0"}
    )
    assert response.status_code == 409, response.text
    response = await api.post(f"/shipments/{shipment_id}/deliver", json={"signed_by": "Liu"})
    assert response.status_code == 409, response.text
    response = await api.post(f"/shipments/{shipment_id}/dispatch", json={"carrier": "SF"})
    assert response.status_code == 422 and "tracking_no" in error_fields(response)
    assert (
        await api.post("/shipments/SH-NOPE/dispatch", json={"carrier": "SF", "tracking_no": "1"})
    ).status_code == 404

    order = await post_ok(
        api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"}
    )
    (invoice,) = order["invoices"]
    # Net days count from the company's date (Asia/Shanghai), not UTC's.
    dispatched_at = datetime.fromisoformat(order["shipments"][0]["dispatched_at"])
    dispatched = dispatched_at.astimezone(ZoneInfo("Asia/Shanghai")).date()
    assert date.fromisoformat(invoice["due_date"]) == dispatched + timedelta(days=45)
    response = await api.post(
        f"/shipments/{shipment_id}/dispatch", json={"carrier": "SF", "tracking_no": "1"}
    )
    assert response.status_code == 409, response.text

    # Credit customers may pay before delivery; the order completes when both are done.
    order = await post_ok(
        api, f"/orders/{order_no}/payments", {"amount": 100, "method": "cash", "reference": "P1"}
    )
    assert order["status"] == "SHIPPED"
    response = await api.post(
        f"/orders/{order_no}/payments", json={"amount": 0, "method": "cash", "reference": "P2"}
    )
    assert response.status_code == 422
    order = await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Liu"})
    assert order["status"] == "COMPLETED"
    assert order["lines"][0]["shipped_quantity"] == order["lines"][0]["delivered_quantity"] == 10
    response = await api.post(
        f"/orders/{order_no}/payments", json={"amount": 1, "method": "cash", "reference": "P3"}
    )
    assert response.status_code == 409, response.text


async def test_open_receivables_count_toward_credit_exposure(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(credit_limit=1500)
    product = await new_product(unit_price=100)
    first = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    await post_ok(
        api,
        f"/shipments/{first['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    second = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 6}]
    )
    assert second["credit"] == {"credit_limit": 1500, "open_receivables": 1000, "exposure": 1600}
    assert [r["code"] for r in second["approval"]["reasons"]] == ["credit_limit_exceeded"]


# --- 8 and 9. seeing orders: view, lists, Temporal visibility ----------------------------------


async def test_order_view_lists_and_search_attributes(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, temporal_client: Any
) -> None:
    customer = await new_customer()
    product = await new_product()
    cid = customer["customer_id"]
    pending = await submit_ok(
        api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 1}], priority="rush"
    )
    ready = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 2}])

    view = (await api.get(f"/orders/{ready['order_no']}")).json()
    for key in (
        "order_no",
        "status",
        "customer_id",
        "lines",
        "total",
        "approvals",
        "production_orders",
        "shipments",
        "invoices",
        "payments",
        "timeline",
    ):
        assert key in view
    assert view["customer_name"] == "Test customer"
    assert [e["event"] for e in view["timeline"]][:2] == ["order_received", "order_approved"]
    assert all(e["at"] and e["actor"] for e in view["timeline"])

    page = (await api.get("/orders", params={"customer_id": cid})).json()
    assert [o["order_no"] for o in page["items"]] == [ready["order_no"], pending["order_no"]]
    assert page["total"] == 2
    page = (
        await api.get("/orders", params={"customer_id": cid, "status": "PENDING_APPROVAL"})
    ).json()
    assert [o["order_no"] for o in page["items"]] == [pending["order_no"]]
    page = (await api.get("/orders", params={"customer_id": cid, "limit": 1, "offset": 1})).json()
    assert [o["order_no"] for o in page["items"]] == [pending["order_no"]]
    assert (await api.get("/orders", params={"status": "LOST"})).status_code == 422
    assert (await api.get("/orders", params={"limit": 0})).status_code == 422
    assert (await api.get("/orders/NOPE-404")).status_code == 404

    async def visible() -> None:
        query = f'OrderStatus="PENDING_APPROVAL" AND CustomerId="{cid}"'
        found = [wf.id async for wf in temporal_client.list_workflows(query)]
        assert found == [f"order-{pending['order_no']}"]

    await eventually(visible)
    description = await temporal_client.get_workflow_handle(
        f"order-{pending['order_no']}"
    ).describe()
    assert description.typed_search_attributes.get(sa.ORDER_TOTAL) == 100.0
    assert pending["order_no"] in (await description.static_summary() or "")
    # What the UI shows as current details: the status and what the order waits for.
    handle = temporal_client.get_workflow_handle(f"order-{pending['order_no']}")
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert "Pending approval (待审核)" in metadata.current_details
    assert "approval by level 1 (supervisor)" in metadata.current_details


# --- master data ------------------------------------------------------------------------------


async def test_catalog_endpoints(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    assert (await api.get(f"/customers/{customer['customer_id']}")).json()["credit_limit"] == 500000
    assert (
        await api.post(
            "/customers",
            json={k: v for k, v in customer.items() if k not in ("created_at", "credit_hold")},
        )
    ).status_code == 409
    response = await api.post(
        "/customers", json={"customer_id": "X", "name": "", "region": "e", "payment_terms": "net_x"}
    )
    assert response.status_code == 422 and {"name", "payment_terms"} <= error_fields(response)
    assert (await api.get("/customers/NOPE")).status_code == 404

    product = await new_product(stock_on_hand=5, safety_stock=3)
    sku = product["sku"]
    assert (product["reserved"], product["available"]) == (0, 5)
    adjusted = await post_ok(api, f"/products/{sku}/stock", {"delta": 7, "reason": "goods receipt"})
    assert adjusted["stock_on_hand"] == 12
    response = await api.post(f"/products/{sku}/stock", json={"delta": -13, "reason": "write-off"})
    assert response.status_code == 409, response.text
    assert (
        await api.post("/products/NOPE/stock", json={"delta": 1, "reason": "x"})
    ).status_code == 404
    assert (await api.post(f"/products/{sku}/stock", json={"delta": "x"})).status_code == 422
    assert sku in {p["sku"] for p in (await api.get("/products", params={"limit": 500})).json()}


async def test_health(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"] == {"api": "ok", "database": "ok", "temporal": "ok"}


async def test_absurd_amounts_are_refused_at_entry_not_stuck(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(unit_price=10**12)
    response = await submit(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10**9}]
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"lines"}


async def test_delivery_date_in_the_past_is_refused(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product()
    response = await submit(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        requested_delivery_date="2020-01-01",
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"requested_delivery_date"}


async def test_body_that_is_not_utf8_is_a_field_level_422(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/orders", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert error_fields(response) == {"body"}


async def test_stock_cannot_grow_past_the_maximum(
    api: httpx.AsyncClient, new_product: Factory
) -> None:
    product = await new_product(stock_on_hand=10**9)
    response = await api.post(f"/products/{product['sku']}/stock", json={"delta": 1, "reason": "x"})
    assert response.status_code == 409, response.text


async def test_concurrent_payments_queue_and_never_overpay(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="prepaid")
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    url = f"/orders/{order['order_no']}/payments"
    responses = await asyncio.gather(
        *(
            api.post(url, json={"amount": 600, "method": "bank_transfer", "reference": f"R{i}"})
            for i in range(3)
        )
    )
    assert sorted(r.status_code for r in responses) == [200, 422, 422]
    responses = await asyncio.gather(
        *(
            api.post(url, json={"amount": 200, "method": "bank_transfer", "reference": f"S{i}"})
            for i in range(2)
        )
    )
    assert [r.status_code for r in responses] == [200, 200]
    order = (await api.get(f"/orders/{order['order_no']}")).json()
    assert order["invoices"][0]["paid_amount"] == 1000
    assert order["status"] == "READY_TO_SHIP"


async def test_an_oversized_body_is_a_413(api: httpx.AsyncClient) -> None:
    body = b'{"notes": "' + b"x" * 1_100_000 + b'"}'
    response = await api.post("/orders", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
