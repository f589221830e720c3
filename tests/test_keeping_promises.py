"""Keeping the promise (交期承诺) on the real stack: a late production order re-promises the
order; the list finds orders whose promise is late or at risk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from activities.read_model import ReadModelActivities
from domain.calendar import BusinessCalendar
from domain.messages import SaveOrderViewInput
from domain.orders import DeliveryPolicy, OrderView, Priority, status_label
from domain.policy import CalendarPolicy
from domain.promise import PromiseView
from domain.statuses import OrderStatus
from settings import calendar_years
from store.db import Database
from tests.conftest import unique
from tests.helpers import Factory, eventually, post_ok, submit_ok


def company_calendar() -> BusinessCalendar:
    return CalendarPolicy().build(calendar_years())


async def test_the_list_filters_late_and_at_risk_promises(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, db: Database
) -> None:
    """`late`: the promised date has passed and the goods have not reached the customer;
    `at_risk`: it is today or the next working day. Delivered or ended orders are neither."""
    customer = await new_customer(customer_group="sla-dispatch", transit_days=0)
    cid = customer["customer_id"]
    product = await new_product(stock_on_hand=50)
    # Dispatch within seconds (this tier's SLA), no transit: promised for today.
    today_order = await submit_ok(
        api, customer_id=cid, lines=[{"sku": product["sku"], "quantity": 1}]
    )
    calendar = company_calendar()
    today = calendar.local_date(datetime.now(UTC))
    assert today_order["promise"]["promised_date"] == str(calendar.working_days_after(today, 0))

    saves = ReadModelActivities(db)
    yesterday = today - timedelta(days=1)

    async def saved(status: OrderStatus, promised: date) -> str:
        order_no = unique("SO")
        view = OrderView(
            order_no=order_no,
            workflow_id=f"order-{order_no}",
            status=status,
            status_label=status_label(status),
            customer_id=cid,
            entered_by="sales",
            priority=Priority.NORMAL,
            received_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
            promise=PromiseView(
                confirmed_at=datetime.now(UTC),
                first_promised_date=promised,
                promised_date=promised,
                ship_date=promised,
                first_delivery_date=promised,
                basis="from stock",
                basis_zh="现货",
                delivery_policy=DeliveryPolicy.COMPLETE,
            ),
        )
        await saves.save_order_view(SaveOrderViewInput(view=view, seq=1, fingerprint="f"))
        return order_no

    late = await saved(OrderStatus.READY_TO_SHIP, yesterday)
    await saved(OrderStatus.DELIVERED, yesterday)  # kept, if late
    await saved(OrderStatus.SHIPPED, today + timedelta(days=30))  # far off

    async def listed(which: str) -> list[str]:
        response = await api.get("/orders", params={"customer_id": cid, "promise": which})
        assert response.status_code == 200, response.text
        return [item["order_no"] for item in response.json()["items"]]

    assert await listed("late") == [late]
    if calendar.is_working_day(today):
        assert await listed("at_risk") == [today_order["order_no"]]
    page = (await api.get("/orders", params={"customer_id": cid})).json()["items"]
    first = next(item for item in page if item["order_no"] == late)
    assert (first["promised_date"], first["first_promised_date"], first["promise_basis"]) == (
        str(yesterday),
        str(yesterday),
        "from stock",
    )
    bad = await api.get("/orders", params={"promise": "soon"})
    assert bad.status_code == 422


async def test_a_late_production_order_re_promises_the_order(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """This tier's production deadline is two seconds: breached, the order is promised again
    (its production order expected the working day after its due date) with the reason."""
    customer = await new_customer(customer_group="sla-production")
    product = await new_product(stock_on_hand=0, safety_stock=0, lead_time_days=3)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    assert order["status"] == "IN_PRODUCTION"
    po = order["production_orders"][0]
    first = order["promise"]["promised_date"]

    async def re_promised() -> dict[str, Any]:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["promise"]["history"], view["promise"]
        return dict(view)

    view = await eventually(re_promised, within=20)
    promise = view["promise"]
    (change,) = promise["history"]
    assert change["reason"] == f"production order {po['id']} late"
    assert (change["old"], change["new"]) == (first, promise["promised_date"])
    assert promise["first_promised_date"] == first < promise["promised_date"]
    calendar = company_calendar()
    expected = calendar.working_days_after(date.fromisoformat(po["due_date"]), 1)
    assert (
        promise["basis"] == f"line 1 after production order {po['id']} (late) expected {expected}"
    )
    events = [e["event"] for e in view["timeline"]]
    assert "deadline_escalation" in events and "promise_moved" in events


async def test_a_released_hold_re_promises_but_never_from_stock_it_does_not_hold(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """Short and waiting for production, the order is held; meanwhile goods come in, free for
    anyone to reserve. On release it is promised again, still after its production order: a
    promise counts only what the order holds (no unit is promised twice)."""
    customer = await new_customer()
    product = await new_product(stock_on_hand=0, safety_stock=0, lead_time_days=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    promise = order["promise"]
    order_no = order["order_no"]
    await post_ok(api, f"/orders/{order_no}/hold", {"reason": "customer asked to wait"})
    await post_ok(api, f"/products/{product['sku']}/stock", {"delta": 20, "reason": "returned"})
    released = await post_ok(api, f"/orders/{order_no}/release", {"comment": "go on"})
    again = released["promise"]
    assert again["basis"] == promise["basis"] and "after production order" in again["basis"]
    # Its production order is due as before: nothing moved.
    assert again["promised_date"] == promise["promised_date"] and again["history"] == []
