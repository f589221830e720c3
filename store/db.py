"""The database: one async engine per process; ORM sessions or plain connections (for
prebuilt statements on the hot path) for reading and for writing. On a SQLite file the plain
connections skip SQLAlchemy's asyncio layer (`sqlite_inline.DirectConnection`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Generic, TypeVar

import psycopg
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel.ext.asyncio.session import AsyncSession

from store import prepared, sqlite_inline, tables  # noqa: F401  (tables registers them on SQLModel.metadata)

if sys.platform != "win32":
    import fcntl

SQLITE_TIMEOUT = 30  # seconds a writer waits for SQLite's write lock before it fails
IDLE_PING_SECONDS = 1.0  # a PostgreSQL connection idle this long is pinged before use
_RETURNED_AT = "orders_returned_at"  # when a pooled connection was last made or given back
# Errors of the database itself, not of what was written.
UNREACHABLE = (TimeoutError, OperationalError, InterfaceError)
T = TypeVar("T")


class PostgresConnection:
    """What the prebuilt statements use of an `AsyncConnection` (`execute`, `dialect`), running
    those marked with `store.prepared.prepare` on psycopg's own connection, in the same
    transaction: SQLAlchemy's asyncio layer adds greenlet hand-offs to its execution set-up."""

    __slots__ = ("_driver", "connection", "dialect")

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self._driver: psycopg.AsyncConnection[Any] | None = None

    async def execute(
        self, statement: Executable, parameters: Any = None
    ) -> CursorResult[Any] | prepared.Rows:
        if prepared.is_prepared(statement):
            driver = self._driver
            if driver is None:
                raw = await self.connection.get_raw_connection()
                driver = self._driver = raw.driver_connection
            assert driver is not None
            rows = await prepared.run_postgres(driver, statement, self.dialect, parameters)
            if rows is not None:
                return rows
        return await self.connection.execute(statement, parameters)


# What `reading()` and `writing()` give: prebuilt statements run on either.
DbConnection = AsyncConnection | sqlite_inline.DirectConnection | PostgresConnection
Write = Callable[[DbConnection, list[T]], Awaitable[None]]


