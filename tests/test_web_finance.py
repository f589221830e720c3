"""The finance page in real headless Chromium on the real stack: invoices open and overdue
with their dunning level, receivables per customer, a payment recorded through the API's
command path, and a credit hold lifted; a role without the page gets 403."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from playwright.async_api import Browser, expect

from domain.auth import Role
from store.db import Database
from store.tables import CreditHold, Invoice, OrderRecord
from tests.browser import browser, chromium_installed, context, person, screenshot, sign_in, site
from tests.helpers import eventually, post_ok, submit_ok

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def test_finance_sees_invoices_records_a_payment_and_lifts_a_credit_hold(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="华南贸易")
    customer_id = customer["customer_id"]
    product = await new_product(unit_price=100)
    order = await submit_ok(
        api, customer_id=customer_id, lines=[{"sku": product["sku"], "quantity": 5}]
    )
    order_no = order["order_no"]

    async def ready() -> str:
        shipments = (await api.get(f"/orders/{order_no}")).json()["shipments"]
        assert shipments and shipments[0]["status"] == "ready"
        return str(shipments[0]["id"])

    shipment_id = await eventually(ready)
    dispatched = await post_ok(
        api, f"/shipments/{shipment_id}/dispatch", {"carrier": "SF", "tracking_no": "F1"}
    )
    invoice_id = dispatched["invoices"][0]["id"]
    # An older order's invoice, overdue and dunned once, and the credit hold dunning placed.
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo("Asia/Shanghai")).date()
    old = f"{order_no}-OLD"
    async with db.writer() as session:
        session.add(
            Invoice(
                id=f"INV-{old}",
                order_no=old,
                customer_id=customer_id,
                amount=Decimal("300.00"),
                payment_terms="net_30",
                due_date=today - timedelta(days=4),
                issued_at=now - timedelta(days=34),
            )
        )
        session.add(
            OrderRecord(
                order_no=old,
                workflow_id=f"order-{old}",
                customer_id=customer_id,
                status="DELIVERED",
                total=Decimal("300.00"),
                priority="normal",
                entered_by="sales",
                fingerprint="x",
                received_at=now,
                updated_at=now,
                view={
                    "deadlines": [
                        {
                            "sla": "invoice_payment",
                            "key": f"INV-{old}",
                            "started_at": (now - timedelta(days=34)).isoformat(),
                            "due_at": (now - timedelta(days=4)).isoformat(),
                            "status": "breached",
                            "escalation_level": 1,
                        }
                    ]
                },
            )
        )
        session.add(
            CreditHold(customer_id=customer_id, order_no=old, reason="dunning", placed_at=now)
        )

    for lang in ("zh", "en"):
        ctx = await context(browser, site, lang)
        page = await ctx.new_page()
        await sign_in(page, await person(db, "web.fin", Role.FINANCE))
        await page.goto(f"/app/finance?customer={customer_id}")
        rows = page.get_by_test_id("invoices")
        await expect(rows.locator(f"tr[data-invoice='{invoice_id}']")).to_contain_text("500.00")
        late = rows.locator(f"tr[data-invoice='INV-{old}']")
        await expect(late.get_by_test_id("dunning")).to_have_text("1")
        await expect(late.get_by_test_id("days-overdue")).to_contain_text("4")
        owed = page.get_by_test_id("receivables").locator(f"tr[data-customer='{customer_id}']")
        await expect(owed).to_contain_text("800.00")
        await expect(owed).to_contain_text("300.00")
        await expect(page.get_by_test_id("holds")).to_contain_text("华南贸易")
        await screenshot(page, f"finance-{lang}")
        await ctx.close()

    ctx = await context(browser, site, "en")
    page = await ctx.new_page()
    await sign_in(page, await person(db, "web.fin", Role.FINANCE))
    await page.goto(f"/app/finance?status=overdue&customer={customer_id}")
    await expect(page.get_by_test_id("invoice-total")).to_have_text("1")
    await page.goto(f"/app/finance?customer={customer_id}")
    row = page.locator(f"tr[data-invoice='{invoice_id}']")
    await row.locator("input[name=reference]").fill("BANK-77")
    await row.locator("button").click()
    await expect(page).to_have_url(f"{site}/app/finance?done=pay")
    await expect(page.get_by_test_id("done")).to_have_text("Payment recorded.")
    await page.goto(f"/app/finance?customer={customer_id}")
    await expect(page.locator(f"tr[data-invoice='{invoice_id}']")).to_have_count(0)
    paid = (await api.get(f"/orders/{order_no}")).json()
    assert paid["payments"][0]["reference"] == "BANK-77"
    assert paid["invoices"][0]["status"] == "paid"

    hold = page.locator(f"tr[data-hold='{customer_id}']")
    await hold.locator("input[name=comment]").fill("paid by phone")
    await hold.locator("button").click()
    await expect(page.get_by_test_id("done")).to_have_text("Credit hold lifted.")
    await expect(page.locator(f"tr[data-hold='{customer_id}']")).to_have_count(0)
    assert not (await api.get(f"/customers/{customer_id}")).json()["credit_hold"]
    await ctx.close()

    other = await (await context(browser, site)).new_page()
    await sign_in(other, await person(db, "web.wh", Role.WAREHOUSE))
    answer = await other.goto("/app/finance")
    assert answer is not None and answer.status == 403
    await other.context.close()
