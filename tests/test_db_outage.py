"""The database goes away for a while in the middle of an order: activities retry with
backoff and succeed afterwards; nothing fails, nothing is done twice.

PostgreSQL sits behind a TCP proxy the test can cut (every connection dropped, new ones
refused) and restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from temporalio.client import Client

from api.main import create_app
from bench.stack import libpq_url
from domain.messages import ApproveOrderInput
from domain.orders import ApproverRole
from settings import Settings
from store import migrate
from store.db import Database
from tests.auth import ActAs
from tests.conftest import POSTGRES_URL
from tests.helpers import eventually, post_ok, postgres_schema, submit_ok
from workflows.order import OrderWorkflow


class Cuttable:
    """A TCP proxy to PostgreSQL that can be cut and restored."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        for writer in list(self.links):
            writer.transport.abort()
        self.links.clear()

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.links |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


@pytest.fixture
async def proxied(settings: Settings) -> AsyncIterator[tuple[Settings, Cuttable]]:
    with postgres_schema("orders_outage") as (_, schema):
        target = make_url(POSTGRES_URL)
        proxy = Cuttable(target.host or "127.0.0.1", target.port or 5432)
        await proxy.start()
        url = target.set(host="127.0.0.1", port=proxy.port).update_query_dict(
            {"options": f"-csearch_path={schema}", "connect_timeout": "2"}
        )
        await migrate.upgrade(url.render_as_string(hide_password=False))
        yield (
            settings.model_copy(
                update={
                    "database_url": url.render_as_string(hide_password=False),
                    "task_queue": f"outage-{uuid.uuid4().hex[:6]}",
                    "command_timeout_seconds": 3.0,
                }
            ),
            proxy,
        )
        with contextlib.suppress(Exception):
            await proxy.cut()


async def test_a_database_outage_delays_orders_and_loses_nothing(
    proxied: tuple[Settings, Cuttable], temporal_client: Client
) -> None:
    own, proxy = proxied
    from worker import build_worker

    app = create_app(own)
    db = Database(own.database_url, audit_seal=own.audit_seal())
    async with app.router.lifespan_context(app), build_worker(temporal_client, db, own):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
        ) as api:
            await post_ok(
                api,
                "/customers",
                {"customer_id": "C1", "name": "c", "region": "e", "credit_limit": 10000},
                status=201,
            )
            await post_ok(
                api,
                "/products",
                {"sku": "S1", "name": "s", "unit_price": 10, "stock_on_hand": 5},
                status=201,
            )
            order = await submit_ok(
                api, customer_id="C1", lines=[{"sku": "S1", "quantity": 2}], priority="rush"
            )
            assert order["status"] == "PENDING_APPROVAL"
            handle = temporal_client.get_workflow_handle(order["workflow_id"])
            assert (await api.get(f"/orders/{order['order_no']}")).status_code == 200  # signed in

            await proxy.cut()  # the database is gone
            response = await api.get(f"/orders/{order['order_no']}")
            assert response.status_code == 503 and response.headers["retry-after"]
            # The supervisor approves (straight to Temporal: the API's own lookups need the
            # database); reserving stock and saving the order now fail and are retried.
            approval = asyncio.create_task(
                handle.execute_update(
                    OrderWorkflow.approve,
                    ApproveOrderInput(approver="sup.zhang", role=ApproverRole.APPROVER_L1),
                )
            )
            await asyncio.sleep(4.0)
            view: Any = await handle.query(OrderWorkflow.view)
            assert view.approvals and view.status.value != "READY_TO_SHIP"  # stuck on the database
            await proxy.start()  # it is back

            approved = await asyncio.wait_for(approval, timeout=60)
            assert approved.status.value == "READY_TO_SHIP"

            async def settled() -> None:
                current = (await api.get(f"/orders/{order['order_no']}")).json()
                assert current["status"] == "READY_TO_SHIP"
                product = (await api.get("/products/S1")).json()
                assert (product["stock_on_hand"], product["reserved"]) == (5, 2)

            await eventually(settled, within=30)
            history = await handle.fetch_history()
            assert not [
                e
                for e in history.events
                if e.WhichOneof("attributes") == "workflow_execution_failed_event_attributes"
            ]
    await db.dispose()


async def test_a_pooled_connection_that_died_is_replaced_before_use() -> None:
    """A connection that died while it waited in the pool (a restart, an idle timeout) is
    found dead by the pre-ping and replaced: the caller never sees it."""
    with postgres_schema("orders_ping") as (url, _):
        db = Database(url)
        backend = text("SELECT pg_backend_pid()")
        try:
            async with db.reading() as conn:
                first = (await conn.execute(backend)).scalar_one()
            with psycopg.connect(libpq_url(POSTGRES_URL), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (first,))
            async with db.reading() as conn:
                replaced = (await conn.execute(backend)).scalar_one()
            assert replaced != first
        finally:
            await db.dispose()
