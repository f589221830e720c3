"""SQLite keeps writers apart with its own locking: a writer waits for another process's
transaction instead of failing, readers never wait for a writer (WAL), and a failed or
abandoned transaction leaves nothing behind.

Two `Database` objects on one file stand for two processes (API and worker): each has its own
engines and connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from store import migrate
from store.db import Database, orm
from store.tables import Customer
from tests.conftest import unique


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[tuple[Database, Database]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    await migrate.upgrade(url)
    first, second = Database(url), Database(url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def add_customer(db: Database, customer_id: str, name: str = "n") -> None:
    async with db.writer() as session:
        session.add(Customer(customer_id=customer_id, name=name, region="east"))


async def stored(db: Database) -> set[str]:
    async with db.reader() as session:
        return set((await session.exec(select(Customer.customer_id))).all())


async def test_a_writer_waits_for_the_other_process_instead_of_failing(
    two: tuple[Database, Database],
) -> None:
    first, second = two
    holding = asyncio.Event()
    held = unique("C")

    async def hold() -> None:
        async with first.writer() as session:
            session.add(Customer(customer_id=held, name="first", region="east"))
            await session.flush()
            holding.set()
            await asyncio.sleep(0.3)

    holder = asyncio.create_task(hold())
    await holding.wait()
    started = time.monotonic()
    waiting = unique("C")
    await add_customer(second, waiting)
    waited = time.monotonic() - started
    await holder

    assert waited >= 0.2  # it queued behind the open transaction (BEGIN IMMEDIATE, busy timeout)
    assert {held, waiting} <= await stored(second)


async def test_readers_do_not_wait_for_a_writer(two: tuple[Database, Database]) -> None:
    first, second = two
    before = unique("C")
    await add_customer(first, before)
    holding, done = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with first.writer() as session:
            session.add(Customer(customer_id=unique("C"), name="uncommitted", region="east"))
            await session.flush()
            holding.set()
            await done.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    try:
        # WAL: the reader sees the last commit at once, without the writer's uncommitted row.
        async with asyncio.timeout(2):
            async with second.reader() as session:
                names = (
                    await session.exec(
                        select(Customer.name).where(col(Customer.customer_id) == before)
                    )
                ).all()
                uncommitted = (
                    await session.exec(select(Customer).where(col(Customer.name) == "uncommitted"))
                ).all()
        assert names == ["n"] and uncommitted == []
    finally:
        done.set()
        await holder


async def test_a_writer_that_gives_up_waiting_leaves_no_lock_behind(
    two: tuple[Database, Database],
) -> None:
    first, second = two
    release, holding = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with first.writer() as session:
            await session.connection()  # BEGIN IMMEDIATE: the write lock is held
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(add_customer(second, unique("C")))
    await asyncio.sleep(0.1)
    waiter.cancel()
    # The driver's thread is still inside SQLite's busy wait; it ends once the lock is free,
    # and the cancelled writer then lets go of what it got.
    release.set()
    await holder
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(waiter, 5)

    ids = [unique("C"), unique("C"), unique("C")]
    await asyncio.wait_for(add_customer(second, ids[0]), 5)
    await asyncio.wait_for(add_customer(first, ids[1]), 5)
    await asyncio.wait_for(add_customer(second, ids[2]), 5)
    assert set(ids) <= await stored(first)


async def test_a_failed_transaction_is_rolled_back_and_the_next_one_writes(
    fresh_db: Database,
) -> None:
    customer_id = unique("C")
    await add_customer(fresh_db, customer_id, "first")
    with pytest.raises(IntegrityError):
        async with fresh_db.writer() as session:
            session.add(Customer(customer_id=unique("C"), name="lost", region="east"))
            await session.flush()
            session.add(Customer(customer_id=customer_id, name="again", region="east"))
    await add_customer(fresh_db, unique("C"), "next")
    async with fresh_db.reader() as session:
        names = (await session.exec(select(Customer.name))).all()
    assert sorted(names) == ["first", "next"]


def _add_in_thread(conn: Connection, customer_id: str, name: str, hold: float = 0) -> None:
    with orm(conn) as session:
        session.add(Customer(customer_id=customer_id, name=name, region="east"))
    time.sleep(hold)  # blocks only `write`'s own thread, the lock held meanwhile


async def test_a_step_in_a_thread_takes_the_write_lock_at_its_start(
    two: tuple[Database, Database],
) -> None:
    """`write`'s engine begins with BEGIN IMMEDIATE too: its transaction holds the lock from
    its first statement, and the other process's writer queues behind it."""
    first, second = two
    holding = asyncio.Event()

    def hold(conn: Connection) -> None:
        conn.execute(text("SELECT 1"))  # a read only: a deferred BEGIN would take no lock
        first_loop.call_soon_threadsafe(holding.set)
        time.sleep(0.3)

    first_loop = asyncio.get_running_loop()
    holder = asyncio.create_task(first.write(hold))
    await holding.wait()
    started = time.monotonic()
    waiting = unique("C")
    await add_customer(second, waiting)
    waited = time.monotonic() - started
    await holder
    assert waited >= 0.2

    # And the other way round: a step waits for the other process's open transaction.
    in_thread = unique("C")
    writer_holds = asyncio.Event()

    async def hold_async() -> None:
        async with second.writer() as session:
            await session.connection()
            writer_holds.set()
            await asyncio.sleep(0.3)

    other = asyncio.create_task(hold_async())
    await writer_holds.wait()
    started = time.monotonic()
    await first.write(_add_in_thread, in_thread, "thread")
    assert time.monotonic() - started >= 0.2
    await other
    assert {waiting, in_thread} <= await stored(second)


async def test_a_failed_step_in_a_thread_is_rolled_back_and_the_next_one_writes(
    fresh_db: Database,
) -> None:
    customer_id = unique("C")
    await fresh_db.write(_add_in_thread, customer_id, "first")

    def add_twice(conn: Connection) -> None:
        _add_in_thread(conn, unique("C"), "lost")
        _add_in_thread(conn, customer_id, "again")

    with pytest.raises(IntegrityError):
        await fresh_db.write(add_twice)
    await fresh_db.write(_add_in_thread, unique("C"), "next")
    names = await fresh_db.read(lambda conn: list(conn.scalars(select(Customer.name))))
    assert sorted(names) == ["first", "next"]
