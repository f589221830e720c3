"""The order page's remaining actions in real headless Chromium, on the real stack: sales
amends (a 422 beside its field first; adding lines of other products too) and short-closes a
backorder, the warehouse dispatches and records delivery, sales requests a return. Each
through the API's own command path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import eventually, submit_ok

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def shipment_in(api: httpx.AsyncClient, order_no: str, status: str) -> dict[str, Any]:
    async def found() -> dict[str, Any]:
        order = (await api.get(f"/orders/{order_no}")).json()
        ready = [s for s in order["shipments"] if s["status"] == status]
        assert ready, order["status"]
        return dict(ready[0])

    return await eventually(found)


async def act(page: Page, name: str) -> None:
    await page.locator(f"form[data-action={name}] button[type=submit]").click()


async def test_sales_amends_warehouse_dispatches_and_delivers_sales_requests_a_return(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer()
    product = await new_product(unit_price=100, stock_on_hand=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 10}]
    )
    order_no = order["order_no"]
    await shipment_in(api, order_no, "ready")
    sales_ctx, wh_ctx = await context(browser, site, "en"), await context(browser, site, "zh")
    sales, warehouse = await sales_ctx.new_page(), await wh_ctx.new_page()
    await sign_in(sales, await person(db, "web.sales", Role.SALES))
    await sign_in(warehouse, await person(db, "web.wh", Role.WAREHOUSE))

    await sales.goto(f"/app/orders/{order_no}")
    amend = sales.locator("form[data-action=amend]")
    await amend.locator("input[name^=qty_]").fill("12")
    await act(sales, "amend")  # no reason: the 422 beside it, the typed quantity kept
    await expect(sales.locator("form[data-action=amend] [data-field-error=reason]")).to_be_visible()
    await expect(sales.locator("form[data-action=amend] input[name^=qty_]")).to_have_value("12")
    await sales.locator("form[data-action=amend] textarea[name=reason]").fill("customer wants 12")
    await act(sales, "amend")
    await expect(sales.get_by_test_id("done")).to_have_text("Amended.")
    await expect(sales.get_by_test_id("lines").locator("tbody tr").first).to_contain_text("12")
    await expect(sales.locator("form[data-action=dispatch]")).to_have_count(0)  # not sales'
    await screenshot(sales, "order-actions-sales-en")

    shipment = await shipment_in(api, order_no, "ready")
    await warehouse.goto(f"/app/orders/{order_no}")
    await expect(warehouse.locator("form[data-action=amend]")).to_have_count(0)
    await act(warehouse, "dispatch")  # no carrier: 422 beside it
    await expect(warehouse.locator("[data-field-error=carrier]")).to_be_visible()
    form = warehouse.locator("form[data-action=dispatch]")
    await form.locator("select[name=shipment_id]").select_option(shipment["id"])
    await form.locator("input[name=carrier]").fill("SF")
    await form.locator("input[name=tracking_no]").fill("SF-1001")
    await act(warehouse, "dispatch")
    await expect(warehouse.get_by_test_id("done")).to_have_text("已发货。")
    await expect(warehouse.get_by_test_id("shipments")).to_contain_text("SF-1001")
    await warehouse.locator("form[data-action=deliver] input[name=signed_by]").fill("王先生")
    await act(warehouse, "deliver")
    await expect(warehouse.get_by_test_id("done")).to_have_text("已登记签收。")
    await expect(warehouse.get_by_test_id("shipments")).to_contain_text("王先生")
    await screenshot(warehouse, "order-actions-warehouse-zh")

    await sales.goto(f"/app/orders/{order_no}")
    ret = sales.locator("form[data-action=request-return]")
    await ret.locator("input[name^=qty_]").fill("20")  # more than was delivered: 422
    await ret.locator("textarea[name=reason]").fill("two broken")
    await act(sales, "request-return")
    await expect(
        sales.locator("form[data-action=request-return] [data-field-error^=lines]")
    ).to_be_visible()
    await sales.locator("form[data-action=request-return] input[name^=qty_]").fill("2")
    await sales.locator("form[data-action=request-return] textarea[name=reason]").fill("broken")
    await act(sales, "request-return")
    await expect(sales.get_by_test_id("done")).to_have_text("Return requested.")
    await expect(sales.get_by_test_id("returns")).to_contain_text(f"RT-{order_no}")
    returns = (await api.get(f"/orders/{order_no}")).json()["returns"]
    assert len(returns) == 1
    await sales_ctx.close()
    await wh_ctx.close()


async def test_sales_short_closes_a_backorder_after_the_first_shipment_left(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(delivery_policy="partial")
    product = await new_product(unit_price=100, stock_on_hand=5, safety_stock=0)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 8}]
    )
    order_no = order["order_no"]
    shipment = await shipment_in(api, order_no, "ready")
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.sales", Role.SALES))
    await page.goto(f"/app/orders/{order_no}")
    await expect(page.locator("form[data-action=short-close]")).to_have_count(0)  # none left yet
    dispatched = await api.post(
        f"/shipments/{shipment['id']}/dispatch", json={"carrier": "SF", "tracking_no": "1"}
    )
    assert dispatched.status_code == 200, dispatched.text
    await page.goto(f"/app/orders/{order_no}")
    await page.locator("form[data-action=short-close] textarea[name=reason]").fill("no more")
    await act(page, "short-close")
    await expect(page.get_by_test_id("done")).to_have_text("Short-closed.")
    await expect(page.get_by_test_id("timeline")).to_contain_text("short_closed")
    await ctx.close()


async def test_sales_adds_a_line_of_another_product_when_amending(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer()
    first = await new_product(unit_price=100, stock_on_hand=1000)
    second = await new_product(unit_price=40, stock_on_hand=1000)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": first["sku"], "quantity": 2}]
    )
    order_no = order["order_no"]
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.sales", Role.SALES))
    await page.goto(f"/app/orders/{order_no}")
    amend = page.locator("form[data-action=amend]")
    await amend.locator("input[name=add_sku_0]").fill("NO-SUCH-SKU")
    await amend.locator("input[name=add_qty_0]").fill("3")
    await amend.locator("textarea[name=reason]").fill("customer adds a product")
    await act(page, "amend")  # entry validation's 422 beside the new line, what was typed kept
    amend = page.locator("form[data-action=amend]")
    await expect(amend.locator("[data-field-error='lines[1].sku']")).to_be_visible()
    await expect(amend.locator("input[name=add_sku_0]")).to_have_attribute("aria-invalid", "true")
    await expect(amend.locator("input[name=add_qty_0]")).to_have_value("3")
    await amend.locator("input[name=add_sku_0]").fill(second["sku"])
    await expect(amend.locator("input[name=add_price_0]")).to_have_attribute("placeholder", "40.00")
    await amend.locator("button.add-amend-line").click()  # a second new line, at a price
    await amend.locator("input[name=add_sku_1]").fill(first["sku"])
    await amend.locator("input[name=add_qty_1]").fill("1")
    await amend.locator("input[name=add_price_1]").fill("90")
    await amend.locator("textarea[name=reason]").fill("customer adds a product")
    await act(page, "amend")
    await expect(page.get_by_test_id("done")).to_have_text("Amended.")
    lines = page.get_by_test_id("lines").locator("tbody tr")
    await expect(lines).to_have_count(3)
    await expect(lines.nth(1)).to_contain_text(second["sku"])
    await screenshot(page, "order-amend-added-line-en")
    answer = (await api.get(f"/orders/{order_no}")).json()
    assert [(line["sku"], line["quantity"]) for line in answer["lines"]] == [
        (first["sku"], 2),
        (second["sku"], 3),
        (first["sku"], 1),
    ]
    assert [Decimal(str(line["unit_price"])) for line in answer["lines"]] == [100, 40, 90]
    await ctx.close()
