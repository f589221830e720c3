"""The warehouse's and the plant's pages in real headless Chromium on the real stack: pick
lists ready to dispatch with customer and address, printable as a pick list and a delivery
note (print media shows only the document), dispatch and delivery sign-off; open production
orders by due date and reporting completion (a 422 beside its field first)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import eventually, submit_ok

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]
ADDRESS = "上海市浦东新区 <script>window.pwned=1</script> 88 号"


async def test_warehouse_picks_prints_dispatches_and_records_delivery(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="华东五金")
    product = await new_product(name="螺栓 M8", stock_on_hand=1000)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 7}],
        shipping_address=ADDRESS,
    )
    order_no = order["order_no"]

    async def ready() -> str:
        shipments = (await api.get(f"/orders/{order_no}")).json()["shipments"]
        assert shipments and shipments[0]["status"] == "ready"
        return str(shipments[0]["id"])

    shipment_id = await eventually(ready)
    for lang in ("en", "zh"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, await person(db, "web.wh", Role.WAREHOUSE))
        await expect(page.locator("header nav")).to_contain_text(
            "Warehouse" if lang == "en" else "仓库"
        )
        await page.goto("/app/warehouse")
        item = page.get_by_test_id("ready").locator(f"article[data-shipment='{shipment_id}']")
        await expect(item.get_by_test_id("address")).to_have_text(ADDRESS)  # as text
        assert await page.evaluate("window.pwned") is None
        await expect(item).to_contain_text("螺栓 M8")
        await expect(item.locator("table.pick")).to_contain_text("7")
        await screenshot(page, f"warehouse-{lang}")
        for document in ("pick", "note"):
            printed = await ctx.new_page()
            await printed.goto(f"/app/warehouse/shipments/{shipment_id}/{document}")
            await expect(printed.get_by_test_id("printable")).to_contain_text(order_no)
            await printed.emulate_media(media="print")
            await expect(printed.locator("header.container")).to_be_hidden()
            await expect(printed.locator(".no-print")).to_be_hidden()
            await screenshot(printed, f"{document}-{lang}")
            await printed.close()
        await ctx.close()

    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.wh", Role.WAREHOUSE))
    await page.goto("/app/warehouse")
    item = page.get_by_test_id("ready").locator(f"article[data-shipment='{shipment_id}']")
    await item.locator("input[name=carrier]").fill("SF Express")
    await item.locator("input[name=tracking_no]").fill("SF-778899")
    await item.locator("form[data-action=dispatch] button").click()
    await expect(page).to_have_url(f"{site}/app/warehouse?done=dispatch")
    await expect(page.get_by_test_id("done")).to_have_text("Dispatched.")
    signed = page.get_by_test_id("dispatched").locator(f"article[data-shipment='{shipment_id}']")
    await expect(signed).to_contain_text("SF-778899")
    await signed.locator("input[name=signed_by]").fill("Wang Li")
    await signed.locator("form[data-action=deliver] button").click()
    await expect(page.get_by_test_id("done")).to_have_text("Delivery recorded.")
    await expect(page.locator(f"article[data-shipment='{shipment_id}']")).to_have_count(0)
    shipment = (await api.get(f"/shipments/{shipment_id}")).json()
    assert (shipment["status"], shipment["signed_by"]) == ("delivered", "Wang Li")
    await ctx.close()


async def test_the_plant_reports_production_from_its_page(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer()
    product = await new_product(stock_on_hand=0, safety_stock=0)
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 4}]
    )

    async def planned() -> str:
        found = (await api.get(f"/orders/{order['order_no']}")).json()["production_orders"]
        assert found
        return str(found[0]["id"])

    po_id = await eventually(planned)
    for lang in ("zh", "en"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, await person(db, "web.plant", Role.PRODUCTION))
        await page.goto("/app/production")
        await expect(page.locator(f"tr[data-po='{po_id}']")).to_contain_text(product["sku"])
        await screenshot(page, f"production-{lang}")
        await ctx.close()
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.plant", Role.PRODUCTION))
    await page.goto("/app/production")
    row = page.locator(f"tr[data-po='{po_id}']")
    await row.locator("input[name=produced_quantity]").fill("lots")
    await row.locator("button").click()
    await expect(row.locator("[data-field-error=produced_quantity]")).to_be_visible()
    await row.locator("input[name=produced_quantity]").fill("2")
    await row.locator("button").click()
    await expect(page.get_by_test_id("done")).to_have_text("Production reported.")
    await expect(row).to_contain_text("Partially completed")
    await row.locator("button").click()  # empty: the whole quantity
    await expect(page.locator(f"tr[data-po='{po_id}']")).to_have_count(0)
    po = (await api.get(f"/production-orders/{po_id}")).json()
    assert (po["status"], po["produced_quantity"]) == ("completed", 4)
    await ctx.close()
