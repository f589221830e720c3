"""The hot path's statements, compiled once and run on the database driver itself.

A statement marked with `prepare(...)` (a module-level constant, or one a cached factory
builds once) is compiled once per dialect and set of parameter names, with its parameters' and
result columns' type processors looked up once. `DirectConnection` (SQLite) runs it on the
`sqlite3` connection and `PostgresConnection` on psycopg's, inside the transaction SQLAlchemy
began. SQLAlchemy's `Connection.execute` spends ~15 µs of CPU per statement on work whose answer
never changes for these statements (the cache key, the execution context, the parameters'
post-processing, the result's metadata), against ~7 µs for SQLite's own work on one of our
point lookups; on PostgreSQL its asyncio layer adds greenlet hand-offs on top (`bench/README.md`,
"2026-11-27, night: statements on the driver").

What a plan cannot do exactly as SQLAlchemy would, it leaves to SQLAlchemy: a statement whose
compiled form computes Python-side defaults, uses RETURNING, renders a literal or escapes a
parameter name; an empty expanding IN; a call that leaves out a required parameter; rows of an
executemany with different keys. One difference is deliberate: a plan's INSERT on PostgreSQL
adds no implicit RETURNING, so its row count is psycopg's (SQLAlchemy's is -1 there); a select's
is -1 on both. `tests/test_prepared.py` runs every prepared statement both ways over an order's
life, on both databases, and compares rows and table contents.
"""

from __future__ import annotations

import operator
import re
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import Dialect, Executable
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

_PREPARED: dict[int, Executable] = {}  # by id; holding the statement keeps its id its own


def prepare(*statements: Executable) -> None:
    """Mark statements (built once, never per call) to run as compiled plans on the driver."""
    for statement in statements:
        _PREPARED[id(statement)] = statement


def is_prepared(statement: object) -> bool:
    return _PREPARED.get(id(statement)) is statement


class Rows:
    """The result of a plan: what the hot path uses of SQLAlchemy's `CursorResult`."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if not self._rows:
            raise NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0]

    def scalars(self) -> Scalars:
        return Scalars(row[0] for row in self._rows)

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        return self.one()[0]


class Scalars(list[Any]):
    """The first column of each row, like SQLAlchemy's `ScalarResult`."""

    def all(self) -> list[Any]:
        return self

    def first(self) -> Any:
        return self[0] if self else None


def _row_class(keys: Sequence[str]) -> type[tuple[Any, ...]]:
    """A tuple whose items are also attributes by column key, with `_mapping` like `Row`."""
    names = tuple(keys)
    namespace: dict[str, Any] = {"__slots__": ()}
    for index, key in enumerate(names):
        namespace[key] = property(operator.itemgetter(index))
    namespace["_mapping"] = property(lambda row: dict(zip(names, row, strict=True)))
    return type("PreparedRow", (tuple,), namespace)


