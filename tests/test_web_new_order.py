"""The new-order page in real headless Chromium on the real stack: pickers from master data,
lines added and removed, the total computed as one types, entry validation's 422 beside its
field, the fixed order entered through the API's own entry service, the form sent again
entering nothing new."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from playwright.async_api import Browser, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def test_sales_enters_an_order_with_a_mistake_sees_the_field_error_and_fixes_it(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="华东 <b>五金</b>")
    first = await new_product(unit_price=120)
    second = await new_product(unit_price="35.50")
    for lang in ("zh", "en"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, await person(db, "web.sales", Role.SALES))
        await page.click("header nav a[href='/app/orders/new']")
        await expect(page).to_have_url(f"{site}/app/orders/new")
        await page.fill("input[name=customer_id]", customer["customer_id"])
        await page.fill("input[name=sku_0]", first["sku"])
        await page.fill("input[name=qty_0]", "-2")  # the mistake
        await expect(page.locator("input[name=price_0]")).to_have_attribute("placeholder", "120.00")
        await page.click("#add-line")
        await page.fill("input[name=sku_1]", second["sku"])
        await page.fill("input[name=qty_1]", "3")
        await page.click("#add-line")
        await page.fill("input[name=sku_2]", first["sku"])
        await page.locator("tr[data-row='2'] .remove-line").click()
        await expect(page.locator("tr.entry-line")).to_have_count(2)
        total = page.get_by_test_id("entry-total")
        await expect(total).to_have_text("-133.50")  # -2 * 120 + 3 * 35.50, as typed
        await screenshot(page, f"new-order-{lang}")
        await page.get_by_test_id("submit-order").click()
        error = page.locator("[data-field-error='line:0.quantity']")
        await expect(error).to_be_visible()  # entry validation's 422, beside the quantity
        await expect(page.locator("input[name=qty_0]")).to_have_attribute("aria-invalid", "true")
        await expect(page.locator("input[name=sku_1]")).to_have_value(second["sku"])
        await screenshot(page, f"new-order-error-{lang}")
        await page.fill("input[name=qty_0]", "2")
        await expect(total).to_have_text("346.50")
        sent = await page.evaluate(
            "Object.fromEntries(new FormData(document.getElementById('new-order')))"
        )
        await page.get_by_test_id("submit-order").click()
        await expect(page.get_by_test_id("done")).to_have_text(
            "订单已录入。" if lang == "zh" else "Order entered."
        )
        order_no = await page.get_by_test_id("order-no").inner_text()
        assert order_no == sent["order_no"]
        await expect(page.get_by_test_id("lines")).to_contain_text(second["sku"])
        # The same form again (a double click, a retry): the same order, nothing new.
        again = await page.request.post("/app/orders/new", form=sent)
        assert again.ok and again.url.startswith(f"{site}/app/orders/{order_no}")
        await ctx.close()
    listed = (await api.get("/orders", params={"customer_id": customer["customer_id"]})).json()
    assert listed["total"] == 2  # one per language, none twice
    order = (await api.get(f"/orders/{listed['items'][0]['order_no']}")).json()
    assert order["entered_by"] == "web.sales" and order["total"] == 346.5


async def test_bad_input_on_the_new_order_form_shows_beside_each_field(
    browser: Browser, site: str, db: Database
) -> None:
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.sales", Role.SALES))
    await page.goto("/app/orders/new")
    await page.fill("input[name=customer_id]", "NO-SUCH-CUSTOMER")
    await page.fill("input[name=sku_0]", "SKU-NOPE")
    await page.fill("input[name=qty_0]", "many")
    await page.fill("input[name=payment_terms]", "whenever")
    await page.get_by_test_id("submit-order").click()
    await expect(page.locator("[data-field-error='line:0.quantity']")).to_be_visible()
    await expect(page.locator("[data-field-error=payment_terms]")).to_be_visible()
    await page.fill("input[name=qty_0]", "1")
    await page.fill("input[name=payment_terms]", "")
    await page.get_by_test_id("submit-order").click()
    await expect(page.locator("[data-field-error=customer_id]")).to_be_visible()
    await expect(page.locator("[data-field-error='line:0.sku']")).to_be_visible()
    await ctx.close()
    other = await (await context(browser, site)).new_page()
    await sign_in(other, await person(db, "web.fin", Role.FINANCE))
    await expect(other.locator("header nav")).not_to_contain_text("New order")
    answer = await other.goto("/app/orders/new")
    assert answer is not None and answer.status == 403
    await other.context.close()
