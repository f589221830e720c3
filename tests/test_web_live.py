"""Live updates (web/live.py): the change feed reads the database (so a second API process sees
the worker's writes), catches a late commit, sends each save once; the stream `/app/live`
needs a session, sends a scoped sales person only their customers' orders, and ends when its
server is told to stop (uvicorn would otherwise wait for it forever)."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from asyncio.subprocess import DEVNULL, Process
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from domain.auth import Role
from settings import Settings
from store.changes import changed_since
from store.db import Database
from store.tables import OrderRecord, User
from tests.auth import _HASH, token_for
from tests.helpers import submit_ok, worker_environment
from web.live import ChangeFeed, Listener

Factory = Callable[..., Awaitable[dict[str, Any]]]


async def put(db: Database, order_no: str, customer_id: str, seq: int, at: datetime) -> None:
    """An order's read-model row written at `at` (what the worker's save does, columns only)."""
    async with db.writer() as session:
        row = await session.get(OrderRecord, order_no)
        if row is None:
            session.add(
                OrderRecord(
                    order_no=order_no,
                    workflow_id=f"order-{order_no}",
                    customer_id=customer_id,
                    status="PENDING_APPROVAL",
                    total=Decimal(1),
                    priority="normal",
                    entered_by="t",
                    fingerprint="f",
                    seq=seq,
                    received_at=at,
                    updated_at=at,
                    changed_at=at,
                    view={},
                )
            )
        else:
            row.seq, row.changed_at, row.status = seq, at, "APPROVED"


async def test_the_feed_sends_each_save_once_a_late_commit_too_and_only_in_scope(
    store: Database,
) -> None:
    now = datetime.now(UTC)
    await put(store, "LIVE-OLD", "C-A", 1, now - timedelta(seconds=1))
    feed = ChangeFeed(store)
    await feed.prime()
    assert await feed.poll() == []  # written before anyone listened: no news

    await put(store, "LIVE-1", "C-A", 1, now + timedelta(milliseconds=10))
    assert [(c.order_no, c.seq) for c in await feed.poll()] == [("LIVE-1", 1)]
    assert await feed.poll() == []  # once
    # A slower transaction commits after a newer one: its row is older than the newest read.
    await put(store, "LIVE-2", "C-B", 1, now - timedelta(milliseconds=500))
    await put(store, "LIVE-1", "C-A", 2, now + timedelta(milliseconds=20))
    assert sorted((c.order_no, c.seq) for c in await feed.poll()) == [("LIVE-1", 2), ("LIVE-2", 1)]
    assert await feed.poll() == []

    scoped, everyone = Listener({"C-A"}), Listener(None)
    for change in await changed_since(store, now - timedelta(seconds=2)):
        scoped.offer(change)
        everyone.offer(change)
    assert scoped.queue.qsize() == 2 and everyone.queue.qsize() == 3
    sent = [scoped.queue.get_nowait() for _ in range(2)]
    assert {change.customer_id for change in sent if change} == {"C-A"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def second_api(settings: Settings) -> AsyncIterator[tuple[Process, str]]:
    """Another API process (`python -m api`) on the same database and Temporal."""
    port = free_port()
    env = worker_environment(settings) | {"API_PORT": str(port), "API_HOST": "127.0.0.1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api", env=env, stdout=DEVNULL, stderr=DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(200):
                try:
                    if (await client.get("/health")).status_code < 500:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, "the second API process did not start"
                await asyncio.sleep(0.1)
        yield process, base
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


class Stream:
    """The events of one `/app/live` stream, read in the background."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.status: int | None = None
        self.ended = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        headers = {"Cookie": f"session={self.token}"}
        async with (
            httpx.AsyncClient(base_url=self.base, timeout=None) as client,
            client.stream("GET", "/app/live", headers=headers) as answer,
        ):
            self.status = answer.status_code
            name = None
            async for line in answer.aiter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name == "order":
                    await self.events.put(json.loads(line[6:]))
        self.ended.set()

    async def order_nos(self, seconds: float) -> set[str]:
        """The orders named in the events that arrive within `seconds`."""
        seen: set[str] = set()
        try:
            async with asyncio.timeout(seconds):
                while True:
                    seen.add((await self.events.get())["order_no"])
        except TimeoutError:
            return seen


async def test_a_second_api_process_streams_the_changes_a_person_may_see_and_stops_cleanly(
    settings: Settings,
    db: Database,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    mine, theirs = await new_customer(), await new_customer()
    product = await new_product(unit_price=10, stock_on_hand=1000)
    line = {"sku": product["sku"], "quantity": 1}
    async with db.writer() as session:
        for name, role, customers in (
            ("live.sales", Role.SALES, [mine["customer_id"]]),
            ("live.sup", Role.APPROVER_L1, []),
        ):
            if await session.get(User, name) is None:
                session.add(
                    User(username=name, role=role, customer_ids=customers, password_hash=_HASH)
                )
    async with second_api(settings) as (process, base):
        async with httpx.AsyncClient(base_url=base) as client:
            refused = await client.get("/app/live", follow_redirects=False)
            assert refused.status_code == 303  # no session: to the sign-in page
            sales = Stream(base, await token_for(client, "live.sales"))
            everyone = Stream(base, await token_for(client, "live.sup"))
        await asyncio.sleep(1)  # both streams open, the feed primed
        assert sales.status == everyone.status == 200
        orders = [
            str((await submit_ok(api, customer_id=c["customer_id"], lines=[line]))["order_no"])
            for c in (mine, theirs)
        ]
        # The in-process worker wrote them: the other process's stream names them.
        assert set(orders) <= await everyone.order_nos(3)
        seen_by_sales = await sales.order_nos(0.5)
        assert orders[0] in seen_by_sales and orders[1] not in seen_by_sales

        process.send_signal(signal.SIGTERM)  # the server stops: its open streams end first
        async with asyncio.timeout(10):
            await sales.ended.wait()
            await everyone.ended.wait()
            await process.wait()
        assert process.returncode in (0, -signal.SIGTERM)  # uvicorn raises it again once done