class Plan:
    """One statement compiled for one dialect and one set of parameter names."""

    __slots__ = ("_binds", "_dialect", "_named", "_parts", "_processors", "_row", "_sql", "_types")

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        self._dialect = dialect
        self._named = dialect.paramstyle == "pyformat"  # psycopg: %(name)s; sqlite3: ?
        binds = compiled.binds
        names = list(binds) if self._named else list(compiled.positiontup or ())
        self._sql = compiled.string
        # Per parameter: name, type processor, default (a bound value), required, expanding.
        self._binds: tuple[tuple[str, Processor, Any, bool, bool], ...] = tuple(
            (
                name,
                binds[name].type.dialect_impl(dialect).bind_processor(dialect),
                binds[name].effective_value,
                binds[name].required,
                binds[name].expanding,
            )
            for name in names
        )
        # An expanding IN is rendered per call, as SQLAlchemy does: `IN (?, ?)`, `IN (%(x_1)s, ...)`.
        self._parts = _POSTCOMPILE.split(self._sql) if "__[POSTCOMPILE_" in self._sql else None
        columns = compiled._result_columns  # keys and types, as SQLAlchemy's Result uses them
        self._row = _row_class([c[0] for c in columns]) if columns else None
        self._types = [c[3] for c in columns]
        self._processors: tuple[Processor, ...] | None = None  # from the first cursor's types

    @staticmethod
    def make(
        statement: Executable, dialect: Dialect, keys: tuple[str, ...], many: bool
    ) -> Plan | None:
        """The plan, or None when SQLAlchemy must run the statement (module docstring)."""
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys), for_executemany=many
        )
        if not isinstance(compiled, SQLCompiler) or dialect.paramstyle not in ("qmark", "pyformat"):
            return None
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.returning
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
        ):
            return None
        if any(b.literal_execute or (many and b.expanding) for b in compiled.binds.values()):
            return None
        return Plan(compiled, dialect)

    def arguments(self, params: Mapping[str, Any]) -> tuple[str, Values] | None:
        """The SQL and its values for `params`; None to leave the call to SQLAlchemy."""
        positional: list[Any] = []
        named: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for name, process, default, required, expanding in self._binds:
            if name in params:
                value = params[name]
            elif required:
                return None
            else:
                value = default
            if expanding:
                if not value:
                    return None  # SQLAlchemy renders an empty IN as an always-false test
                items = [process(v) for v in value] if process else list(value)
                counts[name] = len(items)
                if self._named:
                    named.update((f"{name}_{n}", v) for n, v in enumerate(items, 1))
                else:
                    positional.extend(items)
            elif self._named:
                named[name] = process(value) if process else value
            else:
                positional.append(process(value) if process else value)
        values: Values = named if self._named else positional
        if self._parts is None:
            return self._sql, values
        sql = self._parts[0]
        for name, text in zip(self._parts[1::2], self._parts[2::2], strict=True):
            if self._named:
                marks = ", ".join(f"%({name}_{n})s" for n in range(1, counts[name] + 1))
            else:
                marks = ", ".join("?" * counts[name])
            sql += marks + text
        return sql, values

    def result(self, description: Any, fetched: list[Any], rowcount: int) -> Rows:
        if self._row is None:
            return Rows([], rowcount)
        processors = self._processors
        if processors is None:
            dialect = self._dialect
            processors = self._processors = tuple(
                t.dialect_impl(dialect).result_processor(dialect, d[1])
                for t, d in zip(self._types, description, strict=True)
            )
        if any(processors):
            pairs = tuple(enumerate(processors))
            fetched = [tuple(p(r[i]) if p else r[i] for i, p in pairs) for r in fetched]
        row = self._row
        return Rows([row(r) for r in fetched], -1)  # as SQLAlchemy: no count for a select


_POSTCOMPILE = re.compile(r"__\[POSTCOMPILE_(\w+)\]")
Values = list[Any] | dict[str, Any]
_PLANS: dict[tuple[int, str, tuple[str, ...], bool], Plan | None] = {}


def _call(
    statement: Executable, dialect: Dialect, parameters: Any
) -> tuple[Plan, str, list[Values]] | None:
    """The plan, SQL and values (one set per row) of a call; None to leave it to SQLAlchemy."""
    if parameters is None:
        parameters = {}
    rows = [parameters] if isinstance(parameters, Mapping) else list(parameters)
    if not rows:
        return None
    keys = tuple(sorted(rows[0]))
    if any(len(r) != len(keys) or any(k not in r for k in keys) for r in rows[1:]):
        return None
    key = (id(statement), dialect.name, keys, len(rows) > 1)
    try:
        found = _PLANS[key]
    except KeyError:
        found = _PLANS[key] = Plan.make(statement, dialect, keys, len(rows) > 1)
    if found is None:
        return None
    sql = ""
    values: list[Values] = []
    for row in rows:
        arguments = found.arguments(row)
        if arguments is None:
            return None
        sql, row_values = arguments
        values.append(row_values)
    return found, sql, values


def run_sqlite(
    driver: sqlite3.Connection, statement: Executable, dialect: Dialect, parameters: Any
) -> Rows | None:
    """Run a prepared statement on sqlite3: its rows, or None to leave it to SQLAlchemy."""
    call = _call(statement, dialect, parameters)
    if call is None:
        return None
    found, sql, values = call
    try:
        if len(values) == 1:
            cursor = driver.execute(sql, values[0])
        else:
            cursor = driver.executemany(sql, values)
        fetched = cursor.fetchall() if cursor.description else []
        return found.result(cursor.description, fetched, cursor.rowcount)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


async def run_postgres(
    driver: psycopg.AsyncConnection[Any], statement: Executable, dialect: Dialect, parameters: Any
) -> Rows | None:
    """Run a prepared statement on psycopg: its rows, or None to leave it to SQLAlchemy."""
    call = _call(statement, dialect, parameters)
    if call is None:
        return None
    found, sql, values = call
    try:
        async with driver.cursor() as cursor:
            if len(values) == 1:
                await cursor.execute(sql, values[0])
            else:
                await cursor.executemany(sql, values)
            description = cursor.description  # psycopg builds it anew at each access
            fetched = await cursor.fetchall() if description else []
            return found.result(description, fetched, cursor.rowcount)
    except psycopg.Error as exc:
        raise DBAPIError.instance(sql, values, exc, psycopg.Error) from exc
