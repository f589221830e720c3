"""The Temporal server is killed (SIGKILL) with orders in flight and started again on its
persistent state: the API answers 503 with Retry-After meanwhile (reads fall back to the read
model), and every order goes on afterwards, once."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

import temporal_client
from api.main import create_app
from settings import Settings
from store import migrate
from store.db import Database
from tests.auth import ActAs
from tests.conftest import create_customer, create_product, temporal_cli, unique
from tests.helpers import eventually, retried, submit_ok
from worker import build_worker
from workflows import search_attributes

ORDERS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db_file: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--db-filename",
            str(db_file),
            "--log-level",
            "error",
            *search_attributes.cli_flags(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class Stack:
    """Our own Temporal dev server (persistent SQLite), worker and API; the server can die."""

    own: Settings
    db_file: Path
    port: int
    server: subprocess.Popen[bytes] = field(init=False)
    db: Database = field(init=False)
    api: httpx.AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.server = start_server(self.db_file, self.port)
        self.db = Database(self.own.database_url, audit_seal=self.own.audit_seal())

    def kill(self) -> None:
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()

    async def restart(self) -> None:
        self.server = start_server(self.db_file, self.port)
        await reachable(self.own)


async def reachable(own: Settings) -> None:
    async def connected() -> None:
        try:
            await temporal_client.connect(own)
        except Exception as exc:
            raise AssertionError(exc) from exc

    await eventually(connected, within=30)


@asynccontextmanager
async def stack(settings: Settings, tmp_path: Path) -> AsyncIterator[Stack]:
    port = free_port()
    own = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{port}",
            "task_queue": f"restart-{uuid.uuid4().hex[:6]}",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}",
            "command_timeout_seconds": 3.0,
        }
    )
    running = Stack(own, tmp_path / "temporal.db", port)
    try:
        await reachable(own)
        client = await temporal_client.connect(own)
        await migrate.upgrade(own.database_url)
        app = create_app(own)
        async with app.router.lifespan_context(app), build_worker(client, running.db, own):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
            ) as api:
                running.api = api
                await create_customer(api, customer_id="C1", credit_limit=10**7)
                await create_product(
                    api, sku="S1", unit_price=10, stock_on_hand=1000, safety_stock=0
                )
                yield running
        await running.db.dispose()
    finally:
        running.kill()


async def test_temporal_killed_and_restarted_loses_no_order(
    settings: Settings, tmp_path: Path
) -> None:
    async with stack(settings, tmp_path) as running:
        api = running.api
        orders = [
            await submit_ok(
                api, customer_id="C1", lines=[{"sku": "S1", "quantity": 1}], priority="rush"
            )
            for _ in range(ORDERS)
        ]
        assert {o["status"] for o in orders} == {"PENDING_APPROVAL"}

        running.kill()
        response = await api.post(
            "/orders",
            json={"customer_id": "C1", "lines": [{"sku": "S1", "quantity": 1}], "entered_by": "x"},
        )
        assert response.status_code == 503 and response.headers["retry-after"]
        response = await api.post(
            f"/orders/{orders[0]['order_no']}/approve",
            json={"approver": "sup", "role": "approver_l1"},
        )
        assert response.status_code == 503
        view = await api.get(f"/orders/{orders[0]['order_no']}")  # from the read model
        assert view.status_code == 200 and view.json()["status"] == "PENDING_APPROVAL"

        await running.restart()

        async def approve(order_no: str) -> None:
            # A 503 may hide an approval that went through: retry under the same
            # Idempotency-Key and get its answer, not a 409.
            approved = await retried(api, f"/orders/{order_no}/approve", {}, key=f"a-{order_no}")
            assert approved["status"] == "READY_TO_SHIP"

        await asyncio.gather(*(approve(o["order_no"]) for o in orders))
        product = (await api.get("/products/S1")).json()
        assert product["reserved"] == ORDERS  # each order reserved once
        page = (await api.get("/orders", params={"customer_id": "C1"})).json()
        assert page["total"] == ORDERS
        assert {o["status"] for o in page["items"]} == {"READY_TO_SHIP"}


CLIENTS, PER_CLIENT = 8, 6


async def test_temporal_killed_under_load_loses_and_repeats_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    """Eight clients drive orders end to end (enter, dispatch, deliver, pay) without pause;
    the server dies in the middle and comes back: every order completes, each effect once."""
    completed: list[str] = []
    async with stack(settings, tmp_path) as running:
        api = running.api

        async def client() -> None:
            for _ in range(PER_CLIENT):
                order_no = unique("TL")
                body = {"order_no": order_no, "customer_id": "C1"} | {
                    "lines": [{"sku": "S1", "quantity": 2}]
                }
                order = await retried(api, "/orders", body, key=order_no)
                shipment = f"/shipments/{order['shipments'][0]['id']}"
                await retried(
                    api,
                    f"{shipment}/dispatch",
                    {"carrier": "SF", "tracking_no": order_no},
                    key=f"d-{order_no}",
                )
                await retried(
                    api,
                    f"{shipment}/deliver",
                    {"signed_by": "W"},
                    key=f"v-{order_no}",
                )
                paid = await retried(
                    api,
                    f"/orders/{order_no}/payments",
                    {"amount": order["total"], "method": "bank", "reference": order_no},
                    key=f"p-{order_no}",
                )
                assert paid["status"] == "COMPLETED", paid
                completed.append(order_no)

        clients = [asyncio.create_task(client()) for _ in range(CLIENTS)]
        await eventually(lambda: _at_least(completed, CLIENTS), within=120)
        running.kill()  # with every client in the middle of an order
        in_flight = CLIENTS * PER_CLIENT - len(completed)
        # A new command meanwhile is told to come back; those in flight wait or get the same.
        probe = await api.post(
            "/orders", json={"customer_id": "C1", "lines": [{"sku": "S1", "quantity": 1}]}
        )
        assert probe.status_code == 503 and probe.headers["retry-after"], probe.text
        await asyncio.sleep(running.own.command_timeout_seconds + 2)
        await running.restart()
        await asyncio.gather(*clients)

        assert len(completed) == len(set(completed)) == CLIENTS * PER_CLIENT
        async with running.db.reader() as session:

            async def one(sql: str) -> Any:
                return (await session.exec(text(sql))).one()  # type: ignore[call-overload]

            # Per order: one reservation, shipment, invoice and payment; none twice.
            counts = await one(
                "SELECT COUNT(DISTINCT o.order_no),"
                " (SELECT COUNT(*) FROM reservation), (SELECT COUNT(*) FROM shipment),"
                " (SELECT COUNT(*) FROM invoice), (SELECT COUNT(*) FROM payment),"
                " (SELECT COUNT(*) FROM orderrecord WHERE status = 'COMPLETED')"
                " FROM orderrecord o"
            )
            stock = await one("SELECT stock_on_hand, reserved FROM product WHERE sku = 'S1'")
    total = CLIENTS * PER_CLIENT
    assert tuple(counts) == (total,) * 6
    assert tuple(stock) == (1000 - 2 * total, 0)
    assert in_flight > 0


async def _at_least(items: list[str], n: int) -> None:
    assert len(items) >= n
