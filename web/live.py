"""Live updates: server-sent events (`GET /app/live`) telling a page which orders changed, so
the inbox (and an order page) refresh themselves within a second of another person's decision.

The source of change is the database, so every API process sees every change whichever worker
wrote it: one poller per process (`ChangeFeed`, started with its first listener, ended with its
last) reads the read-model rows written since its cursor (`store.changes`, an indexed range
on `changed_at`) every `POLL_SECONDS` and fans each change out to the listeners who may see
its customer (a scoped sales person: only their customers). Why a poller rather than
PostgreSQL's LISTEN/NOTIFY: one code path on SQLite and PostgreSQL, no connection held per
process outside the pool (it works behind a transaction-pooling proxy too), and an empty poll
is one index probe four times a second per process, not per listener.

A row written with an older `changed_at` than one already read (a slower transaction that
committed later, or another host's clock a little behind) is still caught: each poll rereads
`LOOKBACK` before the newest row seen and skips the (order, save number) pairs already sent.

Each stream sends a heartbeat comment every `HEARTBEAT_SECONDS`, checks the session again
(a revoked or expired token ends it), and ends when the server shuts down: uvicorn waits for
open responses before it exits, so the feed chains the server's SIGINT/SIGTERM handler and
closes its streams first (`close_feed` does the same for a server run in-process)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse

from api.auth import visible_customers
from api.principal import Principal
from domain.auth import Permission
from store.changes import Change, changed_since, last_change
from store.db import Database
from web.session import require, signed_in, state

log = structlog.get_logger(__name__)
router = APIRouter()

POLL_SECONDS = 0.25
LOOKBACK = timedelta(seconds=3)
HEARTBEAT_SECONDS = 15.0
QUEUE_SIZE = 256
RETRY_MS = 2000  # the browser's wait before it reconnects
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Listener:
    """One open stream: the customers it may see (None: all) and its queue of changes."""

    def __init__(self, visible: set[str] | None) -> None:
        self.visible = visible
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue(QUEUE_SIZE)
        self.overflowed = False  # it fell behind: tell the page to refresh everything

    def offer(self, change: Change | None) -> None:
        visible = self.visible
        if change is not None and visible is not None and change.customer_id not in visible:
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True


class ChangeFeed:
    """The process's poller and its listeners (one per application, `feed(app)`)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.listeners: set[Listener] = set()
        self.closed = False
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[str, tuple[int, datetime]] = {}  # order → (save, written) in the window
        self._newest: datetime | None = None
        self._signals_chained = False

    def add(self, listener: Listener) -> None:
        self.listeners.add(listener)
        if self._task is None or self._task.done():
            self._chain_signals()
            self._task = asyncio.create_task(self._run(), name="live-change-feed")

    def remove(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def close(self) -> None:
        """End every stream (server shutdown); new ones end at once."""
        self.closed = True
        for listener in list(self.listeners):
            listener.offer(None)
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        primed = False
        while self.listeners and not self.closed:
            try:
                if not primed:
                    await self.prime()
                    primed = True
                else:
                    for change in await self.poll():
                        for listener in list(self.listeners):
                            listener.offer(change)
            except Exception:  # a database hiccup: the next poll tries again
                log.warning("live_poll_failed", exc_info=True)
            await asyncio.sleep(POLL_SECONDS)

    async def prime(self) -> None:
        """Start from now: what was written before the first listener is no news."""
        self._sent.clear()
        self._newest = await last_change(self.db)
        if self._newest is not None:
            for change in await changed_since(self.db, self._newest - LOOKBACK):
                self._sent[change.order_no] = (change.seq, change.changed_at)

    async def poll(self) -> list[Change]:
        """The changes not sent yet (each order's newest save once)."""
        since = self._newest - LOOKBACK if self._newest is not None else EPOCH
        fresh: list[Change] = []
        for change in await changed_since(self.db, since):
            sent = self._sent.get(change.order_no)
            if sent is None or change.seq > sent[0]:
                self._sent[change.order_no] = (change.seq, change.changed_at)
                fresh.append(change)
            if self._newest is None or change.changed_at > self._newest:
                self._newest = change.changed_at
        if self._newest is not None:  # forget what slid out of the window
            horizon = self._newest - LOOKBACK
            for order_no in [k for k, (_, at) in self._sent.items() if at < horizon]:
                del self._sent[order_no]
        return fresh

    def _chain_signals(self) -> None:
        """Close the streams when the server is told to stop, then let its handler run."""
        if self._signals_chained or threading.current_thread() is not threading.main_thread():
            return
        self._signals_chained = True
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)
            signal.signal(signum, _chained(loop, self.close, signum, previous))


def _chained(
    loop: asyncio.AbstractEventLoop, close: Callable[[], None], signum: int, previous: Any
) -> Callable[[int, FrameType | None], None]:
    def handler(received: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(close)
        if callable(previous):
            previous(received, frame)
        elif previous == signal.SIG_DFL:  # nobody else listens: the default (end the process)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    return handler


def feed(app: FastAPI) -> ChangeFeed:
    found: ChangeFeed | None = getattr(app.state, "live_feed", None)
    if found is None:
        found = app.state.live_feed = ChangeFeed(app.state.db)
    return found


def close_feed(app: FastAPI) -> None:
    """End the open streams (before stopping a server run in-process, as a signal does)."""
    found: ChangeFeed | None = getattr(app.state, "live_feed", None)
    if found is not None:
        found.close()


def event(change: Change) -> str:
    data = json.dumps({"order_no": change.order_no, "status": change.status})
    return f"event: order\ndata: {data}\n\n"


async def _stream(request: Request, principal: Principal, listener: Listener) -> AsyncIterator[str]:
    changes = feed(request.app)
    if changes.closed:
        return
    changes.add(listener)  # here, not before the response: a stream that never ran leaves none
    try:
        yield f"retry: {RETRY_MS}\n: live\n\n"
        while not changes.closed:
            try:
                change = await asyncio.wait_for(listener.queue.get(), HEARTBEAT_SECONDS)
            except TimeoutError:
                if await signed_in(request) is None:
                    return  # signed out or expired: the page's next attempt gets the sign-in
                listener.visible = await visible_customers(state(request).db, principal)
                yield ": heartbeat\n\n"
                continue
            if change is None:
                return
            if listener.overflowed:
                listener.overflowed = False
                yield 'event: order\ndata: {"order_no": null, "status": null}\n\n'
            yield event(change)
    finally:
        changes.remove(listener)


@router.get("/app/live")
async def live(request: Request) -> StreamingResponse:
    """The changes of the orders the signed-in person may see, as `order` events whose data
    is `{"order_no", "status"}` (`order_no` null: many changed, refresh everything)."""
    principal = await require(request, Permission.ORDERS_READ)
    listener = Listener(await visible_customers(state(request).db, principal))
    return StreamingResponse(
        _stream(request, principal, listener),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
