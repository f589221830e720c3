"""What a prebuilt statement's transaction costs before its SQL, on SQLite or PostgreSQL.

`python -m bench.statements [--rounds 8] [--calls 500] [--database-url URL]` prints the median
CPU per call (`time.process_time`, all rounds interleaved in one process, so the machine's
drift hits every call alike) of a write transaction with one point select and of read
connections with one and with ten:

- on a SQLite file (the default): through SQLAlchemy's async engine and through the plain
  connection `Database.reading()` and `Database.writing()` hand out there
  (`store.sqlite_inline.DirectConnection`);
- on PostgreSQL (`--database-url postgresql+psycopg://...`, in a schema of its own, dropped at
  the end): through `Database.writing()` and `Database.reading()` as the hot path uses them,
  and, for reference, the same transaction and selects on one psycopg connection alone
  (prepared, no pool).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import psycopg
from sqlalchemy import select
from sqlmodel import SQLModel

from bench.procstat import machine, machine_line
from bench.stack import drop_postgres_schema, fresh_postgres_schema, libpq_url
from store import migrate
from store.db import Database

ORDERS = SQLModel.metadata.tables["orderrecord"]
POINT_SELECT = select(ORDERS.c.order_no, ORDERS.c.status).where(ORDERS.c.order_no == "SO-1")
PSYCOPG_SELECT = "SELECT order_no, status FROM orderrecord WHERE order_no = %s"

Calls = dict[str, Callable[[], Awaitable[None]]]


def sqlite_calls(db: Database) -> Calls:
    async def async_write() -> None:
        async with db._write_turn(), db.write_engine.begin() as conn:
            await conn.execute(POINT_SELECT)

    async def async_read() -> None:
        async with db.read_engine.connect() as conn:
            for _ in range(10):
                await conn.execute(POINT_SELECT)

    return {
        "write transaction, 1 point select: async engine": async_write,
        "write transaction, 1 point select: direct": _write(db),
        "read connection, 10 point selects: async engine": async_read,
        "read connection, 10 point selects: direct": _read(db, 10),
    }


def postgres_calls(db: Database, alone: psycopg.AsyncConnection[tuple[str, str]]) -> Calls:
    async def psycopg_write() -> None:
        async with alone.transaction():
            cursor = await alone.execute(PSYCOPG_SELECT, ("SO-1",), prepare=True)
            await cursor.fetchone()

    async def psycopg_read() -> None:
        for _ in range(10):
            cursor = await alone.execute(PSYCOPG_SELECT, ("SO-1",), prepare=True)
            await cursor.fetchone()

    return {
        "write transaction, 1 point select: writing()": _write(db),
        "write transaction, 1 point select: psycopg alone": psycopg_write,
        "read connection, 1 point select: reading()": _read(db, 1),
        "read connection, 10 point selects: reading()": _read(db, 10),
        "read, 10 point selects: psycopg alone": psycopg_read,
    }


def _write(db: Database) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        async with db.writing() as conn:
            await conn.execute(POINT_SELECT)

    return call


def _read(db: Database, selects: int) -> Callable[[], Awaitable[None]]:
    async def call() -> None:
        async with db.reading() as conn:
            for _ in range(selects):
                await conn.execute(POINT_SELECT)

    return call


@asynccontextmanager
async def target(database_url: str | None) -> AsyncIterator[Calls]:
    """The calls to measure, on a fresh database that is gone afterwards."""
    if database_url is None:
        with tempfile.TemporaryDirectory() as workdir:
            url = f"sqlite+aiosqlite:///{Path(workdir) / 'orders.db'}"
            await migrate.upgrade(url)
            db = Database(url)
            try:
                yield sqlite_calls(db)
            finally:
                await db.dispose()
        return
    url, schema = fresh_postgres_schema(database_url)
    await migrate.upgrade(url)
    db = Database(url)
    try:
        async with await psycopg.AsyncConnection.connect(libpq_url(url), autocommit=True) as alone:
            yield postgres_calls(db, alone)
    finally:
        await db.dispose()
        drop_postgres_schema(database_url, schema)


async def measure(rounds: int, per_round: int, database_url: str | None) -> dict[str, float]:
    async with target(database_url) as calls:
        samples: dict[str, list[float]] = {}
        for _ in range(rounds):
            for name, call in calls.items():
                for _ in range(per_round // 10):  # warm the pools and caches
                    await call()
                started = time.process_time()
                for _ in range(per_round):
                    await call()
                spent = time.process_time() - started
                samples.setdefault(name, []).append(spent / per_round * 1e6)
        return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--database-url", help="a PostgreSQL URL (postgresql+psycopg://...); default: SQLite"
    )
    args = parser.parse_args()
    medians = asyncio.run(measure(args.rounds, args.calls, args.database_url))
    where = f" --database-url {args.database_url}" if args.database_url else ""
    print(f"machine: {machine_line(machine())}")
    print(f"command: python -m bench.statements --rounds {args.rounds} --calls {args.calls}{where}")
    for name, micros in medians.items():
        print(f"  {name:<52} {micros:8.0f} µs CPU (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
