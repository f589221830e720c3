"""Confirmation (确认) on the real stack: the promise an approved, reserved order is given, how
it moves, and orders from before confirmation existed."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHistory

from domain.calendar import BusinessCalendar, Duration
from domain.orders import OrderView
from domain.policy import CalendarPolicy
from settings import Settings, calendar_years
from store.db import Database
from tests.conftest import CONVERTER
from tests.helpers import Factory, api_for, eventually, post_ok, submit_ok
from worker import build_worker

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
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, temporal_client: Client
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
    # The dispatch deadline is the promised ship date's close of business.
    (dispatch,) = [d for d in order["deadlines"] if d["sla"] == "dispatch"]
    assert datetime.fromisoformat(dispatch["due_at"]) == company_calendar().close_of_business(ship)
    events = [(e["event"], e["status"]) for e in order["timeline"]]
    assert ("order_confirmed", "CONFIRMED") in events
    assert events.index(("order_confirmed", "CONFIRMED")) > [e for e, _ in events].index(
        "stock_reserved"
    )
    # The read model (GET) holds the same promise the workflow answered with.
    stored = (await api.get(f"/orders/{order['order_no']}")).json()
    assert stored["promise"]["promised_date"] == str(delivery)
    # Ops see it in the Temporal UI.
    handle = temporal_client.get_workflow_handle(order["workflow_id"])
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert f"**Promised:** {delivery} (first {delivery}); from stock" in metadata.current_details
    # The delivery deadline is the promise: the close of business on the promised date.
    shipment = order["shipments"][0]["id"]
    shipped = await post_ok(
        api, f"/shipments/{shipment}/dispatch", {"carrier": "SF", "tracking_no": "T"}
    )
    (deadline,) = [d for d in shipped["deadlines"] if d["sla"] == "delivery"]
    due = company_calendar().close_of_business(delivery)
    assert datetime.fromisoformat(deadline["due_at"]) == due


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
    # Dispatch is due once production and the dispatch window are through, not 3 days in.
    (dispatch,) = [d for d in order["deadlines"] if d["sla"] == "dispatch"]
    assert datetime.fromisoformat(dispatch["due_at"]) == calendar.close_of_business(ship)


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
    # A new requested date is checked against the promise: met, no warning.
    later = date.fromisoformat(promise["promised_date"]) + timedelta(days=7)
    amended = await api.patch(
        f"/orders/{order['order_no']}", json=WHO | {"requested_delivery_date": str(later)}
    )
    assert amended.status_code == 200, amended.text
    assert amended.json()["promise"]["warning"] is None
    assert amended.json()["promise"]["earliest_possible_date"] is None
    assert amended.json()["promise"]["promised_date"] == promise["promised_date"]


async def test_the_policy_can_make_a_requested_date_too_soon_an_approval_reason(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
    tmp_path: Path,
) -> None:
    policy = yaml.safe_load(settings.orders_policy_file.read_text())
    policy["promise"] = {"requested_date_too_soon": "approval"}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy, allow_unicode=True))
    own = settings.model_copy(
        update={
            "task_queue": f"promise-{uuid.uuid4().hex[:6]}",
            "orders_policy_file": tmp_path / "policy.yaml",
        }
    )
    customer = await new_customer()
    product = await new_product(stock_on_hand=50)
    tomorrow = date.today() + timedelta(days=1)
    async with api_for(own) as own_api, build_worker(temporal_client, db, own):
        order = await submit_ok(
            own_api,
            customer_id=customer["customer_id"],
            lines=[{"sku": product["sku"], "quantity": 1}],
            requested_delivery_date=str(tomorrow),
        )
        assert order["status"] == "PENDING_APPROVAL", order["timeline"]
        (reason,) = order["approval"]["reasons"]
        assert reason["code"] == "requested_date_unachievable"
        assert str(order["promise"]["earliest_possible_date"]) in reason["message"]
        assert order["shipments"] == []  # nothing is picked while it waits
        decision = {"approver": "sup.zhang", "role": "approver_l1"}
        approved = await post_ok(own_api, f"/orders/{order['order_no']}/approve", decision)
        assert approved["status"] == "READY_TO_SHIP"
        assert approved["promise"]["first_promised_date"] == order["promise"]["promised_date"]


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


async def test_the_order_confirmation_as_json_and_printable_html_in_both_languages(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer(payment_terms="net_30")
    product = await new_product(stock_on_hand=50, unit_price=120, name="阀门 <DN50>")
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 10}],
        shipping_address="上海市浦东新区 1 号",
    )
    url = f"/orders/{order['order_no']}/confirmation"
    response = await api.get(url)
    assert response.status_code == 200, response.text
    doc = response.json()
    promised = order["promise"]["promised_date"]
    assert (doc["title"], doc["total"], doc["payment_terms"]) == (
        "Order confirmation",
        1200,
        "net 30 days",
    )
    assert doc["promised_date"] == doc["first_promised_date"] == promised
    (line,) = doc["lines"]
    assert (line["quantity"], line["unit_price"], line["amount"], line["basis"]) == (
        10,
        120,
        1200,
        "from stock",
    )
    zh = (await api.get(url, params={"lang": "zh"})).json()
    assert (zh["title"], zh["payment_terms"], zh["lines"][0]["basis"]) == (
        "订单确认书",
        "月结30天",
        "现货",
    )
    page = await api.get(url, params={"lang": "zh", "format": "html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    html = page.text
    assert "订单确认书" in html and promised in html and "上海市浦东新区 1 号" in html
    assert "阀门 &lt;DN50&gt;" in html  # escaped
    english = (await api.get(url, params={"format": "html"})).text
    assert "Promised delivery date" in english and "1200" in english
    bad = await api.get(url, params={"lang": "fr"})
    assert bad.status_code == 422
    missing = await api.get("/orders/NO-SUCH-ORDER/confirmation")
    assert missing.status_code == 404


async def test_an_order_not_yet_confirmed_has_no_confirmation(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=50, unit_price=100)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 1}],
        priority="rush",  # rush needs approval: not confirmed yet
    )
    assert order["status"] == "PENDING_APPROVAL" and order["promise"] is None
    assert order["promise_summary"] == "no promise recorded"
    response = await api.get(f"/orders/{order['order_no']}/confirmation")
    assert response.status_code == 409, response.text
    assert "no promise recorded" in response.json()["detail"]


async def test_two_orders_for_scarce_stock_are_promised_in_the_order_of_their_reservations(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    """Five in stock, two orders of five at once: whichever reserved first ships from stock,
    the other after its production order; no unit is promised twice."""
    customer = await new_customer()
    product = await new_product(stock_on_hand=5, safety_stock=0, lead_time_days=4)
    line = [{"sku": product["sku"], "quantity": 5}]
    first, second = await asyncio.gather(
        submit_ok(api, customer_id=customer["customer_id"], lines=line),
        submit_ok(api, customer_id=customer["customer_id"], lines=line),
    )
    bases = sorted([first["promise"]["basis"], second["promise"]["basis"]])
    from_stock = [o for o in (first, second) if o["promise"]["basis"] == "from stock"]
    produced = [o for o in (first, second) if o["production_orders"]]
    assert len(from_stock) == 1 and len(produced) == 1, bases
    (short,) = produced
    po = short["production_orders"][0]
    assert (
        short["promise"]["basis"]
        == f"line 1 after production order {po['id']} due {po['due_date']}"
    )
    assert short["promise"]["promised_date"] > from_stock[0]["promise"]["promised_date"]
    reserved = [o["lines"][0]["reserved_quantity"] for o in (first, second)]
    assert sorted(reserved) == [0, 5]
