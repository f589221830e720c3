"""The web app in real headless Chromium (tests/browser.py), on the real stack: sign-in, the
orders list and an order page, approvals from the inbox (and the inbox updating live), a
409 shown with the fresh order, a 422 beside its field, CSRF refused, escaping, a 403 for a
role without the page, and the language switch. Screenshots of each page in zh and en."""

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
NOTE = "<script>window.pwned = 1</script> & <b>bold</b>"


async def two_level_order(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> str:
    """An order above the two-level limit: a supervisor, then a manager must approve it."""
    customer = await new_customer(credit_limit=10_000_000)
    product = await new_product(unit_price=1000, stock_on_hand=1000)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": product["sku"], "quantity": 250}],
        notes=NOTE,
    )
    assert order["status"] == "PENDING_APPROVAL"
    return str(order["order_no"])


async def test_sign_in_refuses_a_wrong_password_and_signs_in_and_out(
    browser: Browser, site: str, db: Database
) -> None:
    name = await person(db, "web.ops", Role.OPS)
    ctx = await context(browser, site)
    page = await ctx.new_page()
    await page.goto("/")  # / → /app/ → the sign-in page
    await expect(page).to_have_url(f"{site}/app/login")
    await sign_in(page, name, "wrong-password")
    await expect(page.get_by_test_id("login-error")).to_have_text(
        "Incorrect user name or password."
    )
    await sign_in(page, name)
    await expect(page).to_have_url(f"{site}/app/orders")
    await expect(page.get_by_test_id("who")).to_have_text(name)
    cookie = next(c for c in await ctx.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["secure"]
    await page.click("form[action='/app/logout'] button")
    await expect(page).to_have_url(f"{site}/app/login")
    await page.goto("/app/orders")  # the token was revoked: signed out for good
    await expect(page).to_have_url(f"{site}/app/login?next=/app/orders")
    for lang in ("en", "zh"):
        fresh = await (await context(browser, site, lang)).new_page()
        await fresh.goto("/app/login")
        await screenshot(fresh, f"login-{lang}")
        await fresh.context.close()
    await ctx.close()


async def test_orders_list_and_order_page_show_the_order_with_its_note_as_text(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order_no = await two_level_order(api, new_customer, new_product)
    name = await person(db, "web.ops", Role.OPS)
    for lang in ("en", "zh"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, name)
        await page.goto(f"/app/orders?number={order_no}")
        rows = page.get_by_test_id("orders").locator("tbody tr")
        await expect(rows).to_have_count(1)
        label = "Pending approval" if lang == "en" else "待审核"
        await expect(rows.first).to_contain_text(label)
        await expect(rows.first).to_contain_text("250,000.00")
        await screenshot(page, f"orders-{lang}")
        await rows.first.get_by_role("link", name=order_no).click()
        await expect(page.get_by_test_id("order-no")).to_have_text(order_no)
        await expect(page.get_by_test_id("status")).to_have_text(label)
        await expect(page.get_by_test_id("notes")).to_have_text(NOTE)  # as text, not markup
        assert await page.evaluate("window.pwned") is None
        assert await page.locator("main b").count() == 0
        await expect(page.get_by_test_id("lines")).to_contain_text("250")
        countdown = page.get_by_test_id("deadlines").locator("time[data-due]").first
        await expect(countdown).to_contain_text("in " if lang == "en" else "剩余")
        link = await page.get_by_test_id("temporal-link").get_attribute("href")
        assert link is not None and link.endswith(f"/workflows/order-{order_no}")
        await expect(page.get_by_test_id("actions")).to_have_count(0)  # ops only reads
        await screenshot(page, f"order-{lang}")
        await ctx.close()


async def test_approvers_decide_from_the_inbox_which_updates_itself_and_a_late_one_gets_409(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order_no = await two_level_order(api, new_customer, new_product)
    first = await person(db, "web.sup", Role.APPROVER_L1)
    other = await person(db, "web.sup2", Role.APPROVER_L1)
    boss = await person(db, "web.mgr", Role.APPROVER_L2)
    one, two, three = [await context(browser, site, lang) for lang in ("zh", "en", "en")]
    sup, watcher, manager = await one.new_page(), await two.new_page(), await three.new_page()
    await sign_in(sup, first)
    await sign_in(watcher, other)
    await sign_in(manager, boss)
    stale = await two.new_page()  # the other supervisor's order page, opened before anyone decides
    await stale.goto(f"/app/orders/{order_no}")
    await expect(stale.locator("form[data-action=approve]")).to_have_count(1)
    # They start typing: the page's live refresh leaves their text alone and says it changed.
    await stale.locator("form[data-action=approve] textarea[name=comment]").fill("me too")
    viewer = await two.new_page()  # the same order's page, only read: it refreshes live
    await viewer.goto(f"/app/orders/{order_no}")

    await sup.goto("/app/inbox")
    await watcher.goto("/app/inbox")
    item = sup.locator(f"article[data-order='{order_no}']")
    await expect(item).to_contain_text("级别 2")
    await expect(item.locator(".credit")).to_be_visible()
    await screenshot(sup, "inbox-zh")
    await item.locator("form[data-action=approve] textarea[name=comment]").fill("一级同意")
    await item.locator("form[data-action=approve] button").click()
    await expect(sup.get_by_test_id("done")).to_have_text("已批准。")
    await expect(sup.locator(f"article[data-order='{order_no}']")).to_have_count(0)
    # The other supervisor's inbox drops it without a reload, within a couple of seconds (the
    # live updates: server-sent events from the database's change, not polling of the page).
    await expect(watcher.locator(f"article[data-order='{order_no}']")).to_have_count(
        0, timeout=2_500
    )
    await expect(stale.get_by_test_id("live-stale")).to_be_visible(timeout=2_500)
    await expect(viewer.get_by_test_id("approvals")).to_contain_text("一级同意", timeout=2_500)

    await manager.goto("/app/inbox")
    mine = manager.locator(f"article[data-order='{order_no}']")
    await expect(mine).to_contain_text("Level 2")
    await screenshot(manager, "inbox-en")
    await mine.locator("form[data-action=reject] button").click()  # no reason: 422 beside it
    await expect(manager.locator("[data-field-error=reason]")).to_be_visible()
    await expect(manager.get_by_test_id("status")).to_have_text("Pending approval")
    await manager.locator("form[data-action=approve] textarea[name=comment]").fill("OK <i>go</i>")
    await manager.locator("form[data-action=approve] button").click()
    await expect(manager.get_by_test_id("done")).to_have_text("Approved.")
    await expect(manager.get_by_test_id("status")).not_to_have_text("Pending approval")
    await expect(manager.get_by_test_id("approvals")).to_contain_text("OK <i>go</i>")

    async def moved_on() -> str:
        order = (await api.get(f"/orders/{order_no}")).json()
        assert order["status"] != "PENDING_APPROVAL"
        return str(order["status"])

    status = await eventually(moved_on)
    # The stale page's approval comes too late: the workflow's 409, with the fresh order.
    await stale.locator("form[data-action=approve] button").click()
    await expect(stale.get_by_test_id("message")).to_contain_text("not awaiting an approval")
    await expect(stale.get_by_test_id("status")).to_have_attribute("data-status", status)
    await expect(stale.locator("form[data-action=approve]")).to_have_count(0)
    for ctx in (one, two, three):
        await ctx.close()


async def test_a_post_without_the_forms_csrf_token_is_refused(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order_no = await two_level_order(api, new_customer, new_product)
    ctx = await context(browser, site)
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.sup", Role.APPROVER_L1))
    await page.goto(f"/app/orders/{order_no}")
    # What a forged form elsewhere could send: the session cookie, but no or a wrong token.
    for token in (None, "0" * 64):
        fields: dict[str, str | float | bool] = {"comment": "forged"}
        if token:
            fields["csrf_token"] = token
        answer = await page.request.post(f"/app/orders/{order_no}/approve", form=fields)
        assert answer.status == 403
        assert "did not come from this site" in await answer.text()
    answer = await page.request.post(
        "/app/login", form={"username": "web.sup", "password": "test-password"}
    )
    assert answer.status == 403
    order = (await api.get(f"/orders/{order_no}")).json()
    assert order["approvals"] == [] and order["status"] == "PENDING_APPROVAL"
    await ctx.close()


async def test_a_role_without_the_page_gets_403_and_no_link_to_it(
    browser: Browser, site: str, db: Database
) -> None:
    ctx = await context(browser, site)
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.wh", Role.WAREHOUSE))
    await expect(page.locator("header nav")).to_contain_text("Orders")
    await expect(page.locator("header nav")).not_to_contain_text("Approvals")
    answer = await page.goto("/app/inbox")
    assert answer is not None and answer.status == 403
    await expect(page.get_by_test_id("error-code")).to_contain_text("403")
    await expect(page.locator("main")).to_contain_text("orders:approve")
    await screenshot(page, "forbidden-en")
    await ctx.close()


async def test_the_language_follows_the_browser_and_the_switch_is_remembered(
    browser: Browser, site: str, db: Database
) -> None:
    name = await person(db, "web.ops", Role.OPS)
    ctx = await context(browser, site, "zh")
    page = await ctx.new_page()
    await sign_in(page, name)
    await expect(page.locator("h1")).to_have_text("订单")
    await page.click("a[data-lang=en]")
    await expect(page.locator("h1")).to_have_text("Orders")
    await expect(page).to_have_url(f"{site}/app/orders")
    await page.reload()
    await expect(page.locator("h1")).to_have_text("Orders")
    await page.goto("/app/inbox")  # a 403 page speaks the chosen language too
    await expect(page.get_by_test_id("error-code")).to_contain_text("Forbidden")
    await page.click("a[data-lang=zh]")
    await expect(page.get_by_test_id("error-code")).to_contain_text("无权访问")
    await screenshot(page, "forbidden-zh")
    await ctx.close()
