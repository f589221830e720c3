"""The database: one async engine per role (reading, writing), used as SQLAlchemy documents
it: ORM sessions (`reader`, `writer`) or Core connections (`reading`); the API's reads and
writes use them.

SQLite keeps its writers apart with its own locking: WAL (readers never wait for a writer),
`busy_timeout` (a writer waits for the lock instead of failing) and `BEGIN IMMEDIATE` for every
write transaction (the lock is taken at the start, so two writers never deadlock upgrading a
read lock), set with the "connect" and "begin" events as SQLAlchemy's SQLite dialect documents.
PostgreSQL runs on the pooled async engine with `pool_pre_ping`.

Beside them, one synchronous engine per role, set up alike, runs whole transactions in a thread
(`write`, `read`): every step of the worker, and what the API shares with it (`store.repair`,
the audit chain). The statements of `store` are synchronous functions of a `Connection`. Through the async engine every statement crosses to the driver's
thread and back several times (on aiosqlite: cursor, execute, fetch, close) with greenlet
switches around each; a step of five statements paid that twenty times. In a thread, the
transaction is one crossing, and its statements run on the plain DBAPI driver.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, false, text, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.audit import AuditSeal
from store import tables  # registers the tables on SQLModel.metadata

# How long a SQLite writer waits for the write lock before it fails. Well under the 30 s a
# workflow step may run (`workflows.act.ACTIVITY_TIMEOUT`): a step that cannot get the lock fails
# by itself and is retried, instead of being cut off by Temporal's timeout mid-transaction.
SQLITE_BUSY_SECONDS = 15
READ_THREADS = 4  # transactions `read` runs at once

P = ParamSpec("P")
T = TypeVar("T")


class Database:
    """Owns the engines. Created in `worker.py` and the API lifespan, never at import time.

    `reader`/`writer` give async ORM sessions, `reading` a Core connection (for plain
    statements, a little cheaper than a session); what `writer` gives is one transaction,
    committed on success and rolled back on error. `write`/`read` run a synchronous function
    on a Core connection in one transaction, in a thread (`orm` gives it a session).

    `audit_seal` holds the keys of the audit chain written here (`Settings.audit_seal`); without
    one, the public development key, which a production deployment's keys never include.
    """

    def __init__(
        self, url: str, *, echo: bool = False, audit_seal: AuditSeal | None = None
    ) -> None:
        self.url = make_url(url)
        self.audit_seal = audit_seal or AuditSeal.development()
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            database = self.url.database
            # A `file:` URI (`?uri=true`, e.g. `mode=ro`, `immutable=1`) names no directory.
            if database and database != ":memory:" and not database.startswith("file:"):
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = _sqlite_engine(self.url, write=False, echo=echo)
            self.write_engine = _sqlite_engine(self.url, write=True, echo=echo)
            # `check_writes` on a connection of its own: not queued behind the one writer.
            self._probe_engine = _sqlite_engine(self.url, write=True, echo=echo, pooled=False)
            sync_url = self.url.set(drivername="sqlite")
            self.sync_read_engine = _sqlite_sync_engine(sync_url, write=False, echo=echo)
            self.sync_write_engine = _sqlite_sync_engine(sync_url, write=True, echo=echo)
            # One write connection (see `_sqlite_options`): more threads would only wait for it.
            write_threads = 1
        else:
            # Reads run in autocommit: at PostgreSQL's READ COMMITTED every statement takes its
            # own snapshot inside a transaction too, so only the BEGIN and ROLLBACK round trips
            # go. Writers keep their transactions; row locks (FOR UPDATE) are taken only there.
            self.read_engine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=5,
                max_overflow=15,
                pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
            )
            self.write_engine = create_async_engine(
                self.url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True
            )
            self._probe_engine = self.write_engine
            # psycopg 3 serves both: `postgresql+psycopg` is its synchronous dialect.
            sync_url = self.url.set(drivername="postgresql+psycopg")
            self.sync_read_engine = create_engine(
                sync_url,
                echo=echo,
                pool_size=READ_THREADS,
                pool_pre_ping=True,
                isolation_level="AUTOCOMMIT",
            )
            self.sync_write_engine = create_engine(
                sync_url, echo=echo, pool_size=10, max_overflow=0, pool_pre_ping=True
            )
            write_threads = 10
        self._read = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )

        # Threads of their own per role, so writers waiting for the lock never hold up reads.
        self._write_threads = ThreadPoolExecutor(write_threads, thread_name_prefix="db-write")
        self._read_threads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="db-read")

    async def write(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(conn, *args, **kwargs)` in one write transaction, in a thread: committed when it
        returns, rolled back when it raises."""
        return await asyncio.get_running_loop().run_in_executor(
            self._write_threads,
            functools.partial(_in_transaction, self.sync_write_engine, fn, *args, **kwargs),
        )

    async def read(
        self, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(conn, *args, **kwargs)` on a read connection (one snapshot on SQLite), in a
        thread."""
        return await asyncio.get_running_loop().run_in_executor(
            self._read_threads,
            functools.partial(_in_transaction, self.sync_read_engine, fn, *args, **kwargs),
        )

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        """A session for reads."""
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self._write() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """`reader` without the ORM: a Core connection."""
        async with self.read_engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_writes(self) -> None:
        """Raise unless a write transaction can begin and write: an UPDATE of no row, in a
        transaction begun as the writers' are (`BEGIN IMMEDIATE` on SQLite), rolled back. It
        fails where every write would: a read-only or immutable SQLite file, a read-only
        PostgreSQL transaction or standby, a role without the right to write."""
        record = tables.OrderRecord
        async with self._probe_engine.connect() as conn:
            transaction = await conn.begin()
            try:
                await conn.execute(update(record).where(false()).values(order_no=record.order_no))
            finally:
                await transaction.rollback()

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        await self.write_engine.dispose()
        if self._probe_engine is not self.write_engine:
            await self._probe_engine.dispose()
        self._write_threads.shutdown()
        self._read_threads.shutdown()
        self.sync_read_engine.dispose()
        self.sync_write_engine.dispose()


@contextmanager
def orm(conn: Connection) -> Iterator[Session]:
    """An ORM session in `conn`'s transaction (it joins it; `write` commits): for the steps
    that load and change rows as objects. What it changed is flushed when the block ends."""
    with Session(conn) as session:
        yield session
        session.flush()


async def in_session(
    session: AsyncSession,
    fn: Callable[Concatenate[Connection, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    """`fn(conn, *args, **kwargs)` on the connection of an async session, in its transaction:
    how a session's caller runs the synchronous statements of `store` (`AsyncSession.run_sync`)."""
    return await session.run_sync(lambda sync: fn(sync.connection(), *args, **kwargs))


def _in_transaction(
    engine: Engine, fn: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
) -> T:
    with engine.begin() as conn:
        return fn(conn, *args, **kwargs)


def _sqlite_engine(url: URL, *, write: bool, echo: bool, pooled: bool = True) -> AsyncEngine:
    """An engine on a SQLite database: WAL, a busy timeout, foreign keys; its transactions
    begin with `BEGIN IMMEDIATE` when `write`, else `BEGIN` (a consistent snapshot to read).
    Not `pooled`: a connection of its own each time."""
    options = _sqlite_options(write) if pooled else {"poolclass": NullPool}
    engine = create_async_engine(
        url, echo=echo, connect_args={"timeout": SQLITE_BUSY_SECONDS}, **options
    )
    _sqlite_events(engine.sync_engine, write=write)
    return engine


def _sqlite_sync_engine(url: URL, *, write: bool, echo: bool) -> Engine:
    """`_sqlite_engine` on the synchronous driver (pysqlite), for `Database.write`/`read`."""
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_SECONDS},
        **_sqlite_options(write),
    )
    _sqlite_events(engine, write=write)
    return engine


def _sqlite_options(write: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if write:
        # SQLite runs one write transaction at a time. More write connections in a process
        # would only wait inside SQLite's busy handler, which sleeps up to 100 ms between
        # tries; one connection makes this process's writers queue on the pool instead, which
        # hands it on the moment it is returned. Other processes meet the busy timeout.
        # Measured (16 concurrent small write transactions, loaded 2-core machine): 706-744
        # against 363-556 transactions/s, p99 wait 52-63 against 757-1,144 ms.
        options = {"pool_size": 1, "max_overflow": 0, "pool_timeout": SQLITE_BUSY_SECONDS}
    return options


def _sqlite_events(engine: Engine, *, write: bool) -> None:
    begin = "BEGIN IMMEDIATE" if write else "BEGIN"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (`_on_begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(begin)
