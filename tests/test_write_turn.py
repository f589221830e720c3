"""SQLite writers of several processes take turns on a file lock, handed on at once.

Two `Database` objects on one file stand for two processes (API and worker): each has its own
descriptor of the lock file, and `flock` excludes descriptors, not processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from store import migrate
from store.db import Database, WriteTurn
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


async def add_customer(db: Database, customer_id: str) -> None:
    async with db.writer() as session:
        session.add(Customer(customer_id=customer_id, name=customer_id, region="east"))


async def test_a_writer_waits_for_the_other_process_and_goes_the_moment_it_is_done(
    two: tuple[Database, Database],
) -> None:
    first, second = two
    holding = asyncio.Event()
    released_at = 0.0

    async def hold() -> None:
        nonlocal released_at
        async with first.writer() as session:
            session.add(Customer(customer_id=unique("C"), name="first", region="east"))
            holding.set()
            await asyncio.sleep(0.3)
        released_at = time.monotonic()

    holder = asyncio.create_task(hold())
    await holding.wait()
    started = time.monotonic()
    await add_customer(second, unique("C"))
    waited, after_release = time.monotonic() - started, time.monotonic() - released_at
    await holder

    assert waited >= 0.25  # it queued behind the open transaction
    # ... and went at once: SQLite's own busy handler polls every 100 ms by then
    assert after_release < 0.05


async def test_a_writer_that_gives_up_waiting_leaves_no_lock_behind(
    two: tuple[Database, Database],
) -> None:
    first, second = two
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold() -> None:
        async with first.writer():
            holding.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    waiter = asyncio.create_task(add_customer(second, unique("C")))
    await asyncio.sleep(0.1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    await holder

    ids = [unique("C"), unique("C"), unique("C")]
    await asyncio.wait_for(add_customer(second, ids[0]), 5)
    await asyncio.wait_for(add_customer(first, ids[1]), 5)
    await asyncio.wait_for(add_customer(second, ids[2]), 5)
    async with first.reader() as session:
        stored = (await session.exec(select(Customer.customer_id))).all()
    assert set(ids) <= set(stored)


async def test_no_turn_within_the_timeout_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "orders.db-writer"
    mine, theirs = WriteTurn(path, timeout=0.2), WriteTurn(path, timeout=0.2)
    async with theirs.take():
        with pytest.raises(TimeoutError, match=r"orders\.db-writer"):
            async with mine.take():
                pass
    async with mine.take():  # free again once they are done
        pass
    mine.close()
    theirs.close()


async def test_a_writer_nested_in_another_of_its_process_fails_instead_of_hanging(
    tmp_path: Path,
) -> None:
    turn = WriteTurn(tmp_path / "orders.db-writer", timeout=0.2)
    async with turn.take():
        with pytest.raises(TimeoutError, match="no turn to write"):
            async with turn.take():
                pass
    async with turn.take():  # and the outer one let go of its turn
        pass
    turn.close()
