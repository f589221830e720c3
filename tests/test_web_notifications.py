"""People's notifications in real headless Chromium (tests/browser.py): a real approval ladder
on the session's worker puts a reminder in an approver's list; the header shows the unread
count on every page, the list links to the order, marking read lowers the count."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Browser, expect

from domain.auth import Role
from store.db import Database
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import Factory, eventually, submit_ok
from tests.test_notifications import FAST, unread_count

__all__ = ["browser", "chromium_installed", "site"]  # fixtures


async def test_an_approver_sees_the_reminder_opens_the_order_and_marks_it_read(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    name = await person(db, f"web.l1.{uuid.uuid4().hex[:6]}", Role.APPROVER_L1)
    customer = await new_customer(customer_group="sla-approval")  # reminder after 1 s
    product = await new_product(stock_on_hand=10)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 3, "unit_price": 50}],
    )
    order_no = order["order_no"]
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, name)
    await expect(page).to_have_url(f"{site}/app/orders")

    async def listed() -> None:
        # The reminder and the escalation of level 1 (both for approver_l1) have fired.
        await page.goto("/app/notifications")
        mine = page.get_by_test_id("notification").filter(has_text=order_no)
        await expect(mine).to_have_count(2, timeout=500)

    await eventually(listed, within=FAST)
    # The count is in the header of every page.
    await page.goto("/app/orders")
    before = unread_count(await page.content())
    assert before >= 1
    await expect(page.get_by_test_id("unread-count")).to_have_text(str(before))
    await page.goto("/app/notifications")
    await screenshot(page, "notifications-en")
    row = page.get_by_test_id("notification").filter(has_text=order_no).first
    await row.get_by_test_id("notification-order").click()
    await expect(page).to_have_url(re.compile(rf"/app/orders/{order_no}$"))
    await page.goto("/app/notifications")
    row = page.get_by_test_id("notification").filter(has_text=order_no).first
    await row.get_by_test_id("mark-read").click()
    await expect(page).to_have_url(f"{site}/app/notifications")
    assert unread_count(await page.content()) == before - 1
    await expect(row).to_have_class("read")
    # In Chinese, the same list.
    await page.goto("/app/lang/zh?next=/app/notifications")
    await expect(page.get_by_role("heading", name="通知")).to_be_visible()
    await screenshot(page, "notifications-zh")
    await page.get_by_test_id("read-all").click()
    await expect(page.get_by_test_id("unread-count")).to_have_count(0)
    await ctx.close()
