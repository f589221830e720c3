"""The worker is killed (SIGKILL) with orders at every stage, between steps and inside every
step; a new worker process rebuilds each order from its history and finishes it, and the
database shows every effect once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from sqlalchemy import text

from api.main import create_app
from domain.messages import ActivityName
from settings import Settings
from store.db import Database
from tests.auth import ActAs
from tests.conftest import create_customer, create_product, unique
from tests.helpers import post_ok, retried, submit_ok, worker_environment
from tests.test_cancellation import assert_nothing_left, ledger

DISPATCH = {"carrier": "SF", "tracking_no": "K"}


def start_worker(
    own: Settings, module: str = "worker", env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module],
        env=worker_environment(own) | (env or {}),
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
                for cust, terms in ((customer, "net_30"), (prepaid, "prepaid")):
                    await create_customer(
                        api, customer_id=cust, credit_limit=10**6, payment_terms=terms
                    )
                for item, on_hand in ((sku, 10), (made, 3)):
                    await create_product(
                        api, sku=item, unit_price=10, stock_on_hand=on_hand, safety_stock=0
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


# Every database step these orders take; the worker dies once right after each commits.
KILL_AFTER = [
    ActivityName.VALIDATE_ORDER,
    ActivityName.RESERVE_STOCK,
    ActivityName.PLAN_PRODUCTION,
    ActivityName.CREATE_SHIPMENT,
    ActivityName.ISSUE_INVOICE,
    ActivityName.SAVE_ORDER_VIEW,
    ActivityName.PLAN_DEADLINES,
    ActivityName.RECORD_PRODUCTION,
    ActivityName.RECORD_PAYMENT,
    ActivityName.CHECK_CREDIT,
    ActivityName.DISPATCH_SHIPMENT,
    ActivityName.DELIVER_SHIPMENT,
    ActivityName.CANCEL_SHIPMENTS,
    ActivityName.CANCEL_PRODUCTION_ORDERS,
    ActivityName.REFUND_PAYMENTS,
    ActivityName.CANCEL_INVOICES,
    ActivityName.RELEASE_RESERVATIONS,
]


class Supervised:
    """A worker process started again whenever it dies, as systemd or Kubernetes would."""

    def __init__(self, own: Settings, marks: Path) -> None:
        self.own = own
        self.env = {"FAULT_KILL_AFTER": ",".join(KILL_AFTER), "FAULT_MARKS": str(marks)}
        self.deaths = 0
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        return start_worker(self.own, "tests.fault_worker", self.env)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.process.poll() is not None:
                self.deaths += 1
                self.process = self._start()

    async def __aenter__(self) -> Supervised:
        self.watch = asyncio.create_task(self._watch())
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.watch.cancel()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


def marked(marks: Path) -> list[str]:
    """The steps the fault worker died after (one mark file each)."""
    return sorted(p.name for p in marks.iterdir())


async def test_worker_killed_inside_every_step_loses_and_repeats_nothing(
    settings: Settings, db: Database, tmp_path: Path
) -> None:
    own = settings.model_copy(
        update={
            "task_queue": f"kill-in-{uuid.uuid4().hex[:6]}",
            "command_timeout_seconds": 20.0,
            # A step on a dead worker goes to the next one after this long.
            "workflow_task_timeout_seconds": 2.0,
        }
    )
    tag = uuid.uuid4().hex[:6].upper()
    credit, prepaid = f"IC-{tag}", f"IP-{tag}"
    sku, made, cancel_sku, refund_sku, cancel_made = (
        f"{prefix}-{tag}" for prefix in ("IS", "IM", "ICS", "IRS", "ICM")
    )
    app = create_app(own)
    async with app.router.lifespan_context(app), Supervised(own, tmp_path) as worker:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            auth=ActAs(app), transport=transport, base_url="http://test", timeout=60
        ) as api:
            for customer, terms in ((credit, "net_30"), (prepaid, "prepaid")):
                await create_customer(
                    api, customer_id=customer, credit_limit=10**6, payment_terms=terms
                )
            for item, stock in (
                (sku, 100),
                (made, 1),
                (cancel_sku, 5),
                (refund_sku, 5),
                (cancel_made, 1),
            ):
                await create_product(
                    api, sku=item, unit_price=10, stock_on_hand=stock, safety_stock=0
                )

            async def order(customer: str, item: str, quantity: int, **extra: Any) -> str:
                order_no = unique("KI")
                body = {
                    "order_no": order_no,
                    "customer_id": customer,
                    "lines": [{"sku": item, "quantity": quantity}],
                    **extra,
                }
                await retried(api, "/orders", body, key=order_no)
                return order_no

            (
                plain,
                rush,
                short,
                paid_first,
                held,
                cancelled,
                refunded,
                unmade,
            ) = await asyncio.gather(
                order(credit, sku, 1),
                order(credit, sku, 1, priority="rush"),
                order(credit, made, 3),
                order(prepaid, sku, 1),
                order(credit, sku, 1),
                order(credit, cancel_sku, 2),
                order(prepaid, refund_sku, 2),
                order(credit, cancel_made, 3),
            )

            async def view(order_no: str) -> dict[str, Any]:
                return dict((await api.get(f"/orders/{order_no}")).json())

            async def hold_and_release(order_no: str) -> None:
                await retried(api, f"/orders/{order_no}/hold", {"reason": "k"}, key=f"h{order_no}")
                await retried(api, f"/orders/{order_no}/release", {}, key=f"r{order_no}")

            async def pay(order_no: str) -> None:
                total = (await view(order_no))["total"]
                body = {"amount": total, "method": "bank", "reference": f"P-{order_no}"}
                await retried(api, f"/orders/{order_no}/payments", body, key=f"p{order_no}")

            async def produce(order_no: str) -> None:
                for po in (await view(order_no))["production_orders"]:
                    await retried(api, f"/production-orders/{po['id']}/complete", key=po["id"])

            await asyncio.gather(
                retried(api, f"/orders/{rush}/approve", {}, key=f"a{rush}"),
                produce(short),
                pay(paid_first),
                pay(refunded),
                hold_and_release(held),
            )
            cancel = {"reason_code": "customer_request"}
            await asyncio.gather(
                *(
                    retried(api, f"/orders/{o}/cancel", cancel, key=f"c{o}")
                    for o in (cancelled, refunded, unmade)
                )
            )

            async def finish(order_no: str) -> None:
                for shipment in (await view(order_no))["shipments"]:
                    url = f"/shipments/{shipment['id']}"
                    await retried(api, f"{url}/dispatch", DISPATCH, key=f"d{shipment['id']}")
                    await retried(api, f"{url}/deliver", {"signed_by": "W"}, key=shipment["id"])
                if (await view(order_no))["status"] != "COMPLETED":
                    await pay(order_no)

            finishing = (plain, rush, short, paid_first, held)
            await asyncio.gather(*(finish(o) for o in finishing))
            statuses = {o: (await view(o))["status"] for o in (*finishing, cancelled, refunded)}
        faults = worker.deaths

    # Every step really was interrupted once, right after its commit.
    assert marked(tmp_path) == sorted(KILL_AFTER)
    assert faults == len(KILL_AFTER)
    assert statuses == dict.fromkeys(finishing, "COMPLETED") | {
        cancelled: "CANCELLED",
        refunded: "CANCELLED",
    }
    # Each effect exactly once: one shipment, invoice and payment per completed order ...
    for order_no in finishing:
        item = made if order_no == short else sku
        after = await ledger(db, order_no, item)
        assert (after.shipments, after.invoices) == (["delivered"], ["paid"]), order_no
        assert (after.payments, after.refunds, after.credit_notes) == (1, 0, 0), order_no
        assert after.production == (["completed"] if order_no == short else []), order_no
    shipped = await ledger(db, plain, sku)
    assert (shipped.stock_on_hand, shipped.reserved) == (96, 0)  # four orders of one shipped
    produced = await ledger(db, short, made)
    assert (produced.stock_on_hand, produced.reserved) == (0, 0)  # 1 in stock + 2 made, shipped
    # ... and every cancelled order undone once: stock back, money back once, nothing open.
    for order_no, item, before in (
        (cancelled, cancel_sku, 5),
        (refunded, refund_sku, 5),
        (unmade, cancel_made, 1),
    ):
        after = await ledger(db, order_no, item)
        assert_nothing_left(after, before)
    assert (await ledger(db, refunded, refund_sku)).refunds == 1
    assert (await ledger(db, unmade, cancel_made)).production == ["cancelled"]
