"""What a prebuilt statement's transaction costs on a SQLite file, two ways, interleaved.

`python -m bench.statements [--rounds 8] [--calls 500]` prints the median CPU per call
(`time.process_time`, all rounds interleaved in one process, so the machine's drift hits both
alike) of a write transaction with one point select and of a read connection with ten, through
SQLAlchemy's async engine and through the plain connection `Database.reading()` and
`Database.writing()` hand out on a SQLite file (`store.sqlite_inline.DirectConnection`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from sqlmodel import SQLModel

from bench.procstat import machine, machine_line
from store.db import Database

ORDERS = SQLModel.metadata.tables["orderrecord"]
POINT_SELECT = select(ORDERS.c.order_no, ORDERS.c.status).where(ORDERS.c.order_no == "SO-1")


def calls(db: Database) -> dict[str, Callable[[], Awaitable[None]]]:
    async def async_write() -> None:
        async with db._write_turn(), db.write_engine.begin() as conn:
            await conn.execute(POINT_SELECT)

    async def direct_write() -> None:
        async with db.writing() as conn:
            await conn.execute(POINT_SELECT)

    async def async_read() -> None:
        async with db.read_engine.connect() as conn:
            for _ in range(10):
                await conn.execute(POINT_SELECT)

    async def direct_read() -> None:
        async with db.reading() as conn:
            for _ in range(10):
                await conn.execute(POINT_SELECT)

    return {
        "write transaction, 1 point select: async engine": async_write,
        "write transaction, 1 point select: direct": direct_write,
        "read connection, 10 point selects: async engine": async_read,
        "read connection, 10 point selects: direct": direct_read,
    }


async def measure(rounds: int, per_round: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir:
        db = Database(f"sqlite+aiosqlite:///{Path(workdir) / 'orders.db'}")
        try:
            await db.create_schema()
            samples: dict[str, list[float]] = {}
            for _ in range(rounds):
                for name, call in calls(db).items():
                    for _ in range(per_round // 10):  # warm the pools and caches
                        await call()
                    started = time.process_time()
                    for _ in range(per_round):
                        await call()
                    spent = time.process_time() - started
                    samples.setdefault(name, []).append(spent / per_round * 1e6)
            return {name: statistics.median(values) for name, values in samples.items()}
        finally:
            await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    medians = asyncio.run(measure(args.rounds, args.calls))
    print(f"machine: {machine_line(machine())}")
    print(f"command: python -m bench.statements --rounds {args.rounds} --calls {args.calls}")
    for name, micros in medians.items():
        print(f"  {name:<52} {micros:8.0f} µs CPU (median of {args.rounds} rounds)")


if __name__ == "__main__":
    main()
