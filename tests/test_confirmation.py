"""Confirmation (确认) on the real stack: the promise an approved, reserved order is given, how
it moves, and orders from before confirmation existed."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import WorkflowHistory

from domain.calendar import BusinessCalendar, Duration
from domain.orders import OrderView
from domain.policy import CalendarPolicy
from settings import calendar_years
from tests.conftest import CONVERTER
from tests.helpers import Factory, eventually, submit_ok

HISTORIES = Path(__file__).parent / "histories"
WHO = {"requested_by": "sales.li", "reason": "customer called"}


def company_calendar() -> BusinessCalendar:
    return CalendarPolicy().build(calendar_years())


def from_stock(confirmed_at: datetime, transit: int) -> tuple[date, date]:
    """Ship: three working days (the dispatch SLA) after confirmation; arrive after transit."""
    calendar = company_calendar()
    ship = calendar.local_date(calendar.add(confirmed_at, Duration(days=3)))
    return ship, calendar.working_days_after(ship, transit)


async def test_an_auto_approved_order_is_confirmed_with_its_promise(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(transit_days=2)
    assert customer["transit_days"] == 2
    product = await new_product(stock_on_hand=50)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    assert order["status"] == "READY_TO_SHIP"
    promise = order["promise"]
    ship, delivery = from_stock(datetime.fromisoformat(promise["confirmed_at"]), 2)
    assert promise["ship_date"] == str(ship)
    assert promise["promised_date"] == promise["first_promised_date"] == str(delivery)
    assert promise["basis"] == "from stock" and promise["basis_zh"] == "现货"
    assert promise["history"] == [] and promise["warning"] is None
    assert order["promise_summary"] == f"promised {delivery} (from stock)"
    events = [(e["event"], e["status"]) for e in order["timeline"]]
    assert ("order_confirmed", "CONFIRMED") in events
    assert events.index(("order_confirmed", "CONFIRMED")) > [e for e, _ in events].index(
        "stock_reserved"
    )
    # The read model (GET) holds the same promise the workflow answered with.
    stored = (await api.get(f"/orders/{order['order_no']}")).json()
    assert stored["promise"]["promised_date"] == str(delivery)


async def test_a_short_order_is_promised_after_its_production_order(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()  # no transit days: the policy's default (1)
    product = await new_product(stock_on_hand=4, safety_stock=0, lead_time_days=5)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    assert order["status"] == "IN_PRODUCTION"
    po = order["production_orders"][0]
    promise = order["promise"]
    assert promise["basis"] == f"line 1 after production order {po['id']} due {po['due_date']}"
    line = promise["lines"][0]
    assert [p["quantity"] for p in line["parts"]] == [4, 6]
    calendar = company_calendar()
    due = date.fromisoformat(po["due_date"])
    ship = calendar.local_date(calendar.add(calendar.close_of_business_on(due), Duration(days=3)))
    assert promise["ship_date"] == str(ship)
    assert promise["promised_date"] == str(calendar.working_days_after(ship, 1))


async def test_a_requested_date_too_soon_is_a_warning_with_the_earliest_date(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=50)
    tomorrow = date.today() + timedelta(days=1)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        requested_delivery_date=str(tomorrow),
    )
    promise = order["promise"]
    assert promise["earliest_possible_date"] == promise["promised_date"]
    assert promise["warning"] == (
        f"requested delivery date {tomorrow} is earlier than possible: "
        f"the earliest is {promise['promised_date']}"
    )
    assert "requested_date_too_soon" in [e["event"] for e in order["timeline"]]


async def test_an_amendment_moves_the_promise_and_keeps_the_first(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=20, safety_stock=0, lead_time_days=10)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 5}]
    )
    first = order["promise"]["promised_date"]
    response = await api.patch(
        f"/orders/{order['order_no']}",
        json=WHO | {"lines": [{"sku": product["sku"], "quantity": 30}]},
    )
    assert response.status_code == 200, response.text

    async def moved() -> dict[str, Any]:
        view = (await api.get(f"/orders/{order['order_no']}")).json()
        assert view["promise"]["history"], view["promise"]
        return dict(view)

    view = await eventually(moved)
    promise = view["promise"]
    assert promise["first_promised_date"] == first
    assert promise["promised_date"] > first
    (change,) = promise["history"]
    assert (change["old"], change["new"], change["reason"]) == (
        first,
        promise["promised_date"],
        "amendment",
    )
    assert "promise_moved" in [e["event"] for e in view["timeline"]]


async def test_orders_started_before_confirmation_finish_without_a_promise() -> None:
    """Histories recorded before the step (tests/histories/v3) replay (tests/test_replay.py)
    and their orders end with no promise: the view says so."""
    for name in ("auto_approved", "production_shortage", "partial_delivery"):
        history = WorkflowHistory.from_json(name, (HISTORIES / "v3" / f"{name}.json").read_text())
        markers = [
            e.marker_recorded_event_attributes.details
            for e in history.events
            if e.HasField("marker_recorded_event_attributes")
        ]
        assert not any("promise_order" in str(details) for details in markers)
        completed = history.events[-1].workflow_execution_completed_event_attributes
        (view,) = await CONVERTER.decode(list(completed.result.payloads), [OrderView])
        assert view.promise is None
        assert view.promise_summary == "no promise recorded"
