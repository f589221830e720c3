"""Small helpers the API tests share."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from api.main import create_app
from bench.stack import drop_postgres_schema, fresh_postgres_schema, libpq_url
from settings import Settings
from tests.auth import ActAs
from tests.conftest import POSTGRES_URL, unique

T = TypeVar("T")
Factory = Callable[..., Awaitable[dict[str, Any]]]


@asynccontextmanager
async def api_for(
    settings: Settings, *, request_seconds: float = 30
) -> AsyncIterator[httpx.AsyncClient]:
    """An API of its own on `settings` (its own task queue, say), signed in like `api`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            auth=ActAs(app), transport=transport, base_url="http://test", timeout=request_seconds
        ) as client:
            yield client


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` behind a real uvicorn on a free local port, in this process: its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # uvicorn offers no event to await
            if task.done():
                await task  # it failed to start: raise why
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def run_program(
    command: list[str], *, seconds: float = 60, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run a program to its end off the event loop. Tests share the loop with the session's
    worker: a test that blocks it for seconds makes open workflows' tasks time out."""

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, capture_output=True, text=True, timeout=seconds, check=False, **options
        )

    return await asyncio.to_thread(run)


async def eventually(check: Callable[[], Awaitable[T]], *, within: float = 10.0) -> T:
    """Retry `check` until it stops raising AssertionError (for eventually consistent reads)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def submit(api: httpx.AsyncClient, **fields: Any) -> httpx.Response:
    body = {"order_no": unique("SO"), "entered_by": "sales.li"} | fields
    return await api.post("/orders", json=body)


async def submit_ok(api: httpx.AsyncClient, status: int = 201, **fields: Any) -> dict[str, Any]:
    response = await submit(api, **fields)
    assert response.status_code == status, response.text
    return dict(response.json())


async def post_ok(
    api: httpx.AsyncClient, url: str, body: Any = None, status: int = 200
) -> dict[str, Any]:
    response = await api.post(url, json=body)
    assert response.status_code == status, response.text
    return dict(response.json())


async def retried(
    api: httpx.AsyncClient,
    url: str,
    body: Any = None,
    *,
    key: str,
) -> dict[str, Any]:
    """A command sent as a careful client does: again, under the same key, while the answer is
    503 (the order's worker or Temporal is being replaced)."""
    for _ in range(300):
        response = await api.post(url, json=body, headers={"Idempotency-Key": key})
        if response.status_code in (200, 201):
            return dict(response.json())
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        await asyncio.sleep(0.3)
    raise AssertionError(f"{url} never answered")


def error_fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in response.json().get("errors", [])}


def require_postgres(url: str) -> None:
    """Skip the test when this PostgreSQL is not reachable, or fail it under
    REQUIRE_POSTGRES=1 (CI), where a silent skip would hide the PostgreSQL half of the suite."""
    try:
        psycopg.connect(libpq_url(url), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL at {make_url(url).render_as_string()} is not reachable: {exc}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def postgres_schema(prefix: str) -> Iterator[tuple[str, str]]:
    """A schema of its own on the test PostgreSQL, `(URL with it as search_path, its name)`,
    dropped afterwards; skipped or failed as `require_postgres` says when it is not reachable."""
    require_postgres(POSTGRES_URL)
    url, schema = fresh_postgres_schema(POSTGRES_URL, prefix)
    try:
        yield url, schema
    finally:
        drop_postgres_schema(POSTGRES_URL, schema)


def worker_environment(own: Settings) -> dict[str, str]:
    """The environment of a worker process serving `own` (same keys, same queue)."""
    env = os.environ | {
        "ENVIRONMENT": own.environment,
        "TEMPORAL_ADDRESS": own.temporal_address,
        "DATABASE_URL": own.database_url,
        "TASK_QUEUE": own.task_queue,
        "ORDERS_POLICY_FILE": str(own.orders_policy_file),
        "AUTH_SECRET": own.auth_secret,
        "PAYLOAD_KEYS": json.dumps(own.payload_keys),
        "PAYLOAD_KEY_ID": own.payload_key_id,
        "AUDIT_KEYS": json.dumps(own.audit_keys),
        "AUDIT_KEY_ID": own.audit_key_id,
        "LOG_LEVEL": "WARNING",
    }
    env.pop("NOTIFY_WEBHOOK_URL", None)
    return env
