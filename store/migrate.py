"""The schema's migrations: alembic's scripts in `store/migrations`, run from code.

`alembic upgrade head` (from the repository root, alembic.ini) and `python -m store.migrate`
(anywhere the package is installed: the compose stack's `migrate` service) do the same. The API
and the workers never change the schema: they refuse to start on a database that is not at
this code's head (`require_current`). A database made before migrations existed (tables, no
`alembic_version`) is adopted by the first revision: see `r0001_baseline`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

SCRIPTS = Path(__file__).parent / "migrations"
# What every migration context is configured with, from the CLI (env.py) and from here.
CONTEXT_OPTIONS: dict[str, Any] = {
    # SQLite alters a table by copying it; batch mode writes migrations that do so.
    "render_as_batch": True,
    "compare_type": True,
}


# The PostgreSQL advisory lock an upgrade holds (any constant: only upgrades take it).
LOCK_KEY = 0x6F7264657273  # "orders"


class NotCurrent(RuntimeError):
    """The database's schema is not the one this code's migrations end at."""


def config(url: str | None = None) -> Config:
    """Alembic's configuration without alembic.ini: the scripts, and the database `url`
    (None: settings.py's DATABASE_URL)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPTS))
    cfg.attributes["database_url"] = url
    return cfg


def engine(url: str) -> AsyncEngine:
    """An engine for migrating: no pool, and on SQLite transactional DDL, so a migration
    that fails part-way leaves the schema as it was (the driver itself begins transactions
    only for INSERT, UPDATE and DELETE, and runs DDL outside them)."""
    parsed = make_url(url)
    migrating = create_async_engine(parsed, poolclass=NullPool)
    if parsed.get_backend_name() != "sqlite":
        return migrating
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)

    # SQLAlchemy's documented recipe for the asyncio SQLite driver: we BEGIN, not the driver.
    @event.listens_for(migrating.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(migrating.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return migrating


@asynccontextmanager
async def _transaction(url: str, *, write: bool = True) -> AsyncIterator[AsyncConnection]:
    connecting = engine(url) if write else create_async_engine(url, poolclass=NullPool)
    try:
        async with connecting.begin() as conn:
            yield conn
    finally:
        await connecting.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """`alembic upgrade <revision>` on `url`, in one transaction."""

    def run(conn: Connection) -> None:
        cfg = config(url)
        cfg.attributes["connection"] = conn  # env.py migrates on it, not on an engine of its own
        command.upgrade(cfg, revision)

    async with _transaction(url) as conn:
        if conn.dialect.name == "postgresql":
            # Two upgrades at once (an init container per replica; two in one process, where
            # alembic's `op` is global) take turns, and the second finds the work done.
            # SQLite's BEGIN IMMEDIATE already makes them take turns.
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        await conn.run_sync(run)


async def differences(url: str) -> list[Any]:
    """What `alembic check` would report: how the database's schema differs from the tables'
    models (empty when the migrations and the models agree)."""

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts=CONTEXT_OPTIONS)
        return list(compare_metadata(context, SQLModel.metadata))

    async with _transaction(url, write=False) as conn:
        return await conn.run_sync(compare)


async def require_current(url: str) -> None:
    """Raise `NotCurrent`, saying what to do, unless the database is at this code's head."""

    def current(conn: Connection) -> set[str]:
        return set(MigrationContext.configure(conn).get_current_heads())

    parsed = make_url(url)
    file = parsed.database if parsed.get_backend_name() == "sqlite" else None
    plain_file = file and file != ":memory:" and not file.startswith("file:")  # not a URI
    if plain_file and not await asyncio.to_thread(Path(str(file)).exists):
        found: set[str] = set()  # not made yet (connecting would make an empty file)
    else:
        async with _transaction(url, write=False) as conn:
            found = await conn.run_sync(current)
    heads = set(ScriptDirectory.from_config(config()).get_heads())
    if found == heads:
        return
    where = parsed.render_as_string(hide_password=True)
    at = ", ".join(sorted(found)) or "no revision (not migrated yet)"
    raise NotCurrent(
        f"the database {where} is at {at}; this code needs {', '.join(sorted(heads))}: "
        "run `alembic upgrade head` (or `python -m store.migrate`) before the API and workers"
    )


def main(argv: list[str]) -> None:
    """`python -m store.migrate [revision]`: upgrade settings.py's DATABASE_URL (to head)."""
    from settings import get_settings

    # Alembic says which revisions it runs (the compose stack's log of the `migrate` service).
    logging.basicConfig(level=logging.INFO, format="%(levelname)s [%(name)s] %(message)s")
    if len(argv) > 1:
        raise SystemExit("usage: python -m store.migrate [revision]")
    url = get_settings().database_url
    asyncio.run(upgrade(url, argv[0] if argv else "head"))
    print(
        f"{make_url(url).render_as_string(hide_password=True)} is at {argv[0] if argv else 'head'}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
