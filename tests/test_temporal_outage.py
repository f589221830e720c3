"""The Temporal server is killed (SIGKILL) with orders in flight and started again on its
persistent state: the API answers 503 with Retry-After meanwhile (reads fall back to the read
model), and every order goes on afterwards, once."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

import temporal_client
from api.main import create_app
from settings import Settings
from store.db import Database
from tests.auth import ActAs
from tests.conftest import temporal_cli
from tests.helpers import eventually, post_ok, submit_ok
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


async def test_temporal_killed_and_restarted_loses_no_order(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    own = settings.model_copy(
        update={
            "temporal_address": f"127.0.0.1:{port}",
            "task_queue": f"restart-{uuid.uuid4().hex[:6]}",
            "database_url": f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}",
            "command_timeout_seconds": 3.0,
        }
    )
    server = start_server(tmp_path / "temporal.db", port)
    try:

        async def connected() -> None:
            try:
                await temporal_client.connect(own)
            except Exception as exc:
                raise AssertionError(exc) from exc

        await eventually(connected, within=30)
        client = await temporal_client.connect(own)
        db = Database(own.database_url)
        await db.create_schema()
        app = create_app(own)
        async with app.router.lifespan_context(app), build_worker(client, db, own):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
            ) as api:
                await post_ok(
                    api,
                    "/customers",
                    {"customer_id": "C1", "name": "c", "region": "e", "credit_limit": 10**6},
                    status=201,
                )
                await post_ok(
                    api,
                    "/products",
                    {"sku": "S1", "name": "s", "unit_price": 10, "stock_on_hand": 100},
                    status=201,
                )
                orders = [
                    await submit_ok(
                        api, customer_id="C1", lines=[{"sku": "S1", "quantity": 1}], priority="rush"
                    )
                    for _ in range(ORDERS)
                ]
                assert {o["status"] for o in orders} == {"PENDING_APPROVAL"}

                server.send_signal(signal.SIGKILL)
                server.wait()
                response = await api.post(
                    "/orders",
                    json={
                        "customer_id": "C1",
                        "lines": [{"sku": "S1", "quantity": 1}],
                        "entered_by": "x",
                    },
                )
                assert response.status_code == 503 and response.headers["retry-after"]
                response = await api.post(
                    f"/orders/{orders[0]['order_no']}/approve",
                    json={"approver": "sup", "role": "approver_l1"},
                )
                assert response.status_code == 503
                view = await api.get(f"/orders/{orders[0]['order_no']}")  # from the read model
                assert view.status_code == 200 and view.json()["status"] == "PENDING_APPROVAL"

                server = start_server(tmp_path / "temporal.db", port)
                await eventually(connected, within=30)

                async def approve(order_no: str) -> None:
                    for _ in range(60):
                        # A 503 may hide an approval that went through: retry under
                        # the same Idempotency-Key and get its answer, not a 409.
                        response = await api.post(
                            f"/orders/{order_no}/approve",
                            json={"approver": "sup", "role": "approver_l1"},
                            headers={"Idempotency-Key": f"approve-{order_no}"},
                        )
                        if response.status_code == 200:
                            assert response.json()["status"] == "READY_TO_SHIP"
                            return
                        assert response.status_code == 503, response.text
                        await asyncio.sleep(0.5)
                    pytest.fail("Temporal did not come back")

                await asyncio.gather(*(approve(o["order_no"]) for o in orders))
                product = (await api.get("/products/S1")).json()
                assert product["reserved"] == ORDERS  # each order reserved once
                page = (await api.get("/orders", params={"customer_id": "C1"})).json()
                assert page["total"] == ORDERS
                assert {o["status"] for o in page["items"]} == {"READY_TO_SHIP"}
        await db.dispose()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
