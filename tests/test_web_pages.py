"""The web app over plain HTTP (no browser): the way in, bad input on its pages answered
with a page (never a 500), no redirect to another site, the static files it serves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from api.main import create_app
from domain.auth import Role
from settings import Settings
from store.db import Database
from tests.auth import TEST_PASSWORD
from tests.browser import person
from tests.conftest import create_customer, create_product
from tests.helpers import submit_ok


@pytest.fixture(scope="module")
async def web(settings: Settings, worker: None, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
            yield client


async def signed_in(web: httpx.AsyncClient, db: Database, name: str, role: Role) -> None:
    await person(db, name, role)
    web.cookies.clear()
    form = await web.get("/app/login")
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
    assert token is not None
    answer = await web.post(
        "/app/login",
        data={"username": name, "password": TEST_PASSWORD, "csrf_token": token.group(1)},
    )
    assert answer.status_code == 303, answer.text


async def test_the_root_leads_to_the_app_and_the_app_to_sign_in(web: httpx.AsyncClient) -> None:
    web.cookies.clear()
    assert (await web.get("/")).headers["location"] == "/app/"
    assert (await web.get("/app/")).headers["location"] == "/app/login"
    answer = await web.get("/app/orders?status=SHIPPED")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/app/login?next=/app/orders?status=SHIPPED"


async def test_bad_filters_and_pages_answer_with_a_page(
    web: httpx.AsyncClient, db: Database
) -> None:
    await signed_in(web, db, "web.http.ops", Role.OPS)
    for query in (
        "page=abc",
        "page=-1",
        "page=99999999999",
        "status=NOPE",
        "overdue=x",
        "number=%25_",
    ):
        answer = await web.get(f"/app/orders?{query}")
        assert answer.status_code == 200, (query, answer.text[:300])
    assert (
        "Unknown status."
        in (await web.get("/app/orders?status=NOPE", headers={"Accept-Language": "en"})).text
    )
    missing = await web.get("/app/orders/NO-SUCH-ORDER")
    assert missing.status_code == 404
    assert "NO-SUCH-ORDER" in missing.text
    unknown_action = await web.post("/app/orders/NO-SUCH-ORDER/explode", data={})
    assert unknown_action.status_code == 404


async def test_no_redirect_leaves_the_app(web: httpx.AsyncClient, db: Database) -> None:
    await signed_in(web, db, "web.http.ops", Role.OPS)
    for target in (
        "https://evil.example/",
        "//evil.example/",
        "/app//evil.example",
        "javascript:x",
    ):
        answer = await web.get("/app/lang/en", params={"next": target})
        assert answer.headers["location"] == "/app/"
    answer = await web.get("/app/lang/xx", params={"next": "/app/orders"})
    assert answer.headers["location"] == "/app/orders"
    assert "lang" not in answer.cookies


async def test_a_role_with_no_page_lands_on_its_account_page(
    web: httpx.AsyncClient, db: Database
) -> None:
    await signed_in(web, db, "web.http.admin", Role.ADMIN)
    assert (await web.get("/app/")).headers["location"] == "/app/account"
    assert (await web.get("/app/account")).status_code == 200
    assert (await web.get("/app/orders")).status_code == 403


async def test_the_front_end_files_are_served_from_the_npm_packages(web: httpx.AsyncClient) -> None:
    htmx = await web.get("/app/static/vendor/htmx.min.js")
    assert htmx.status_code == 200 and 'version:"2.0.11"' in htmx.text
    assert (await web.get("/app/static/vendor/pico.min.css")).status_code == 200
    assert (await web.get("/app/static/app.js")).status_code == 200
    assert (await web.get("/app/static/vendor/other.js")).status_code == 404


async def test_the_order_page_shows_both_promises_and_prints_the_confirmation(
    web: httpx.AsyncClient, db: Database, api: httpx.AsyncClient
) -> None:
    customer = await create_customer(api)
    product = await create_product(api, stock_on_hand=50)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 2}]
    )
    promised = order["promise"]["promised_date"]
    await signed_in(web, db, "web.http.sales", Role.SALES)
    page = await web.get(f"/app/orders/{order['order_no']}")
    assert page.status_code == 200
    shown = re.search(r'data-testid="promise">(.*?)</span>', page.text, re.DOTALL)
    assert shown is not None and promised in shown.group(1)
    assert "from stock" in shown.group(1) or "现货" in shown.group(1)  # in the page's language
    printed = await web.get(f"/app/orders/{order['order_no']}/confirmation", params={"lang": "zh"})
    assert printed.status_code == 200 and "订单确认书" in printed.text and promised in printed.text
    missing = await web.get("/app/orders/NO-SUCH/confirmation")
    assert missing.status_code == 404


async def test_sales_record_the_customers_signed_confirmation_on_the_order_page(
    web: httpx.AsyncClient, db: Database, api: httpx.AsyncClient
) -> None:
    customer = await create_customer(api, credit_limit=10_000_000)
    product = await create_product(api, stock_on_hand=50, unit_price=100_000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 6}]
    )
    order_no = order["order_no"]
    for approver, role in (("sup.zhang", "approver_l1"), ("mgr.chen", "approver_l2")):
        decided = await api.post(
            f"/orders/{order_no}/approve", json={"approver": approver, "role": role}
        )
        assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "AWAITING_CONFIRMATION"
    await signed_in(web, db, "web.http.sales", Role.SALES)
    page = await web.get(f"/app/orders/{order_no}")
    form = re.search(r'<form[^>]*data-action="?confirm"?.*?</form>', page.text, re.DOTALL)
    assert form is not None, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.group(0))
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form.group(0))
    assert csrf is not None and key is not None
    fields = {"csrf_token": csrf.group(1), "idempotency_key": key.group(1)}
    empty = await web.post(
        f"/app/orders/{order_no}/confirm",
        data=fields | {"document_reference": " ", "confirmed_by_customer_contact": "Li Lei"},
    )
    assert empty.status_code == 422
    done = await web.post(
        f"/app/orders/{order_no}/confirm",
        data=fields | {"document_reference": "SIGNED-7", "confirmed_by_customer_contact": "Li"},
    )
    assert done.status_code == 303, done.text
    confirmed = (await api.get(f"/orders/{order_no}")).json()
    assert confirmed["status"] == "READY_TO_SHIP"
    assert confirmed["written_confirmation"]["document_reference"] == "SIGNED-7"


async def test_the_inbox_shows_the_promise_of_an_order_back_at_approval(
    web: httpx.AsyncClient, db: Database, api: httpx.AsyncClient
) -> None:
    customer = await create_customer(api, credit_limit=10_000_000)
    product = await create_product(api, stock_on_hand=1000, unit_price=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 2}]
    )
    promised = order["promise"]["promised_date"]
    amended = await api.patch(
        f"/orders/{order['order_no']}",
        json={
            "requested_by": "sales.li",
            "reason": "more",
            "lines": [{"sku": product["sku"], "quantity": 60}],  # 60,000: above auto-approval
        },
    )
    assert amended.status_code == 200 and amended.json()["status"] == "PENDING_APPROVAL"
    await signed_in(web, db, "web.http.sup", Role.APPROVER_L1)
    inbox = await web.get("/app/inbox/list")
    assert inbox.status_code == 200
    item = re.search(rf'data-order="{order["order_no"]}".*?</article>', inbox.text, re.DOTALL)
    assert item is not None
    shown = re.search(r'data-testid="inbox-promise">(.*?)</p>', item.group(0), re.DOTALL)
    assert shown is not None and promised in shown.group(1)
