"""On a SQLite file, statements run on the event loop's own thread (`store.sqlite_inline`), and
the prebuilt statements of `reading()`/`writing()` without SQLAlchemy's asyncio layer."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel, select

from store import migrate
from store.db import Database
from store.sqlite_inline import DirectConnection, InlineConnection
from store.tables import Customer
from tests.conftest import unique


async def test_reads_and_writes_run_on_the_loops_thread_and_start_no_thread(
    fresh_db: Database,
) -> None:
    threads = set(threading.enumerate())  # some may be ending (the migration's aiosqlite)
    for _ in range(3):
        async with fresh_db.writer() as session:
            session.add(Customer(customer_id=unique("C"), name="n", region="east"))
    async with fresh_db.writer() as writing, fresh_db.reader() as reading:
        for session in (writing, reading):
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection)
            driver._conn.create_function("thread_id", 0, threading.get_ident)
            ran_on = (await connection.execute(text("SELECT thread_id()"))).scalar_one()
            assert ran_on == threading.get_ident()
    assert set(threading.enumerate()) <= threads  # aiosqlite starts one per connection


async def test_a_failed_statement_raises_the_drivers_error_and_the_connection_goes_on(
    fresh_db: Database,
) -> None:
    customer_id = unique("C")
    async with fresh_db.writer() as session:
        session.add(Customer(customer_id=customer_id, name="first", region="east"))
    with pytest.raises(IntegrityError):
        async with fresh_db.writer() as session:
            session.add(Customer(customer_id=customer_id, name="again", region="east"))
    async with fresh_db.writer() as session:  # rolled back: the next transaction writes
        session.add(Customer(customer_id=unique("C"), name="next", region="east"))
    async with fresh_db.reader() as session:
        names = (await session.exec(select(Customer.name))).all()
    assert sorted(names) == ["first", "next"]


async def test_a_url_with_driver_options_keeps_aiosqlites_own_connection(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}?timeout=5")
    try:
        await migrate.upgrade(str(database.url))
        async with database.reader() as session:
            connection = await session.connection()
            driver = (await connection.get_raw_connection()).driver_connection
            assert not isinstance(driver, InlineConnection)
            assert (await connection.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await database.dispose()


CUSTOMERS = SQLModel.metadata.tables["customer"]


async def test_prebuilt_statements_run_on_a_direct_connection_and_a_failed_write_leaves_nothing(
    fresh_db: Database,
) -> None:
    first, failed = unique("C"), unique("C")
    async with fresh_db.writing() as conn:
        assert isinstance(conn, DirectConnection)
        assert conn.sync_connection.in_transaction()
        other = sqlite3.connect(str(fresh_db.url.database), timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")  # this writer's BEGIN IMMEDIATE holds the lock
        other.close()
        conn.sync_connection.connection.driver_connection.create_function(  # type: ignore[union-attr]
            "thread_id", 0, threading.get_ident
        )
        assert (
            await conn.execute(text("SELECT thread_id()"))
        ).scalar_one() == threading.get_ident()
        await conn.execute(insert(CUSTOMERS), {"customer_id": first, "name": "n", "region": "e"})
    with pytest.raises(RuntimeError):
        async with fresh_db.writing() as conn:
            await conn.execute(
                insert(CUSTOMERS), {"customer_id": failed, "name": "n", "region": "e"}
            )
            raise RuntimeError("the step failed after its first statement")
    async with fresh_db.reading() as conn:
        assert isinstance(conn, DirectConnection)
        ids = (await conn.execute(text("SELECT customer_id FROM customer"))).scalars().all()
    assert ids == [first]


async def test_many_connections_open_at_once_never_wait_for_the_pool(fresh_db: Database) -> None:
    """The direct pool grows instead: a wait there would block the loop's thread."""
    async with AsyncExitStack() as stack:
        readers = [await stack.enter_async_context(fresh_db.reading()) for _ in range(30)]
        writer = await stack.enter_async_context(fresh_db.writing())
        for conn in [*readers, writer]:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1


async def test_a_url_with_driver_options_keeps_the_async_engine_for_prebuilt_statements(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}?timeout=5")
    try:
        await migrate.upgrade(str(database.url))
        async with database.reading() as conn:
            assert isinstance(conn, AsyncConnection)
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await database.dispose()
