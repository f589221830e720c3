"""Deadlines, reminders and escalation ladders on the real Temporal server.

The customers here belong to test tiers (see `TEST_TIERS` in conftest) whose SLAs run in
seconds on the calendar clock: real durable timers, nothing faked, the suite stays fast.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus

from api.main import create_app
from settings import Settings
from store.db import Database
from store.tables import Escalation
from tests.auth import ActAs
from tests.helpers import Factory, eventually, post_ok, submit_ok
from tests.webhook import WebhookReceiver
from worker import build_worker
from workflows import search_attributes as sa

FAST = 15.0  # seconds: the longest ladder here is a few seconds


async def order_view(api: httpx.AsyncClient, order_no: str) -> dict[str, Any]:
    response = await api.get(f"/orders/{order_no}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def deadline(order: dict[str, Any], sla: str) -> dict[str, Any]:
    (found,) = [d for d in order["deadlines"] if d["sla"] == sla]
    return dict(found)


async def escalation_rows(db: Database, order_no: str) -> list[Escalation]:
    async with db.reader() as session:
        query = select(Escalation).where(col(Escalation.order_no) == order_no)
        return list((await session.exec(query.order_by(col(Escalation.fired_at)))).all())


async def archived_escalations(db: Database, order_no: str, count: int) -> list[Escalation]:
    """The escalation log once the order's archive is written (a query may see it closed first)."""

    async def logged() -> list[Escalation]:
        rows = await escalation_rows(db, order_no)
        assert len(rows) == count and all(r.resolved_at is not None for r in rows)
        return rows

    return await eventually(logged, within=FAST)


async def test_unanswered_approval_escalates_twice_then_expires(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    webhook: WebhookReceiver,
    db: Database,
) -> None:
    customer = await new_customer(customer_group="sla-approval")
    product = await new_product(stock_on_hand=10)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 3, "unit_price": 50}],
    )
    order_no = order["order_no"]
    assert order["status"] == "PENDING_APPROVAL"
    approval = deadline(order, "approval")
    assert approval["status"] == "on_track"
    assert deadline(order, "dispatch")["status"] == "on_track"

    async def expired() -> dict[str, Any]:
        view = await order_view(api, order_no)
        assert view["status"] == "CANCELLED" and view["closed"]
        return view

    order = await eventually(expired, within=FAST)
    assert order["cancellation"]["reason_code"] == "approval_expired"
    approval = deadline(order, "approval")
    assert approval["status"] == "breached"
    assert [(e["kind"], e["level"]) for e in approval["escalations"]] == [
        ("reminder", 0),
        ("escalation", 1),
        ("escalation", 2),
        ("action", 2),
    ]
    assert approval["held_by"] == ["sales"]
    assert deadline(order, "dispatch")["status"] == "cancelled"
    assert order["overdue"] is False  # a closed order is nobody's to chase
    events = [e["event"] for e in order["timeline"]]
    assert events.count("deadline_escalation") == 2
    assert events[-4:] == [
        "deadline_action",
        "cancellation_requested",
        "order_cancelled",
        "order_archived",
    ]

    # Each step was delivered once, signed, to the webhook, in ladder order.
    async def notified() -> list[dict[str, Any]]:
        sent = webhook.for_order(order_no)
        assert len(sent) == 4
        return sent

    sent = await eventually(notified, within=FAST)
    assert [(n["kind"], n["level"]) for n in sent] == [
        ("reminder", 0),
        ("escalation", 1),
        ("escalation", 2),
        ("action", 2),
    ]
    assert all(n["_signature_ok"] and n["_id_header"] == n["id"] for n in sent)
    assert len({n["id"] for n in sent}) == 4
    assert sent[1]["notify"] == ["approver_l1"] and sent[2]["notify"] == ["approver_l2"]

    # The escalation log has the four steps, resolved when the order ended.
    rows = await archived_escalations(db, order_no, 4)
    assert [(r.kind, r.level) for r in rows] == [
        ("reminder", 0),
        ("escalation", 1),
        ("escalation", 2),
        ("action", 2),
    ]
    assert all(r.resolved_at is not None for r in rows)
    # Too late to decide now.
    response = await api.post(
        f"/orders/{order_no}/approve", json={"approver": "sup.zhang", "role": "approver_l1"}
    )
    assert response.status_code == 409


async def test_unpaid_prepaid_order_is_cancelled_and_its_steps_undone(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, webhook: WebhookReceiver
) -> None:
    customer = await new_customer(customer_group="sla-prepaid", payment_terms="prepaid")
    product = await new_product(stock_on_hand=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )
    assert order["status"] == "AWAITING_PAYMENT"
    assert (await api.get(f"/products/{product['sku']}")).json()["reserved"] == 4

    async def cancelled() -> dict[str, Any]:
        view = await order_view(api, order["order_no"])
        assert view["status"] == "CANCELLED"
        return view

    order = await eventually(cancelled, within=FAST)
    assert order["cancellation"]["reason_code"] == "payment_expired"
    assert order["invoices"][0]["status"] == "void"
    assert order["lines"][0]["reserved_quantity"] == 0
    # The reservation was given back exactly once.
    stock = (await api.get(f"/products/{product['sku']}")).json()
    assert (stock["stock_on_hand"], stock["reserved"]) == (10, 0)
    events = [e["event"] for e in order["timeline"]]
    assert events.index("invoices_cancelled") < events.index("reservations_released")


