"""Row helpers every business area's steps share: insert a row once, filter by given ids."""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col


@functools.cache
def _insert_new(table: Table, dialect: str) -> Any:
    """Insert a row unless one with its key exists (built once per table and dialect, so
    SQLAlchemy's compiled cache serves every call)."""
    return (sqlite_insert if dialect == "sqlite" else pg_insert)(table).on_conflict_do_nothing()


def insert_once(conn: Connection, table: Table, new: dict[str, Any]) -> dict[str, Any]:
    """Insert `new`, keyed by its `id`, unless a row with that id exists (a retry): the row as
    it is now. One statement when the row is new."""
    if (conn.execute(_insert_new(table, conn.dialect.name), new)).rowcount == 1:
        return new
    row = (conn.execute(sa_select(table).where(table.c.id == new["id"]))).one()
    return dict(row._mapping)


def only(column: Any, ids: list[str] | None) -> list[Any]:
    """A filter to `ids` when given (a compensation of some rows), none for all."""
    return [] if ids is None else [col(column).in_(ids)]
