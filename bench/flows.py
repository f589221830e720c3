"""Order paths driven through the API, as integrators, approvers, the warehouse and finance do.

Each flow checks every answer's status and raises `FlowError` on anything unexpected; the
suite counts such an order as lost. `Timings` collects per-call latencies when given.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bench.client import ApiClient

T = TypeVar("T")

# Order shapes (the API's default approval limits: 50,000 single level, 200,000 two levels).
AUTO_QTY, AUTO_PRICE = 10, 120  # 1,200: auto-approved by `system`
L1_QTY, L1_PRICE = 60, 1000  # 60,000: a supervisor approves
L2_QTY, L2_PRICE = 250, 1000  # 250,000: supervisor, then manager
SHORT_QTY, SHORT_STOCK = 5, 2  # 3 units short: a production order


class FlowError(RuntimeError):
    pass


@dataclass
class Timings:
    """Latencies in milliseconds by call name."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    async def time(self, name: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        result = await call
        self.samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
        return result


async def _timed(timings: Timings | None, name: str, call: Awaitable[T]) -> T:
    return await timings.time(name, call) if timings else await call


def expect(order: dict[str, Any], status: str, step: str) -> dict[str, Any]:
    if order.get("status") != status:
        raise FlowError(
            f"{order.get('order_no')}: after {step} expected {status}, got {order.get('status')}"
        )
    return order


def ready_shipment(order: dict[str, Any]) -> str:
    ready = [s["id"] for s in order.get("shipments", []) if s.get("status") == "ready"]
    if len(ready) != 1:
        raise FlowError(f"{order.get('order_no')}: expected one ready shipment, got {ready}")
    return str(ready[0])


def new_order_no(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


@dataclass
class Fixture:
    """A customer and a product a flow orders."""

    customer_id: str
    sku: str


async def ship_and_settle(
    api: ApiClient, order: dict[str, Any], timings: Timings | None = None, view: bool = False
) -> dict[str, Any]:
    """Dispatch (SHIPPED), deliver (DELIVERED), pay the invoice (COMPLETED)."""
    order_no = str(order["order_no"])
    shipment = ready_shipment(order)
    expect(await _timed(timings, "dispatch", api.dispatch(shipment)), "SHIPPED", "dispatch")
    if view:
        expect(await _timed(timings, "order_view", api.get_order(order_no)), "SHIPPED", "view")
    expect(await _timed(timings, "deliver", api.deliver(shipment)), "DELIVERED", "deliver")
    final = await _timed(timings, "pay", api.pay(order_no, order["total"], f"PAY-{order_no}"))
    return expect(final, "COMPLETED", "payment")


async def auto_approved(
    api: ApiClient,
    fixture: Fixture,
    prefix: str,
    timings: Timings | None = None,
    view: bool = False,
) -> str:
    """Credit terms, stock in hand: submit (READY_TO_SHIP), dispatch, deliver, pay."""
    order_no = new_order_no(prefix)
    lines = [{"sku": fixture.sku, "quantity": AUTO_QTY}]
    order = await _timed(timings, "submit", api.submit(order_no, fixture.customer_id, lines))
    expect(order, "READY_TO_SHIP", "submit")
    if view:
        expect(
            await _timed(timings, "order_view", api.get_order(order_no)), "READY_TO_SHIP", "view"
        )
    await ship_and_settle(api, order, timings, view)
    return order_no


async def approved(
    api: ApiClient,
    fixture: Fixture,
    prefix: str,
    levels: int = 1,
    timings: Timings | None = None,
    view: bool = False,
) -> str:
    """Above the auto-approval limit: submit (PENDING_APPROVAL), approve at each level, ship,
    settle. `fixture`'s product must cost L1_PRICE (L2_PRICE) per unit."""
    order_no = new_order_no(prefix)
    quantity = L1_QTY if levels == 1 else L2_QTY
    lines = [{"sku": fixture.sku, "quantity": quantity}]
    order = await _timed(timings, "submit", api.submit(order_no, fixture.customer_id, lines))
    expect(order, "PENDING_APPROVAL", "submit")
    if view:
        await _timed(timings, "order_view", api.get_order(order_no))
    for level in range(1, levels + 1):
        order = await _timed(timings, "approve", api.approve(order_no, level))
    expect(order, "READY_TO_SHIP", "approval")
    await ship_and_settle(api, order, timings, view)
    return order_no


async def park(api: ApiClient, fixture: Fixture, prefix: str) -> str:
    """An order that waits for a supervisor (PENDING_APPROVAL), its deadline ladders armed."""
    order_no = new_order_no(prefix)
    lines = [{"sku": fixture.sku, "quantity": L1_QTY}]
    expect(await api.submit(order_no, fixture.customer_id, lines), "PENDING_APPROVAL", "submit")
    return order_no


async def production_shortage(api: ApiClient, fixture: Fixture, prefix: str) -> str:
    """Fewer in stock than ordered (`SHORT_STOCK`): IN_PRODUCTION until the plant reports."""
    order_no = new_order_no(prefix)
    lines = [{"sku": fixture.sku, "quantity": SHORT_QTY}]
    order = expect(
        await api.submit(order_no, fixture.customer_id, lines), "IN_PRODUCTION", "submit"
    )
    (production_order,) = order["production_orders"]
    order = expect(
        await api.complete_production(production_order["id"]), "READY_TO_SHIP", "production"
    )
    await ship_and_settle(api, order)
    return order_no


async def cancelled(api: ApiClient, fixture: Fixture, prefix: str) -> str:
    """Auto-approved and picked, then cancelled: pick list withdrawn, stock released."""
    order_no = new_order_no(prefix)
    lines = [{"sku": fixture.sku, "quantity": AUTO_QTY}]
    expect(await api.submit(order_no, fixture.customer_id, lines), "READY_TO_SHIP", "submit")
    expect(await api.cancel(order_no), "CANCELLED", "cancel")
    return order_no
