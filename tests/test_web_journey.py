"""The issue's whole journey in real headless Chromium on the real stack, one person per role:
sales enters an order with a mistake, sees the field error and fixes it; approver_l1 then
approver_l2 approve it from the inbox; the warehouse dispatches and records delivery; finance
records the payment; the order page shows COMPLETED and its timeline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import eventually

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def test_an_order_from_entry_to_completed_through_every_roles_page(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="Journey Ltd", credit_limit=10_000_000)
    product = await new_product(name="Pump", unit_price=1000, stock_on_hand=1000)

    async def as_person(name: str, role: Role, lang: str = "en") -> Page:
        page = await (await context(browser, site, lang)).new_page()
        await sign_in(page, await person(db, name, role))
        return page

    # Sales: a mistake (no quantity), its error beside the field, fixed: 250 x 1000 needs
    # both approval levels.
    sales = await as_person("journey.sales", Role.SALES)
    await sales.goto("/app/orders/new")
    await sales.fill("input[name=customer_id]", customer["customer_id"])
    await sales.fill("input[name=sku_0]", product["sku"])
    await sales.fill("input[name=qty_0]", "")
    await sales.fill("input[name=shipping_address]", "1 Harbour Road")
    await sales.get_by_test_id("submit-order").click()
    await expect(sales.locator("[data-field-error='line:0.quantity']")).to_be_visible()
    await sales.fill("input[name=qty_0]", "250")
    await expect(sales.get_by_test_id("entry-total")).to_have_text("250,000.00")
    await sales.get_by_test_id("submit-order").click()
    await expect(sales.get_by_test_id("done")).to_have_text("Order entered.")
    order_no = await sales.get_by_test_id("order-no").inner_text()
    await expect(sales.get_by_test_id("status")).to_have_attribute(
        "data-status", "PENDING_APPROVAL"
    )

    # The supervisor, then the manager, approve from their inboxes.
    for name, role in (("journey.sup", Role.APPROVER_L1), ("journey.mgr", Role.APPROVER_L2)):
        approver = await as_person(name, role)
        await approver.goto("/app/inbox")
        item = approver.locator(f"article[data-order='{order_no}']")
        await item.locator("form[data-action=approve] textarea[name=comment]").fill(f"ok {name}")
        await item.locator("form[data-action=approve] button").click()
        await expect(approver.get_by_test_id("done")).to_have_text("Approved.")
        await approver.context.close()

    # The warehouse dispatches from its pick list and records the signature.
    async def ready() -> str:
        shipments = (await api.get(f"/orders/{order_no}")).json()["shipments"]
        assert shipments and shipments[0]["status"] == "ready"
        return str(shipments[0]["id"])

    shipment_id = await eventually(ready)
    warehouse = await as_person("journey.wh", Role.WAREHOUSE)
    await warehouse.goto("/app/warehouse")
    pick = warehouse.get_by_test_id("ready").locator(f"article[data-shipment='{shipment_id}']")
    await expect(pick.get_by_test_id("address")).to_have_text("1 Harbour Road")
    await pick.locator("input[name=carrier]").fill("SF")
    await pick.locator("input[name=tracking_no]").fill("SF-J-1")
    await pick.locator("form[data-action=dispatch] button").click()
    await expect(warehouse.get_by_test_id("done")).to_have_text("Dispatched.")
    signed = warehouse.get_by_test_id("dispatched").locator(
        f"article[data-shipment='{shipment_id}']"
    )
    await signed.locator("input[name=signed_by]").fill("Chen")
    await signed.locator("form[data-action=deliver] button").click()
    await expect(warehouse.get_by_test_id("done")).to_have_text("Delivery recorded.")
    await warehouse.context.close()

    # Finance records the payment of the invoice the dispatch issued.
    finance = await as_person("journey.fin", Role.FINANCE)
    await finance.goto(f"/app/finance?customer={customer['customer_id']}")
    row = finance.get_by_test_id("invoices").locator("tbody tr").first
    await expect(row).to_contain_text(order_no)
    await expect(row.locator("input[name=amount]")).to_have_value("250000.00")
    await row.locator("input[name=reference]").fill("BANK-J-1")
    await row.locator("button").click()
    await expect(finance.get_by_test_id("done")).to_have_text("Payment recorded.")
    await finance.context.close()

    # The order page: COMPLETED, with every step on its timeline.
    for lang in ("en", "zh"):
        page = await as_person("journey.sales", Role.SALES, lang)
        await page.goto(f"/app/orders/{order_no}")
        await expect(page.get_by_test_id("status")).to_have_attribute("data-status", "COMPLETED")
        await expect(page.get_by_test_id("status")).to_have_text(
            "Completed" if lang == "en" else "已完成"
        )
        timeline = page.get_by_test_id("timeline")
        for actor in ("journey.sales", "journey.sup", "journey.mgr", "journey.wh", "journey.fin"):
            await expect(timeline).to_contain_text(actor)
        await expect(page.get_by_test_id("payments")).to_contain_text("BANK-J-1")
        await screenshot(page, f"journey-completed-{lang}")
        await page.context.close()
    await sales.context.close()
