"""aiosqlite without its thread: each SQLite call runs at once, on the event loop's thread.

aiosqlite hands every call (cursor, execute, fetch, close, commit) to a thread of its own
and back, so one statement through SQLAlchemy costs about ten thread round trips: ~0.5 ms of
CPU, against the ~10 µs SQLite needs for one of our point lookups or small writes. Run inline,
the same SQLAlchemy code costs half of that or less (`bench/README.md`, "SQLite statements on
the event loop's thread").

Why blocking the loop is fine here: our statements are short (indexed lookups and small writes
of one order); readers never wait in WAL mode; and a writer never waits for SQLite's lock
either, because our writers take turns before `BEGIN IMMEDIATE` (`store.db.WriteTurn`), and
that wait is the one that stays off the loop. What still blocks is SQLite's own I/O (a commit
appends to the WAL; every 1,000 pages one commit also checkpoints it) and a writer that is not
ours (the migrations, the `sqlite3` shell), for which the busy timeout applies.

The hot path's prebuilt statements go one step further (`DirectConnection`): a plain, blocking
SQLAlchemy connection, without the asyncio layer's greenlet hand-offs, which cost more than
the inline driver saved (`bench/README.md`, "2026-11-27, direct SQLite").
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Generator
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import Connection, CursorResult, Executable

from store import prepared


class _Inline:
    """Stands in for aiosqlite's queue to its thread: a call put here runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is None:
                raise
            future.set_exception(exc)
        else:
            if future is not None:
                future.set_result(result)


class InlineConnection(aiosqlite.Connection):
    """An `aiosqlite.Connection` that starts no thread and runs every call inline."""

    def __init__(self, connector: Callable[[], sqlite3.Connection]) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._tx = _Inline()  # type: ignore[assignment]

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Every cursor and connection call comes here: run it without a future in between.
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no thread to start


def connector(path: Path, timeout: float) -> Callable[[], Awaitable[InlineConnection]]:
    """`create_async_engine(..., async_creator=connector(path, timeout))`."""

    async def connect() -> InlineConnection:
        # Not bound to the thread that opened it: the pool may be closed from another one.
        connection = InlineConnection(
            lambda: sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        )
        await connection._connect()
        return connection

    return connect


class DirectConnection:
    """What the prebuilt statements use of an `AsyncConnection` (`execute`, `dialect`), over a
    plain SQLAlchemy connection to a SQLite file, run inline: a point select costs ~40 µs of
    CPU this way against ~140 µs through the asyncio layer, a write transaction with one ~170
    against ~470. A statement marked with `store.prepared.prepare` runs on the driver itself."""

    __slots__ = ("_driver", "dialect", "sync_connection")

    def __init__(self, connection: Connection) -> None:
        self.sync_connection = connection
        self.dialect = connection.dialect
        self._driver: sqlite3.Connection | None = None

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Any] | prepared.Rows:
        if prepared.is_prepared(statement):
            connection = self.sync_connection
            if not connection.in_transaction():
                connection.begin()  # as SQLAlchemy's autobegin would (our `BEGIN` listener)
            driver = self._driver
            if driver is None:
                driver = self._driver = connection.connection.driver_connection
            assert driver is not None
            rows = prepared.run_sqlite(driver, statement, self.dialect, parameters)
            if rows is not None:
                return rows
        return self.sync_connection.execute(statement, parameters)