async def test_a_met_deadline_fires_nothing(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, webhook: WebhookReceiver
) -> None:
    customer = await new_customer(customer_group="sla-dispatch")
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    shipment_id = order["shipments"][0]["id"]
    order = await post_ok(
        api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"}
    )
    dispatch = deadline(order, "dispatch")
    assert dispatch["status"] == "met" and dispatch["met_at"]
    # Well past where the reminder and the escalation would have fired, nothing did:
    await asyncio.sleep(5.0)
    order = await order_view(api, order["order_no"])
    assert deadline(order, "dispatch")["escalations"] == []
    assert webhook.for_order(order["order_no"]) == []


async def test_overdue_orders_are_searchable_and_clear_when_they_catch_up(
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    temporal_client: Client,
) -> None:
    customer = await new_customer(customer_group="sla-dispatch")
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no = order["order_no"]
    handle = temporal_client.get_workflow_handle(f"order-{order_no}")

    async def overdue() -> dict[str, Any]:
        view = await order_view(api, order_no)
        assert view["overdue"] is True and view["escalation_level"] == 1
        return view

    view = await eventually(overdue, within=FAST)
    dispatch = deadline(view, "dispatch")
    assert dispatch["status"] == "breached" and dispatch["held_by"] == ["warehouse"]

    async def listed() -> None:
        page = (
            await api.get(
                "/orders", params={"overdue": "true", "customer_id": customer["customer_id"]}
            )
        ).json()
        assert [o["order_no"] for o in page["items"]] == [order_no]
        assert page["items"][0]["escalation_level"] == 1
        # The list says what is late, by how much, at what level and who holds it.
        (late,) = page["items"][0]["overdue_deadlines"]
        assert (late["sla"], late["escalation_level"], late["held_by"]) == (
            "dispatch",
            1,
            ["warehouse"],
        )
        due = datetime.fromisoformat(late["due_at"])
        assert due == datetime.fromisoformat(dispatch["due_at"])
        assert 0 <= late["overdue_seconds"] <= (datetime.now(UTC) - due).total_seconds() + 1
        assert late["overdue_for"].endswith(("s", "m", "h", "d"))
        report = (await api.get("/reports/overdue")).json()
        rows = [
            d for stage in report["stages"] for d in stage["deadlines"] if d["order_no"] == order_no
        ]
        assert [(r["sla"], r["escalation_level"], r["held_by"]) for r in rows] == [
            ("dispatch", 1, ["warehouse"])
        ]
        # The same entry as the report's (but for the seconds gone by between the two reads).
        same = {"order_no", "customer_id", "sla", "key", "due_at", "escalation_level", "held_by"}
        assert {k: late[k] for k in same} == {k: rows[0][k] for k in same}
        stage = next(
            s for s in report["stages"] if any(d["order_no"] == order_no for d in s["deadlines"])
        )
        assert stage["stage"] == "READY_TO_SHIP" and stage["label"]["zh"] == "待发货"
        found = [
            wf.id
            async for wf in temporal_client.list_workflows(
                f'Overdue=true AND EscalationLevel=1 AND CustomerId="{customer["customer_id"]}"'
            )
        ]
        assert found == [f"order-{order_no}"]

    await eventually(listed, within=FAST)

    # The warehouse catches up: the deadline is met late and the flags clear.
    view = await post_ok(
        api,
        f"/shipments/{view['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    assert view["overdue"] is False and view["escalation_level"] == 0
    assert deadline(view, "dispatch")["status"] == "met"

    async def cleared() -> None:
        page = (
            await api.get(
                "/orders", params={"overdue": "true", "customer_id": customer["customer_id"]}
            )
        ).json()
        assert page["items"] == []
        page = (await api.get("/orders", params={"customer_id": customer["customer_id"]})).json()
        assert [(o["overdue"], o["overdue_deadlines"]) for o in page["items"]] == [(False, [])]
        found = [
            wf.id
            async for wf in temporal_client.list_workflows(
                f'Overdue=false AND CustomerId="{customer["customer_id"]}"'
            )
        ]
        assert found == [f"order-{order_no}"]

    await eventually(cleared, within=FAST)
    # The workflow itself, still running (shipped, awaiting delivery), carries the cleared flags.
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
    attributes = description.typed_search_attributes
    assert (
        attributes.get(sa.ORDER_STATUS),
        attributes.get(sa.OVERDUE),
        attributes.get(sa.ESCALATION_LEVEL),
    ) == ("SHIPPED", False, 0)


async def test_a_reminder_before_the_delivery_date(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, webhook: WebhookReceiver
) -> None:
    customer = await new_customer(customer_group="sla-delivery")
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    shipment_id = order["shipments"][0]["id"]
    order = await post_ok(
        api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"}
    )
    assert deadline(order, "delivery")["status"] == "on_track"

    async def reminded() -> dict[str, Any]:
        sent = webhook.for_order(order["order_no"])
        assert len(sent) == 1
        return sent[0]

    reminder = await eventually(reminded, within=FAST)
    assert (reminder["kind"], reminder["notify"]) == ("reminder", ["production", "sales"])
    assert deadline(await order_view(api, order["order_no"]), "delivery")["status"] == "at_risk"
    order = await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Wang"})
    delivery = deadline(order, "delivery")
    assert delivery["status"] == "met"
    await asyncio.sleep(3.5)  # past the deadline
    assert len(webhook.for_order(order["order_no"])) == 1  # no escalation after it was met


async def test_dunning_ends_in_credit_hold_and_payment_lifts_it(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, webhook: WebhookReceiver
) -> None:
    customer = await new_customer(customer_group="sla-dunning")
    cid = customer["customer_id"]
    product = await new_product(unit_price=100)
    order = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 2}])
    order_no = order["order_no"]
    shipment_id = order["shipments"][0]["id"]
    await post_ok(api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "1"})
    await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Wang"})

    async def on_hold() -> None:
        assert (await api.get(f"/customers/{cid}")).json()["credit_hold"] is True

    await eventually(on_hold, within=FAST)
    view = await order_view(api, order_no)
    dunning = deadline(view, "invoice_payment")
    assert [(e["kind"], e["level"]) for e in dunning["escalations"]] == [
        ("escalation", 1),
        ("escalation", 2),
        ("action", 3),
    ]
    assert "credit_hold_placed" in [e["event"] for e in view["timeline"]]

    # New orders from a customer on credit hold need approval, however small.
    held = await submit_ok(api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 1}])
    assert held["status"] == "PENDING_APPROVAL"
    assert [r["code"] for r in held["approval"]["reasons"]] == ["customer_on_credit_hold"]

    # The customer pays: the deadline is met late, the hold is lifted, the order completes.
    view = await post_ok(
        api,
        f"/orders/{order_no}/payments",
        {"amount": 200, "method": "bank_transfer", "reference": "LATE"},
    )
    assert view["status"] == "COMPLETED"
    dunning = deadline(view, "invoice_payment")
    assert dunning["status"] == "met" and dunning["met_at"] > dunning["due_at"]  # met, late
    assert len(dunning["escalations"]) == 3
    assert (await api.get(f"/customers/{cid}")).json()["credit_hold"] is False
    kinds = [(n["kind"], n["level"]) for n in webhook.for_order(order_no)]
    assert kinds == [("escalation", 1), ("escalation", 2), ("action", 3)]