class Database:
    """Owns the engines. Created in `worker.py` and the API lifespan, never at import time.

    On SQLite, writing transactions start with `BEGIN IMMEDIATE` so two writers queue on the
    busy timeout instead of failing on a lock upgrade, and ours take turns (`WriteTurn`);
    readers never block them (WAL). Statements on a SQLite file run on the event loop's own
    thread (`store.sqlite_inline`): with the turn taken first, they never wait for a lock. On
    PostgreSQL one engine serves both, and row-level guards keep stock from being oversold.
    Small writes many orders make can share a transaction (`grouped`). `reader`/`writer` give
    ORM sessions; `reading`/`writing` the same without the ORM, for prebuilt statements.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self._turn: WriteTurn | None = None
        # Plain engines (read, write) for `reading()`/`writing()` on a SQLite file.
        self._direct: tuple[Engine, Engine] | None = None
        if self.is_sqlite:
            database = self.url.database
            file = Path(database) if database and database != ":memory:" else None
            if file is not None:
                file.parent.mkdir(parents=True, exist_ok=True)
                if sys.platform != "win32":
                    self._turn = WriteTurn(Path(f"{file}-writer"), SQLITE_TIMEOUT)
            # A file, no driver options in the URL: statements run on the loop's thread.
            inline = file if file is not None and not self.url.query else None
            self.read_engine = self._sqlite_engine(inline, immediate=False, echo=echo)
            self.write_engine = self._sqlite_engine(inline, immediate=True, echo=echo)
            if inline is not None:
                self._direct = (
                    self._direct_engine(inline, immediate=False, echo=echo),
                    self._direct_engine(inline, immediate=True, echo=echo),
                )
        else:
            # Reads run in autocommit: at PostgreSQL's READ COMMITTED every statement takes its
            # own snapshot inside a transaction too, so only the BEGIN and ROLLBACK round trips
            # go (a read connection with one select: ~550 -> ~390 us of CPU). Writers keep
            # their transactions; row locks (FOR UPDATE) are taken only there.
            self.read_engine = create_async_engine(
                self.url, echo=echo, pool_size=5, max_overflow=15, isolation_level="AUTOCOMMIT"
            )
            self.write_engine = create_async_engine(
                self.url, echo=echo, pool_size=10, max_overflow=20
            )
            for engine in (self.read_engine, self.write_engine):
                _ping_when_idle(engine.sync_engine)
        self._read = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._groups: dict[Any, GroupCommit[Any]] = {}

    def _sqlite_engine(self, inline: Path | None, *, immediate: bool, echo: bool) -> AsyncEngine:
        connect: dict[str, Any] = {"connect_args": {"timeout": SQLITE_TIMEOUT}}
        if inline is not None:
            connect = {"async_creator": sqlite_inline.connector(inline, SQLITE_TIMEOUT)}
        engine = create_async_engine(self.url, echo=echo, pool_pre_ping=False, **connect)
        _sqlite_setup(engine.sync_engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")
        return engine

    def _direct_engine(self, file: Path, *, immediate: bool, echo: bool) -> Engine:
        engine = create_engine(
            f"sqlite:///{file}",
            echo=echo,
            connect_args={"timeout": SQLITE_TIMEOUT, "check_same_thread": False},
            # Never make the loop's thread wait for a free connection: the pool grows instead.
            pool_size=8,
            max_overflow=-1,
        )
        _sqlite_setup(engine, "BEGIN IMMEDIATE" if immediate else "BEGIN")
        return engine

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads."""
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[DbConnection]:
        """`reader` without the ORM: a connection, for prebuilt statements."""
        async with self._plain(write=False) as conn:
            yield conn

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._write_turn(), self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[DbConnection]:
        """`writer` without the ORM: a connection inside one transaction, for prebuilt
        statements (a session adds ~0.15 ms of CPU to a small write transaction)."""
        async with self._write_turn(), self._plain(write=True) as conn:
            yield conn

    @asynccontextmanager
    async def _plain(self, *, write: bool) -> AsyncIterator[DbConnection]:
        """A connection, in a transaction when `write`: direct on a SQLite file, else async."""
        if self._direct is not None:
            engine = self._direct[1 if write else 0]
            with engine.begin() if write else engine.connect() as direct:
                yield sqlite_inline.DirectConnection(direct)
        else:
            async with self.write_engine.begin() if write else self.read_engine.connect() as conn:
                yield PostgresConnection(conn) if not self.is_sqlite else conn

    def _write_turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        return self._turn.take() if self._turn is not None else contextlib.nullcontext()

    def grouped(self, write: Write[T]) -> GroupCommit[T]:
        """This process's group commit for `write` (one per function, made on first use)."""
        group = self._groups.get(write)
        if group is None:
            group = self._groups[write] = GroupCommit(self, write)
        return group

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._turn is not None:
            self._turn.close()
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()
        for engine in self._direct or ():
            engine.dispose()


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has been idle `IDLE_PING_SECONDS`.

    SQLAlchemy's `pool_pre_ping` pings at every checkout: a round trip before each transaction
    and each read, ~100 µs of CPU in the process and some in PostgreSQL (an order's worker and
    API spent ~4 ms on them). A connection back from use a moment ago is alive but for a
    failure in that moment, which a ping could not have foreseen either; one that has waited
    longer (a restart, an idle timeout, a dropped link) is pinged, and replaced when the ping
    finds it dead."""

    @event.listens_for(engine, "connect")
    def _on_connect(_: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _on_checkin(_: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _: Any) -> None:
        if time.monotonic() - record.info.get(_RETURNED_AT, 0.0) < IDLE_PING_SECONDS:
            return
        dialect = engine.dialect
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_connection, None):
                raise DisconnectionError(f"an idle connection was dead: {exc}") from exc
            raise


def _sqlite_setup(engine: Engine, begin: str) -> None:
    """Every connection in WAL mode with foreign keys; transactions start with `begin`."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see `_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_TIMEOUT * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Straight to the driver, past SQLAlchemy's execution machinery (events, result
        # set-up): 15-20 µs less CPU a transaction, and every step opens several.
        cursor = connection.connection.cursor()
        try:
            cursor.execute(begin)
        finally:
            cursor.close()


