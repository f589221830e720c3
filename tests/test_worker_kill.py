"""The worker is killed (SIGKILL) with orders at every stage; a new worker process rebuilds
each order from its history and finishes it, and the database shows every effect once."""

from __future__ import annotations

import signal
import subprocess
import sys
import uuid
from typing import Any

import httpx
from sqlalchemy import text

from api.main import create_app
from settings import Settings
from store.db import Database
from tests.auth import ActAs
from tests.helpers import post_ok, submit_ok, worker_environment

DISPATCH = {"carrier": "SF", "tracking_no": "K"}


def start_worker(own: Settings) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        env=worker_environment(own),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_orders_at_every_stage_survive_a_killed_worker(
    settings: Settings, db: Database
) -> None:
    own = settings.model_copy(
        update={"task_queue": f"kill-all-{uuid.uuid4().hex[:6]}", "command_timeout_seconds": 30.0}
    )
    tag = uuid.uuid4().hex[:6].upper()
    customer, prepaid, sku, made = f"CK-{tag}", f"CP-{tag}", f"SK-{tag}", f"MK-{tag}"
    app = create_app(own)
    worker = start_worker(own)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
            ) as api:
                await post_ok(
                    api,
                    "/customers",
                    {"customer_id": customer, "name": "k", "region": "e", "credit_limit": 10**6},
                    status=201,
                )
                await post_ok(
                    api,
                    "/customers",
                    {
                        "customer_id": prepaid,
                        "name": "p",
                        "region": "e",
                        "credit_limit": 10**6,
                        "payment_terms": "prepaid",
                    },
                    status=201,
                )
                await post_ok(
                    api,
                    "/products",
                    {"sku": sku, "name": "k", "unit_price": 10, "stock_on_hand": 10},
                    status=201,
                )
                await post_ok(
                    api,
                    "/products",
                    {"sku": made, "name": "m", "unit_price": 10, "stock_on_hand": 3},
                    status=201,
                )

                async def order(
                    cust: str, quantity: int, item: str = sku, **extra: Any
                ) -> dict[str, Any]:
                    return await submit_ok(
                        api, customer_id=cust, lines=[{"sku": item, "quantity": quantity}], **extra
                    )

                pending = await order(customer, 1, priority="rush")  # PENDING_APPROVAL
                awaiting = await order(prepaid, 1)  # AWAITING_PAYMENT
                ready = await order(customer, 1)  # READY_TO_SHIP
                shipped = await order(customer, 1)
                shipped = await post_ok(
                    api, f"/shipments/{shipped['shipments'][0]['id']}/dispatch", DISPATCH
                )
                delivered = await order(customer, 1)
                await post_ok(
                    api, f"/shipments/{delivered['shipments'][0]['id']}/dispatch", DISPATCH
                )
                delivered = await post_ok(
                    api, f"/shipments/{delivered['shipments'][0]['id']}/deliver", {"signed_by": "W"}
                )
                producing = await order(customer, 5, made)  # 3 in stock: IN_PRODUCTION
                stages = {
                    o["status"] for o in (pending, awaiting, ready, shipped, delivered, producing)
                }
                assert stages == {
                    "PENDING_APPROVAL",
                    "AWAITING_PAYMENT",
                    "READY_TO_SHIP",
                    "SHIPPED",
                    "DELIVERED",
                    "IN_PRODUCTION",
                }

                worker.send_signal(signal.SIGKILL)
                worker.wait()
                worker = start_worker(own)  # a new process: every order replays from its history

                pending = await post_ok(
                    api,
                    f"/orders/{pending['order_no']}/approve",
                    {"approver": "sup", "role": "approver_l1"},
                )
                awaiting = await post_ok(
                    api,
                    f"/orders/{awaiting['order_no']}/payments",
                    {"amount": 10, "method": "bank", "reference": "A"},
                )
                producing = await post_ok(
                    api, f"/production-orders/{producing['production_orders'][0]['id']}/complete"
                )
                for current in (pending, awaiting, ready, shipped, delivered, producing):
                    view = (await api.get(f"/orders/{current['order_no']}")).json()
                    ready_ids = [s["id"] for s in view["shipments"] if s["status"] == "ready"]
                    for shipment in ready_ids:
                        view = await post_ok(api, f"/shipments/{shipment}/dispatch", DISPATCH)
                    for shipment in [
                        s["id"] for s in view["shipments"] if s["status"] == "dispatched"
                    ]:
                        view = await post_ok(
                            api, f"/shipments/{shipment}/deliver", {"signed_by": "W"}
                        )
                    if view["status"] != "COMPLETED":
                        view = await post_ok(
                            api,
                            f"/orders/{view['order_no']}/payments",
                            {"amount": view["total"], "method": "bank", "reference": "Z"},
                        )
                    assert view["status"] == "COMPLETED", view["order_no"]
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()

    async with db.reader() as session:

        async def count(sql: str) -> Any:
            query = text(sql)
            params = {k: v for k, v in (("c", customer), ("p", prepaid)) if f":{k}" in sql}
            return (await session.exec(query.bindparams(**params))).scalar_one()  # type: ignore[call-overload]

        orders = "SELECT order_no FROM orderrecord WHERE customer_id IN (:c, :p)"
        assert (
            await count(
                f"SELECT COUNT(*) FROM orderrecord WHERE order_no IN ({orders}) AND status = 'COMPLETED'"
            )
            == 6
        )
        assert await count(f"SELECT COUNT(*) FROM shipment WHERE order_no IN ({orders})") == 6
        assert await count(f"SELECT COUNT(*) FROM invoice WHERE order_no IN ({orders})") == 6
        assert await count(f"SELECT COUNT(*) FROM payment WHERE order_no IN ({orders})") == 6
        assert await count(f"SELECT COUNT(*) FROM reservation WHERE order_no IN ({orders})") == 6
        assert (
            await count(f"SELECT COUNT(*) FROM productionorder WHERE order_no IN ({orders})") == 1
        )
        stock = "SELECT stock_on_hand * 1000 + reserved FROM product WHERE sku = "
        stocked = await count(f"{stock} '{sku}'")
        produced = await count(f"{stock} '{made}'")
    assert stocked == 5 * 1000  # 10 in stock, 5 shipped, nothing left reserved
    assert produced == 0  # 3 in stock and 2 produced, all 5 shipped
