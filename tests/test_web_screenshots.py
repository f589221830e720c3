"""The README's screenshots (`docs/screenshots/`): an order page in Chinese and the approver's
inbox in English, taken in real headless Chromium on the real stack at a modest window, into
`.artifacts/screenshots/docs/` (git-ignored). To refresh the committed ones:

    .venv/bin/pytest tests/test_web_screenshots.py
    cp .artifacts/screenshots/docs/*.png docs/screenshots/
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page, ViewportSize, expect

from domain.auth import Role
from store.db import Database
from tests.browser import ROOT, SCREENSHOTS, browser, chromium_installed, person, sign_in, site
from tests.helpers import submit_ok

__all__ = ["browser", "chromium_installed", "site"]  # fixtures

Factory = Callable[..., Awaitable[dict[str, Any]]]
DOCS = ROOT / "docs" / "screenshots"
README_SHOTS = ("order-zh.png", "inbox-en.png")
MAX_BYTES = 150_000  # each committed screenshot
VIEWPORT: ViewportSize = {"width": 1280, "height": 760}


async def shot(page: Page, name: str) -> Path:
    """The window as a person sees it (not the whole page): small enough to commit."""
    path = SCREENSHOTS / "docs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=False)
    return path


async def test_the_readme_screenshots(
    browser: Browser,
    site: str,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    customer = await new_customer(name="华东机电有限公司", credit_limit=10_000_000)
    motor = await new_product(name="伺服电机 750W", unit_price=1000, stock_on_hand=1000)
    drive = await new_product(name="驱动器 DR-2", unit_price=500, stock_on_hand=1000)
    order = await submit_ok(
        api,
        customer_id=customer["customer_id"],
        lines=[{"sku": motor["sku"], "quantity": 200}, {"sku": drive["sku"], "quantity": 100}],
        notes="请在月底前送达",
        shipping_address="上海市浦东新区张江路 88 号",
    )
    order_no = order["order_no"]
    assert order["status"] == "PENDING_APPROVAL"
    name = await person(db, "zhang.supervisor", Role.APPROVER_L1)
    taken = []
    for lang, path in (("zh", f"/app/orders/{order_no}"), ("en", "/app/inbox")):
        ctx = await browser.new_context(
            base_url=site,
            locale="zh-CN" if lang == "zh" else "en-US",
            extra_http_headers={"Accept-Language": "zh-CN" if lang == "zh" else "en-US"},
            viewport=VIEWPORT,
        )
        page = await ctx.new_page()
        await sign_in(page, name)
        await page.goto(path)
        if lang == "zh":
            await expect(page.get_by_test_id("status")).to_have_text("待审核")
            await expect(page.locator("time[data-due]").first).to_have_text(re.compile("^剩余"))
        else:
            await expect(page.locator(f"article[data-order='{order_no}']")).to_be_visible()
        taken.append(await shot(page, f"{'order' if lang == 'zh' else 'inbox'}-{lang}.png"))
        await ctx.close()
    assert [path.name for path in taken] == list(README_SHOTS)
    assert all(path.stat().st_size < MAX_BYTES for path in taken)


def test_the_readme_shows_the_committed_screenshots() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in README_SHOTS:
        assert f"docs/screenshots/{name}" in readme
        assert 0 < (DOCS / name).stat().st_size < MAX_BYTES
