"""Orders end to end with the read model on PostgreSQL, as production runs them: every step's
statements (entry, reservation, pick list, dispatch, invoice, delivery, payment, the read-model
saves, the audit chain, a cancellation's undo) run on it, through the API and a worker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlmodel import col, select
from temporalio.client import Client

from api.main import create_app
from settings import Settings
from store import audit, migrate
from store.db import Database
from store.tables import AuditEntry, Invoice, OrderRecord, Payment, Product, Reservation
from tests.auth import ActAs
from tests.conftest import create_customer, create_product
from tests.helpers import post_ok, postgres_schema, submit_ok
from worker import build_worker


@pytest.fixture
async def pg_settings(settings: Settings) -> AsyncIterator[Settings]:
    with postgres_schema("orders_flow") as (url, _):
        await migrate.upgrade(url)
        yield settings.model_copy(
            update={"database_url": url, "task_queue": f"pg-{uuid.uuid4().hex[:6]}"}
        )


async def test_an_order_runs_to_completion_and_another_is_undone_on_postgresql(
    pg_settings: Settings, temporal_client: Client
) -> None:
    app = create_app(pg_settings)
    db = Database(pg_settings.database_url, audit_seal=pg_settings.audit_seal())
    client = httpx.AsyncClient(
        auth=ActAs(app), transport=httpx.ASGITransport(app=app), base_url="http://test"
    )
    async with (
        app.router.lifespan_context(app),
        build_worker(temporal_client, db, pg_settings),
        client as api,
    ):
        customer = await create_customer(api)
        product = await create_product(api, unit_price=100, stock_on_hand=10)
        lines = [{"sku": product["sku"], "quantity": 3}]
        order = await submit_ok(api, customer_id=customer["customer_id"], lines=lines)
        assert order["status"] == "READY_TO_SHIP"
        order_no, shipment_id = order["order_no"], order["shipments"][0]["id"]
        shipped = await post_ok(
            api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "T1"}
        )
        assert shipped["status"] == "SHIPPED"
        delivered = await post_ok(api, f"/shipments/{shipment_id}/deliver", {"signed_by": "Wang"})
        assert delivered["status"] == "DELIVERED"
        payment = {"amount": 300, "method": "bank_transfer", "reference": "B1"}
        paid = await post_ok(api, f"/orders/{order_no}/payments", payment)
        assert paid["status"] == "COMPLETED"

        other = await submit_ok(api, customer_id=customer["customer_id"], lines=lines)
        cancel = {"reason_code": "customer_request", "by": "sales.li"}
        cancelled = await post_ok(api, f"/orders/{other['order_no']}/cancel", cancel)
        assert cancelled["status"] == "CANCELLED"

    async with db.reader() as session:
        stock = await session.get(Product, product["sku"])
        records = {
            r.order_no: r.status
            for r in (
                await session.exec(
                    select(OrderRecord).where(
                        col(OrderRecord.order_no).in_([order_no, other["order_no"]])
                    )
                )
            ).all()
        }
        invoices = (
            await session.exec(select(Invoice).where(col(Invoice.order_no) == order_no))
        ).all()
        payments = (
            await session.exec(select(Payment).where(col(Payment.order_no) == order_no))
        ).all()
        held = (
            await session.exec(
                select(Reservation).where(
                    col(Reservation.order_no) == other["order_no"],
                    col(Reservation.status) == "active",
                )
            )
        ).all()
        trail = (
            await session.exec(select(AuditEntry).where(col(AuditEntry.order_no) == order_no))
        ).all()
    chain = await audit.verify(db)
    await db.dispose()

    assert records == {order_no: "COMPLETED", other["order_no"]: "CANCELLED"}
    assert stock is not None and (stock.stock_on_hand, stock.reserved) == (7, 0)  # 3 left
    assert not held  # the cancelled order's reservation released
    assert [(i.status, i.amount) for i in invoices] == [("paid", Decimal(300))]
    assert [(p.amount, p.reference) for p in payments] == [(Decimal(300), "B1")]
    # The order's effects, each once, with who sent the commands; the chain holds together.
    actions = [e.action for e in trail]
    assert len(actions) == len(set(actions))
    assert {"order_received", "shipment_dispatched", "payment_recorded"} <= set(actions)
    assert all(e.role for e in trail if e.action == "shipment_dispatched")
    assert chain.entries >= len(trail) and chain.ok, chain.named
