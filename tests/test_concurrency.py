"""Concurrency on PostgreSQL: many orders race for too little stock, and duplicates race too.

A stack of its own (API, worker, a fresh PostgreSQL schema) so row locking is the real one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client

from api.main import create_app
from settings import Settings
from store import migrate
from store.db import Database
from tests.auth import ActAs
from tests.helpers import postgres_schema
from worker import build_worker

ORDERS = 200


@pytest.fixture
async def pg_settings(settings: Settings) -> AsyncIterator[Settings]:
    with postgres_schema("orders_race") as (url, _):
        await migrate.upgrade(url)
        yield settings.model_copy(
            update={
                "database_url": url,
                "task_queue": f"race-{uuid.uuid4().hex[:6]}",
                "command_timeout_seconds": 30.0,
            }
        )


async def submit(api: httpx.AsyncClient, body: dict[str, Any]) -> int:
    """Like an integrator: retry on 503 (the same body is always safe to send again)."""
    for _ in range(20):
        response = await api.post("/orders", json=body)
        if response.status_code != 503:
            return response.status_code
        await asyncio.sleep(0.5)
    raise AssertionError("the API stayed unavailable")


async def test_orders_racing_for_half_the_stock_on_postgresql(
    pg_settings: Settings, temporal_client: Client
) -> None:
    app = create_app(pg_settings)
    db = Database(pg_settings.database_url, audit_seal=pg_settings.audit_seal())
    async with app.router.lifespan_context(app), build_worker(temporal_client, db, pg_settings):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
        ) as api:
            customer = {
                "customer_id": "RACE",
                "name": "Race",
                "region": "east",
                "credit_limit": 10**9,
            }
            assert (await api.post("/customers", json=customer)).status_code == 201
            product = {
                "sku": "SCARCE",
                "name": "Scarce",
                "unit_price": 10,
                "stock_on_hand": ORDERS // 2,
            }
            assert (await api.post("/products", json=product)).status_code == 201
            bodies = [
                {
                    "order_no": f"RACE-{i:04d}",
                    "customer_id": "RACE",
                    "lines": [{"sku": "SCARCE", "quantity": 1}],
                    "entered_by": "integrator",
                }
                for i in range(ORDERS)
            ]
            # Every order number is submitted twice at the same moment.
            statuses = await asyncio.gather(*(submit(api, body) for body in bodies + bodies))
    assert sorted(set(statuses)) in ([200, 201], [201])
    assert statuses.count(201) == ORDERS  # one order per number, never two

    async with db.reader() as session:

        async def scalar(sql: str) -> Any:
            return (await session.exec(text(sql))).scalar_one()  # type: ignore[call-overload]

        on_hand = await scalar("SELECT stock_on_hand FROM product WHERE sku = 'SCARCE'")
        reserved = await scalar("SELECT reserved FROM product WHERE sku = 'SCARCE'")
        reservations = await scalar(
            "SELECT COALESCE(SUM(quantity), 0) FROM reservation WHERE sku = 'SCARCE' AND status = 'active'"
        )
        rows = await scalar("SELECT COUNT(*) FROM reservation WHERE sku = 'SCARCE'")
        orders = await scalar("SELECT COUNT(*) FROM orderrecord WHERE customer_id = 'RACE'")
        reserved_orders = await scalar(
            "SELECT COUNT(DISTINCT order_no) FROM reservation WHERE sku = 'SCARCE' AND quantity > 0"
        )
        produced_for = await scalar("SELECT COUNT(DISTINCT order_no) FROM productionorder")
        both = await scalar(
            "SELECT COUNT(*) FROM productionorder p JOIN reservation r ON r.order_no = p.order_no "
            "AND r.line_no = p.line_no WHERE r.quantity > 0"
        )
    await db.dispose()
    assert reservations == reserved <= on_hand == ORDERS // 2  # not one unit oversold
    assert reserved == ORDERS // 2  # and none left idle while orders wait
    assert rows == orders == ORDERS  # no order lost, none duplicated
    assert reserved_orders + produced_for == ORDERS and both == 0  # each reserved or in production