class WriteTurn:
    """Our writers to one SQLite file take turns, and each turn passes on at once.

    SQLite lets one transaction write at a time and makes the others poll: its busy handler
    sleeps 1, 2, 5, … then 100 ms between tries, so under load the lock often sits free while
    every waiter sleeps (measured: waits of 90 to 170 ms for holds of 5 to 15 ms, bench/README.md).
    Our writers queue instead: in a process on an asyncio lock, across processes (API, workers)
    on an exclusive `flock` of a file next to the database, which the kernel hands to the next
    waiter the moment it is released, and releases when its holder dies. A writer that takes
    no turn (the sqlite3 shell) still meets SQLite's own busy timeout.
    """

    def __init__(self, path: Path, timeout: float) -> None:
        self._path = path
        self._timeout = timeout
        self._local = asyncio.Lock()
        self._fd: int | None = None

    @asynccontextmanager
    async def take(self) -> AsyncIterator[None]:
        """Our turn to write; `TimeoutError` when it does not come within the timeout (also
        for a writer nested in another's transaction, which waits for itself)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        try:
            async with asyncio.timeout(self._timeout):  # a timer, not the task `wait_for` starts
                await self._local.acquire()
        except TimeoutError:
            raise self._late() from None
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fd = self._fd
            await self._lock(fd, max(deadline - loop.time(), 0))
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._local.release()

    async def _lock(self, fd: int, seconds: float) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waiting = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.wait_for(asyncio.shield(waiting), seconds)
        except BaseException as exc:
            # Given up (cancelled, timed out) while a thread still waits in `flock`: that
            # descriptor goes with the thread and is closed when it returns, which lets go of
            # the lock if it got it; the next writer opens its own.
            self._fd = None
            waiting.add_done_callback(lambda _: os.close(fd))
            if isinstance(exc, TimeoutError):
                raise self._late() from None
            raise

    def _late(self) -> TimeoutError:
        return TimeoutError(f"no turn to write {self._path.name} within {self._timeout} s")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class GroupCommit(Generic[T]):
    """Writes that arrive while one of their transactions runs share the next transaction.

    For the small, frequent, independent writes every order makes (its read-model row, the
    command log): each caller's `await group.write(item)` returns once a transaction holding
    `item` has committed, as if it had written alone, and raises what its own write raised.
    Under load the items queue while a transaction waits for and holds the database, then
    commit together, so an order costs fewer transactions. `write(session, items)` must be
    idempotent per item and accept several items of one key (it sees them in arrival order).
    When a shared transaction fails, each of its items is retried alone, so one bad item
    fails only its own caller (unless the database itself failed: then all of them fail).
    """

    def __init__(self, db: Database, write: Write[T], *, limit: int = 64) -> None:
        self._db = db
        self._write = write
        self._limit = limit
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, item: T) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        await future

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[None]]] = []
        try:
            while self._queue:
                batch, self._queue = self._queue[: self._limit], self._queue[self._limit :]
                await self._commit(batch)
        except BaseException as exc:  # cancelled with the event loop: nobody waits forever
            for _, future in batch + self._queue:
                if not future.done():
                    future.set_exception(exc)
            self._queue = []
            raise
        finally:
            self._task = None

    async def _commit(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            async with self._db.writing() as conn:
                await self._write(conn, [item for item, _ in batch])
        except Exception as exc:
            # An item's own fault (a constraint, a bad value) fails only that item; no turn, a
            # locked or unreachable database fails them all at once, not once per item.
            if len(batch) > 1 and not isinstance(exc, UNREACHABLE):
                for one in batch:
                    await self._commit([one])
                return
            outcome: BaseException | None = exc
        else:
            outcome = None
        for _, future in batch:
            if not future.done():  # a caller that gave up has a cancelled future
                if outcome is None:
                    future.set_result(None)
                else:
                    future.set_exception(outcome)
