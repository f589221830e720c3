"""The database: one async engine per process, sessions for reading and for writing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from store.types import MoneyType


class Database:
    """Owns the engines. Created in `worker.py` and the API lifespan, never at import time.

    On SQLite, writing transactions start with `BEGIN IMMEDIATE` so two writers queue on the
    busy timeout instead of failing on a lock upgrade; readers never block them (WAL). On
    PostgreSQL one engine serves both, and row-level guards keep stock from being oversold.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
            self.read_engine = self._sqlite_engine(immediate=False, echo=echo)
            self.write_engine = self._sqlite_engine(immediate=True, echo=echo)
        else:
            self.read_engine = create_async_engine(
                self.url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20
            )
            self.write_engine = self.read_engine
        self._read = async_sessionmaker(
            self.read_engine, class_=AsyncSession, expire_on_commit=False
        )
        self._write = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False
        )

    def _sqlite_engine(self, *, immediate: bool, echo: bool) -> AsyncEngine:
        engine = create_async_engine(
            self.url, echo=echo, connect_args={"timeout": 30}, pool_pre_ping=False
        )
        begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when a transaction begins (see `_on_begin`).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

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

    async def create_schema(self) -> None:
        """Create missing tables, and add columns that newer code has to existing tables."""
        async with self.write_engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
            await conn.run_sync(_migrate_forward)

    async def ping(self) -> None:
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.read_engine.dispose()
        if self.write_engine is not self.read_engine:
            await self.write_engine.dispose()


def _migrate_forward(conn: Connection) -> None:
    """A minimal forward migration: new nullable or defaulted columns, and new indexes, on
    existing tables.

    Enough while the schema only grows; renames and type changes will need real migrations.
    """
    inspector = inspect(conn)
    for table in SQLModel.metadata.sorted_tables:
        existing = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in existing:
                continue
            ddl = f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" '
            ddl += column.type.compile(dialect=conn.dialect)
            default = getattr(column.default, "arg", None)
            if isinstance(default, bool):
                ddl += f" NOT NULL DEFAULT {'TRUE' if default else 'FALSE'}"
            elif isinstance(default, Decimal) and isinstance(column.type, MoneyType):
                cents = column.type.process_bind_param(default, conn.dialect)  # money as stored
                ddl += f" NOT NULL DEFAULT {cents}"
            elif isinstance(default, int | float):
                ddl += f" NOT NULL DEFAULT {default}"
            elif isinstance(default, str):
                quoted = default.replace("'", "''")
                ddl += f" NOT NULL DEFAULT '{quoted}'"
            conn.exec_driver_sql(ddl)
        indexes = {index["name"] for index in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn)
