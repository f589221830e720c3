"""The operations page in real headless Chromium on the real stack: orders by status, an
order whose dispatch deadline breached (a test policy tier of seconds) under its stage with
escalation level and who holds it, the escalation fired today, and the Temporal UI's
searches; a role without reports:read gets 403."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import httpx
from playwright.async_api import Browser, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import eventually, submit_ok

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def test_ops_sees_counts_overdue_stages_escalations_and_temporal_searches(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(customer_group="sla-dispatch")  # dispatch due in 4 s
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no = order["order_no"]

    async def overdue() -> None:
        view = (await api.get(f"/orders/{order_no}")).json()
        assert view["overdue"] is True and view["escalation_level"] == 1

    await eventually(overdue, within=20)
    for lang in ("en", "zh"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, await person(db, "web.ops", Role.OPS))
        await page.click("header nav a[href='/app/ops']")
        counts = page.get_by_test_id("counts").locator("a[data-status=READY_TO_SHIP]")
        await expect(counts).to_be_visible()
        stage = page.locator("details[data-stage=READY_TO_SHIP]")
        row = stage.locator(f"tr[data-order='{order_no}']")
        await expect(row.get_by_test_id("level")).to_have_text("1")
        await expect(row).to_contain_text("warehouse")
        fired = page.get_by_test_id("escalations").locator(f"tr[data-order='{order_no}']")
        await expect(fired.first).to_be_visible()
        links = page.get_by_test_id("temporal-searches").locator("a")
        hrefs = [unquote(await link.get_attribute("href") or "") for link in await links.all()]
        assert [href.split("?query=")[1] for href in hrefs] == [
            "Overdue=true",
            'OrderStatus="PENDING_APPROVAL"',
        ]
        assert all("/namespaces/default/workflows" in href for href in hrefs)
        await screenshot(page, f"ops-{lang}")
        await ctx.close()

    other = await (await context(browser, site)).new_page()
    await sign_in(other, await person(db, "web.sales", Role.SALES))
    await expect(other.locator("header nav")).not_to_contain_text("Operations")
    answer = await other.goto("/app/ops")
    assert answer is not None and answer.status == 403
    await other.context.close()
