"""Alembic's environment: the tables' models are the target, the database is settings.py's
DATABASE_URL (or the one `store.migrate` passes), reached through the async engine."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import BigInteger, Connection, DateTime, String
from sqlalchemy.types import TypeEngine
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

from store import migrate
from store.types import MoneyType, UTCDateTime

config = context.config
if config.config_file_name is not None:  # the CLI (alembic.ini), not `store.migrate`
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from settings import get_settings

    return get_settings().database_url


def render_item(kind: str, item: Any, autogen: AutogenContext) -> str | Literal[False]:
    """New revisions name plain SQLAlchemy types, not the code's (a migration must still run
    when the code that wrote it has changed): the type each one stores as."""
    if kind != "type":
        return False
    plain: TypeEngine[Any] | None = None
    if isinstance(item, MoneyType):
        plain = BigInteger()
    elif isinstance(item, UTCDateTime):
        plain = DateTime(timezone=True)
    elif isinstance(item, AutoString):
        plain = String(item.length)
    if plain is None:
        return False
    return f"sa.{plain!r}"


def run_migrations_offline() -> None:
    """`alembic upgrade --sql`: the DDL as a script, with no database."""
    context.configure(
        url=database_url(),
        target_metadata=SQLModel.metadata,
        literal_binds=True,
        render_item=render_item,
        **migrate.CONTEXT_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        # One transaction for the whole upgrade, also on SQLite: `store.migrate.engine` makes
        # its DDL transactional.
        transactional_ddl=True,
        render_item=render_item,
        **migrate.CONTEXT_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    engine = migrate.engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_on)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    run_on(connection)  # `store.migrate.upgrade`: its connection, inside its transaction
else:
    asyncio.run(run_async())
