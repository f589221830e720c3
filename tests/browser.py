"""Real headless Chromium for the web app's tests: Debian's `/usr/bin/chromium` driven by
Playwright, against the app served by uvicorn in this process (real HTTP, the session's
worker, Temporal and database). Screenshots go to `.artifacts/screenshots/` (git-ignored)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from api.main import create_app
from domain.auth import Role
from settings import Settings
from store.db import Database
from store.tables import User
from tests.auth import _HASH, TEST_PASSWORD
from web.live import close_feed

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / ".artifacts" / "screenshots"


@pytest.fixture(scope="session")
async def chromium_installed() -> Path:
    """Chromium and a CJK font, installed with apt-get when missing (once; as `make test`)."""
    process = await asyncio.create_subprocess_exec("sh", str(ROOT / "tests" / "browser-deps.sh"))
    assert await process.wait() == 0, "tests/browser-deps.sh could not install chromium"
    return CHROMIUM


@pytest.fixture(scope="module")
async def site(settings: Settings, worker: None, db: Database) -> AsyncIterator[str]:
    """The whole application (API and web app) on a free port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await)
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    close_feed(app)  # the live updates' open streams end, as a signal to the server ends them
    server.should_exit = True
    await task


@pytest.fixture(scope="module")
async def browser(chromium_installed: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium_installed),
            headless=True,
            args=["--no-sandbox"],  # root (CI, these sessions) cannot use chromium's sandbox
        )
        yield launched
        await launched.close()


async def person(db: Database, name: str, role: Role) -> str:
    """A user with `role` and the tests' password (straight in the database, as admin would)."""
    async with db.writer() as session:
        if await session.get(User, name) is None:
            session.add(User(username=name, role=role, password_hash=_HASH))
    return name


async def context(browser: Browser, site: str, lang: str = "en") -> BrowserContext:
    return await browser.new_context(
        base_url=site,
        locale="zh-CN" if lang == "zh" else "en-US",
        extra_http_headers={"Accept-Language": "zh-CN,zh;q=0.9" if lang == "zh" else "en-US,en"},
        viewport={"width": 1280, "height": 900},
    )


async def sign_in(page: Page, name: str, password: str = TEST_PASSWORD) -> None:
    await page.goto("/app/login")
    await page.fill("input[name=username]", name)
    await page.fill("input[name=password]", password)
    await page.click("form[action='/app/login'] button[type=submit]")


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