async def test_a_worker_restarted_mid_ladder_sends_no_step_twice(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
    webhook: WebhookReceiver,
) -> None:
    own = settings.model_copy(update={"task_queue": f"restart-{uuid.uuid4().hex[:6]}"})
    customer = await new_customer(customer_group="sla-restart")
    product = await new_product()
    app = create_app(own)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            auth=ActAs(app), transport=transport, base_url="http://test", timeout=30
        ) as api:
            async with build_worker(temporal_client, db, own):
                order = await submit_ok(
                    api,
                    customer_id=customer["customer_id"],
                    lines=[{"sku": product["sku"], "quantity": 1, "unit_price": 50}],
                )
                order_no = order["order_no"]
                # The level-2 webhook will be refused once: Temporal must retry it.
                webhook.refuse_first.add(f"{order_no}:escalation")

                async def first_escalation() -> None:
                    assert len(webhook.for_order(order_no)) >= 1

                await eventually(first_escalation, within=FAST)
            # No worker while the next timer fires; a new one takes over.
            await asyncio.sleep(3.5)
            async with build_worker(temporal_client, db, own):

                async def expired() -> dict[str, Any]:
                    view = await order_view(api, order_no)
                    assert view["status"] == "CANCELLED"
                    assert len(webhook.for_order(order_no)) == 3
                    return view

                view = await eventually(expired, within=FAST)
                # A query sees the order closed before its archive (escalations resolved) is
                # written: the worker stays until then.
                archived = await archived_escalations(db, order_no, 3)
    sent = webhook.for_order(order_no)
    assert [(n["kind"], n["level"]) for n in sent] == [
        ("escalation", 1),
        ("escalation", 2),
        ("action", 2),
    ]
    assert len({n["id"] for n in sent}) == 3
    assert len(deadline(view, "approval")["escalations"]) == 3
    assert [r.level for r in archived] == [1, 2, 2]
    # The refused delivery was retried by Temporal and accepted once.
    (refused,) = [i for i in webhook.refused if i.startswith(f"{order_no}:")]
    assert [n["id"] for n in sent].count(refused) == 1
