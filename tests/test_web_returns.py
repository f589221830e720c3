"""Returns in real headless Chromium, on the real stack: sales requests a return of a delivered
order from its page, a supervisor finds it in the returns list and approves it (a manager's
stale page refusing it gets the workflow's 409 with the fresh return), the warehouse receives
the goods and records the inspection (a 422 beside the field first), and the return's page
shows the refund; a replacement goes from the return page to the warehouse page and ships.
Each step through the API's own command path (`Commands.update_return`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from playwright.async_api import Browser, Page, expect

from domain.auth import Role
from store.db import Database
from store.tables import User
from tests.auth import _HASH
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import post_ok
from tests.test_returns import delivered_order

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def act(page: Page, name: str) -> None:
    await page.locator(f"form[data-action={name}] button[type=submit]").click()


async def test_a_return_requested_approved_received_and_inspected_in_the_browser(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order, sku = await delivered_order(api, new_customer, new_product, paid=True)
    order_no = order["order_no"]
    sales_ctx, sup_ctx = await context(browser, site, "en"), await context(browser, site, "zh")
    boss_ctx, wh_ctx = await context(browser, site, "en"), await context(browser, site, "en")
    sales, sup = await sales_ctx.new_page(), await sup_ctx.new_page()
    boss, warehouse = await boss_ctx.new_page(), await wh_ctx.new_page()
    await sign_in(sales, await person(db, "web.sales", Role.SALES))
    await sign_in(sup, await person(db, "web.sup", Role.APPROVER_L1))
    await sign_in(boss, await person(db, "web.boss", Role.APPROVER_L2))
    await sign_in(warehouse, await person(db, "web.wh", Role.WAREHOUSE))

    # Sales asks for two of the three back, from the order page.
    await sales.goto(f"/app/orders/{order_no}")
    ret = sales.locator("form[data-action=request-return]")
    await ret.locator("input[name^=qty_]").fill("2")
    await ret.locator("select[name=resolution]").select_option("refund")
    await ret.locator("textarea[name=reason]").fill("damaged <b>in transit</b>")
    await act(sales, "request-return")
    await expect(sales.get_by_test_id("done")).to_have_text("Return requested.")
    await sales.get_by_test_id("returns").get_by_role("link").click()  # the order links to it
    await expect(sales.get_by_test_id("status")).to_have_text("Requested")
    return_no = await sales.get_by_test_id("return-no").inner_text()
    assert return_no.startswith(f"RT-{order_no}")
    await expect(sales.get_by_test_id("reason")).to_have_text("damaged <b>in transit</b>")
    await expect(sales.get_by_test_id("order-link")).to_have_text(order_no)
    await expect(sales.get_by_test_id("actions")).to_have_count(0)  # sales only asks
    await expect(sales.locator("nav a[href='/app/returns']")).to_have_count(1)

    # A manager's page, opened before anyone decides; a refusal without a reason: 422 beside it.
    await boss.goto(f"/app/returns/{return_no}")
    await act(boss, "refuse")
    await expect(boss.locator("form[data-action=refuse] [data-field-error=reason]")).to_be_visible()

    # The supervisor finds it among the requested ones and approves it.
    await sup.goto("/app/returns?status=REQUESTED")
    row = sup.locator(f"tr[data-return='{return_no}']")
    await expect(row).to_contain_text("待受理")
    await screenshot(sup, "returns-zh")
    await row.get_by_role("link", name=return_no).click()
    await expect(sup.locator("form[data-action=receive]")).to_have_count(0)  # not an approver's
    await sup.locator("form[data-action=approve] textarea[name=comment]").fill("同意退货")
    await act(sup, "approve")
    await expect(sup.get_by_test_id("done")).to_have_text("已同意退换货。")
    await expect(sup.get_by_test_id("status")).to_have_attribute("data-status", "APPROVED")
    await expect(sup.get_by_test_id("decision")).to_contain_text("web.sup")
    await screenshot(sup, "return-approved-zh")

    # The manager's page refuses too late: the workflow's 409, with the fresh return.
    await boss.locator("form[data-action=refuse] textarea[name=reason]").fill("no")
    await act(boss, "refuse")
    await expect(boss.get_by_test_id("message")).to_contain_text("cannot be refused")
    await expect(boss.get_by_test_id("status")).to_have_attribute("data-status", "APPROVED")
    await expect(boss.locator("form[data-action=refuse]")).to_have_count(0)

    # The warehouse receives the goods, then records the inspection.
    await warehouse.goto("/app/returns")
    await warehouse.locator(f"tr[data-return='{return_no}']").get_by_role("link").first.click()
    await expect(warehouse.locator("form[data-action=approve]")).to_have_count(0)
    await act(warehouse, "receive")
    await expect(warehouse.get_by_test_id("done")).to_have_text("Returned goods received.")
    await expect(warehouse.get_by_test_id("status")).to_have_attribute("data-status", "RECEIVED")
    inspect = warehouse.locator("form[data-action=inspect]")
    await expect(inspect.locator("input[name=accepted_0]")).to_have_value("2")
    await inspect.locator("input[name=accepted_0]").fill("two")  # the body's 422 beside it
    await act(warehouse, "inspect")
    await expect(warehouse.locator("[data-field-error='lines[0]']")).to_be_visible()
    await expect(warehouse.locator("input[name=accepted_0]")).to_have_value("two")
    await warehouse.locator("input[name=accepted_0]").fill("5")  # the workflow's 422: at most 2
    await act(warehouse, "inspect")
    await expect(warehouse.locator("[data-field-error='lines[0]']")).to_contain_text("0 to 2")
    await warehouse.locator("input[name=accepted_0]").fill("1")
    await act(warehouse, "inspect")
    await expect(warehouse.get_by_test_id("done")).to_have_text("Inspection recorded.")
    await expect(warehouse.get_by_test_id("status")).to_have_attribute("data-status", "COMPLETED")
    await expect(warehouse.get_by_test_id("lines")).to_contain_text(sku)
    await expect(warehouse.get_by_test_id("settlement")).to_contain_text("100.00")
    timeline = warehouse.get_by_test_id("timeline")
    for event in ("return_approved", "return_goods_received", "return_inspected"):
        await expect(timeline).to_contain_text(event)
    await expect(warehouse.get_by_test_id("actions")).to_have_count(0)
    await screenshot(warehouse, "return-completed-en")

    answer = (await api.get(f"/returns/{return_no}")).json()
    assert answer["status"] == "COMPLETED" and answer["lines"][0]["accepted_quantity"] == 1
    assert answer["decision"]["by"] == "web.sup"
    for ctx in (sales_ctx, sup_ctx, boss_ctx, wh_ctx):
        await ctx.close()


async def test_the_returns_list_is_for_the_roles_that_work_returns(
    browser: Browser, site: str, db: Database
) -> None:
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.plant", Role.PRODUCTION))
    await expect(page.locator("nav a[href='/app/returns']")).to_have_count(0)
    response = await page.goto("/app/returns")
    assert response is not None and response.status == 403
    await expect(page.get_by_test_id("error-code")).to_contain_text("403")
    await ctx.close()


async def test_a_replacement_is_inspected_on_the_return_page_and_shipped_from_the_warehouse(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order, sku = await delivered_order(api, new_customer, new_product, paid=False)
    return_no = f"RT-{order['order_no']}"
    body = {"return_no": return_no, "lines": [{"sku": sku, "quantity": 1}]}
    body |= {"reason": "wrong colour", "resolution": "replace"}
    await post_ok(api, f"/orders/{order['order_no']}/returns", body, status=201)
    await post_ok(api, f"/returns/{return_no}/approve", {})
    await post_ok(api, f"/returns/{return_no}/receive", None)
    ctx = await context(browser, site, "zh")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.wh", Role.WAREHOUSE))
    await page.goto(f"/app/returns/{return_no}")
    await act(page, "inspect")  # all of it accepted, as the form proposes
    await expect(page.get_by_test_id("status")).to_have_attribute(
        "data-status", "REPLACEMENT_READY"
    )
    await expect(page.get_by_test_id("settlement")).to_contain_text(f"SH-{return_no}")
    await page.get_by_test_id("to-warehouse").click()
    shipment = page.locator(f"form[data-action=dispatch]:has(input[value='SH-{return_no}'])")
    await shipment.locator("input[name=carrier]").fill("SF")
    await shipment.locator("input[name=tracking_no]").fill("R-1")
    await shipment.locator("button[type=submit]").click()
    await expect(page.get_by_test_id("done")).to_have_text("已发货。")
    await page.goto(f"/app/returns/{return_no}")
    await expect(page.get_by_test_id("status")).to_have_attribute(
        "data-status", "REPLACEMENT_SHIPPED"
    )
    await screenshot(page, "return-replacement-zh")
    await ctx.close()


async def test_a_sales_rep_sees_only_the_returns_of_their_customers(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    order, sku = await delivered_order(api, new_customer, new_product, paid=False)
    return_no = f"RT-{order['order_no']}"
    body = {"return_no": return_no, "lines": [{"sku": sku, "quantity": 1}]}
    body |= {"reason": "dented", "resolution": "refund"}
    await post_ok(api, f"/orders/{order['order_no']}/returns", body, status=201)
    async with db.writer() as session:  # a rep of another customer only
        session.add(
            User(username="web.scoped", role=Role.SALES, password_hash=_HASH, customer_ids=["C-X"])
        )
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, "web.scoped")
    await page.goto("/app/returns")
    await expect(page.get_by_test_id("returns-empty")).to_be_visible()
    response = await page.goto(f"/app/returns/{return_no}")
    assert response is not None and response.status == 404
    await ctx.close()
    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.sales", Role.SALES))  # every customer's rep
    await page.goto("/app/returns")
    await expect(page.locator(f"tr[data-return='{return_no}']")).to_contain_text("dented")
    await ctx.close()
