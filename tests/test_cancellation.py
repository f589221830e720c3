"""Cancellation (取消) at every stage: each step undone once, checked in the database after."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from domain.messages import ActivityName
from settings import Settings
from store.db import Database
from store.tables import (
    CreditNote,
    Invoice,
    Payment,
    Product,
    ProductionOrder,
    Refund,
    Reservation,
    Shipment,
)
from tests.helpers import (
    Factory,
    api_for,
    eventually,
    post_ok,
    submit_ok,
    worker_environment,
)
from worker import build_worker
from workflows import search_attributes as sa

CANCEL = {"reason_code": "customer_request", "comment": "changed their mind", "by": "sales.li"}


@dataclass
class Ledger:
    """What the database holds for one order and its SKU after the fact."""

    stock_on_hand: int
    reserved: int
    active_reservations: int
    production: list[str]
    shipments: list[str]
    invoices: list[str]
    credit_notes: int
    paid: Decimal
    refunded: Decimal
    refunds: int
    payments: int


async def ledger(db: Database, order_no: str, sku: str) -> Ledger:
    async with db.reader() as session:

        async def rows(model: Any, *where: Any) -> list[Any]:
            return list((await session.exec(select(model).where(*where))).all())

        product = await session.get(Product, sku)
        assert product is not None
        payments = await rows(Payment, col(Payment.order_no) == order_no)
        refunds = await rows(Refund, col(Refund.order_no) == order_no)
        return Ledger(
            stock_on_hand=product.stock_on_hand,
            reserved=product.reserved,
            active_reservations=sum(
                r.quantity
                for r in await rows(Reservation, col(Reservation.order_no) == order_no)
                if r.status == "active"
            ),
            production=[
                p.status
                for p in await rows(ProductionOrder, col(ProductionOrder.order_no) == order_no)
            ],
            shipments=[s.status for s in await rows(Shipment, col(Shipment.order_no) == order_no)],
            invoices=[i.status for i in await rows(Invoice, col(Invoice.order_no) == order_no)],
            credit_notes=len(await rows(CreditNote, col(CreditNote.order_no) == order_no)),
            paid=sum((p.amount for p in payments), Decimal(0)),
            refunded=sum((r.amount for r in refunds), Decimal(0)),
            refunds=len(refunds),
            payments=len(payments),
        )


def assert_nothing_left(after: Ledger, stock_before: int) -> None:
    """Nothing reserved, nothing open, every payment refunded exactly once."""
    assert after.reserved == 0 and after.active_reservations == 0
    assert after.stock_on_hand == stock_before
    assert not {"planned", "partially_completed"} & set(after.production)
    assert "ready" not in after.shipments
    assert not {"issued", "paid"} & set(after.invoices)
    assert (after.refunds, after.refunded) == (after.payments, after.paid)


Stage = Callable[[httpx.AsyncClient, Factory, Factory], Awaitable[tuple[dict[str, Any], str, int]]]


async def pending_approval(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str, int]:
    customer, product = await customers(), await products(stock_on_hand=10)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 2, "unit_price": 50}],
    )
    assert order["status"] == "PENDING_APPROVAL"
    return order, product["sku"], 10


async def awaiting_payment_part_paid(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str, int]:
    customer, product = (
        await customers(payment_terms="prepaid"),
        await products(stock_on_hand=10, unit_price=100),
    )
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order = await post_ok(
        api,
        f"/orders/{order['order_no']}/payments",
        {"amount": 120, "method": "card", "reference": "P1"},
    )
    assert order["status"] == "AWAITING_PAYMENT"
    return order, product["sku"], 10


async def in_production(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str, int]:
    customer, product = await customers(), await products(stock_on_hand=3)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 8}]
    )
    assert order["status"] == "IN_PRODUCTION"
    # Part of the production is reported and reserved before the customer cancels.
    order = await post_ok(
        api,
        f"/production-orders/{order['production_orders'][0]['id']}/complete",
        {"produced_quantity": 2},
    )
    return order, product["sku"], 5  # three in stock plus two produced


async def ready_to_ship_prepaid(
    api: httpx.AsyncClient, customers: Factory, products: Factory
) -> tuple[dict[str, Any], str, int]:
    customer, product = (
        await customers(payment_terms="prepaid"),
        await products(stock_on_hand=10, unit_price=100),
    )
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )
    for ref, amount in (("P1", 150), ("P2", 250)):
        order = await post_ok(
            api,
            f"/orders/{order['order_no']}/payments",
            {"amount": amount, "method": "bank", "reference": ref},
        )
    assert order["status"] == "READY_TO_SHIP"
    return order, product["sku"], 10


@pytest.mark.parametrize(
    "stage", [pending_approval, awaiting_payment_part_paid, in_production, ready_to_ship_prepaid]
)
async def test_cancellation_undoes_every_step_once(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, db: Database, stage: Stage
) -> None:
    order, sku, stock_before = await stage(api, new_customer, new_product)
    order_no = order["order_no"]
    cancelled = await post_ok(api, f"/orders/{order_no}/cancel", CANCEL)
    assert cancelled["status"] == "CANCELLED" and cancelled["closed"]
    assert cancelled["status_label"]["zh"] == "已取消"
    assert cancelled["cancellation"]["reason_code"] == "customer_request"
    assert cancelled["cancellation"]["by"] == "sales.li"
    after = await ledger(db, order_no, sku)
    assert_nothing_left(after, stock_before)
    assert after.credit_notes == (1 if after.payments else 0)
    assert len(cancelled["refunds"]) == after.refunds
    assert all(po["status"] == "cancelled" for po in cancelled["production_orders"])
    # Undone in reverse: money back before the invoice is credited, stock released last.
    events = [e["event"] for e in cancelled["timeline"]]
    undo = [
        e
        for e in events
        if e.endswith(("_cancelled", "_refunded", "_released")) and e != "order_cancelled"
    ]
    order_of = [
        "shipments_cancelled",
        "production_orders_cancelled",
        "payments_refunded",
        "invoices_cancelled",
        "reservations_released",
    ]
    assert undo == [e for e in order_of if e in undo]
    # Asking again answers the same; nothing is undone twice.
    again = await post_ok(api, f"/orders/{order_no}/cancel", CANCEL)
    assert again["status"] == "CANCELLED"
    assert await ledger(db, order_no, sku) == after


async def test_no_cancellation_after_shipment(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    await post_ok(
        api,
        f"/shipments/{order['shipments'][0]['id']}/dispatch",
        {"carrier": "SF", "tracking_no": "1"},
    )
    response = await api.post(f"/orders/{order['order_no']}/cancel", json=CANCEL)
    assert response.status_code == 409, response.text
    assert "/returns" in response.json()["detail"]
    assert (await api.get(f"/orders/{order['order_no']}")).json()["status"] == "SHIPPED"


async def test_cancel_input_is_validated(api: httpx.AsyncClient) -> None:
    response = await api.post("/orders/NOPE/cancel", json=CANCEL | {"reason_code": "bored"})
    assert response.status_code == 422
    assert (await api.post("/orders/NOPE/cancel", json=CANCEL)).status_code == 404


async def test_a_worker_killed_mid_saga_still_finishes_it_exactly_once(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    own = settings.model_copy(
        update={"task_queue": f"kill-{uuid.uuid4().hex[:6]}", "command_timeout_seconds": 30.0}
    )
    env = worker_environment(own)

    def start_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    customer = await new_customer(payment_terms="prepaid")
    product = await new_product(stock_on_hand=10, unit_price=100)
    sku = product["sku"]
    worker = start_worker()
    try:
        async with api_for(own, request_seconds=60) as api:
            order = await submit_ok(
                api, customer_id=customer["customer_id"], lines=[{"sku": sku, "quantity": 4}]
            )
            order_no = order["order_no"]
            await post_ok(
                api,
                f"/orders/{order_no}/payments",
                {"amount": 400, "method": "bank", "reference": "K1"},
            )
            handle = temporal_client.get_workflow_handle(f"order-{order_no}")
            accepted_before = await _accepted_updates(handle)

            # Hold SQLite's write lock: the saga's first compensation blocks in the worker.
            path = make_url(own.database_url).database
            assert path is not None
            lock = sqlite3.connect(path, isolation_level=None, timeout=30)
            lock.execute("BEGIN IMMEDIATE")
            cancel = asyncio.create_task(api.post(f"/orders/{order_no}/cancel", json=CANCEL))
            # Once the cancel update is on record (the blocked task heartbeats), kill -9.
            await eventually(_more_updates(handle, accepted_before), within=30)
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            lock.execute("ROLLBACK")
            lock.close()
            worker = start_worker()

            async def cancelled() -> None:
                view = (await api.get(f"/orders/{order_no}")).json()
                assert view["status"] == "CANCELLED" and view["closed"]

            await eventually(cancelled, within=60)
            cancel.cancel()
            # The history shows the killed worker's task timing out, then the takeover.
            kinds = [e.WhichOneof("attributes") for e in (await handle.fetch_history()).events]
            assert "workflow_task_timed_out_event_attributes" in kinds
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    after = await ledger(db, order_no, sku)
    assert_nothing_left(after, 10)
    assert (after.payments, after.refunds, after.credit_notes) == (1, 1, 1)
    assert after.shipments == ["cancelled"]


async def _accepted_updates(handle: Any) -> int:
    history = await handle.fetch_history()
    return sum(
        1
        for e in history.events
        if e.WhichOneof("attributes") == "workflow_execution_update_accepted_event_attributes"
    )


def _more_updates(handle: Any, before: int) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        assert await _accepted_updates(handle) > before

    return check


class _Gate(Interceptor):
    """Holds one activity type at its start until the test opens the gate: a real step of the
    real worker, paused so the test can look at the order in between."""

    def __init__(self, activity_type: str) -> None:
        self.activity_type = activity_type
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        gate = self

        class Inbound(ActivityInboundInterceptor):
            async def execute_activity(self, input: ExecuteActivityInput) -> Any:
                if activity.info().activity_type == gate.activity_type:
                    gate.entered.set()
                    await gate.open.wait()
                return await super().execute_activity(input)

        return Inbound(next)


async def test_the_order_shows_cancelling_while_its_steps_are_undone(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    own = settings.model_copy(update={"task_queue": f"gate-{uuid.uuid4().hex[:6]}"})
    gate = _Gate(ActivityName.CANCEL_SHIPMENTS)
    customer, product = await new_customer(), await new_product()
    async with build_worker(temporal_client, db, own, [gate]), api_for(own) as api:
        order = await submit_ok(
            api,
            customer_id=customer["customer_id"],
            lines=[{"sku": product["sku"], "quantity": 2}],
        )
        order_no = order["order_no"]
        assert order["status"] == "READY_TO_SHIP"
        cancel = asyncio.create_task(api.post(f"/orders/{order_no}/cancel", json=CANCEL))
        try:
            await asyncio.wait_for(gate.entered.wait(), timeout=30)
            # The saga is under way: lists, ops' search and the view all say so.
            listed = (await api.get("/orders", params={"status": "CANCELLING"})).json()
            assert order_no in [o["order_no"] for o in listed["items"]]
            assert (await api.get(f"/orders/{order_no}")).json()["status"] == "CANCELLING"
            handle = temporal_client.get_workflow_handle(f"order-{order_no}")

            async def searchable() -> None:
                # Local activities run inside one workflow task: its commands (the upsert
                # among them) reach Temporal when a slow step makes it heartbeat.
                attributes = (await handle.describe()).typed_search_attributes
                assert attributes.get(sa.ORDER_STATUS) == "CANCELLING"

            await eventually(searchable, within=30)
        finally:
            gate.open.set()  # the worker cannot stop while a step of it waits at the gate
        response = await asyncio.wait_for(cancel, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "CANCELLED"
    after = await ledger(db, order_no, product["sku"])
    assert_nothing_left(after, product["stock_on_hand"])
    assert after.shipments == ["cancelled"]
