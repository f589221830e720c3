"""The hot path's statements, compiled once and run on the SQLite driver itself.

A statement marked with `prepare(...)` (a module-level constant, or one a cached factory
builds once) is compiled once per set of parameter names, with its parameters' and result
columns' type processors looked up once; `DirectConnection` then runs it on the `sqlite3`
connection directly. SQLAlchemy's `Connection.execute` spends ~15 µs of CPU per statement on
work whose answer never changes for these statements (the cache key, the execution context, the
parameters' post-processing, the result's metadata), against ~7 µs for SQLite's own work on
one of our point lookups (`bench/README.md`, "2026-11-27, night: statements on the driver").

What a plan cannot do exactly as SQLAlchemy would, it leaves to SQLAlchemy: a statement whose
compiled form computes Python-side defaults, uses RETURNING, renders a literal or escapes a
parameter name; an empty expanding IN; a call that leaves out a required parameter; rows of an
executemany with different keys. `tests/test_prepared.py` checks, statement by statement, that
both ways give the same rows and the same effects.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Dialect, Executable
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.sql.compiler import SQLCompiler

Processor = Callable[[Any], Any] | None

_PREPARED: dict[int, Executable] = {}  # by id; holding the statement keeps its id its own


def prepare(*statements: Executable) -> None:
    """Mark statements (built once, never per call) to run as compiled plans on SQLite."""
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

    __slots__ = ("_binds", "_expanding", "_parts", "_results", "_row", "_sql")

    def __init__(self, compiled: SQLCompiler, dialect: Dialect) -> None:
        names = compiled.positiontup or []
        binds = compiled.binds
        self._sql = compiled.string
        # Per position: name, type processor, default (a bound value), required.
        self._binds: tuple[tuple[str, Processor, Any, bool], ...] = tuple(
            (
                name,
                binds[name].type.dialect_impl(dialect).bind_processor(dialect),
                binds[name].effective_value,
                binds[name].required,
            )
            for name in names
        )
        self._expanding = frozenset(name for name in names if binds[name].expanding)
        # An expanding IN is rendered per call, as SQLAlchemy does: `IN (?, ?, ?)`.
        self._parts: list[str] | None = None
        if self._expanding:
            self._parts = []
            rest = self._sql
            for name in names:
                if name in self._expanding:
                    token = f"__[POSTCOMPILE_{name}]"
                    before, _, rest = rest.partition(token)
                    self._parts.append(before)
            self._parts.append(rest)
        columns = compiled._result_columns  # keys and types, as SQLAlchemy's Result uses them
        if columns:
            self._row: type[tuple[Any, ...]] | None = _row_class([c[0] for c in columns])
            self._results: tuple[Processor, ...] = tuple(
                c[3].dialect_impl(dialect).result_processor(dialect, None) for c in columns
            )
        else:
            self._row, self._results = None, ()

    @staticmethod
    def make(
        statement: Executable, dialect: Dialect, keys: tuple[str, ...], many: bool
    ) -> Plan | None:
        """The plan, or None when SQLAlchemy must run the statement (module docstring)."""
        compiled = statement.compile(  # type: ignore[attr-defined]
            dialect=dialect, column_keys=list(keys), for_executemany=many
        )
        if not isinstance(compiled, SQLCompiler) or dialect.paramstyle != "qmark":
            return None
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.returning
            or compiled.literal_execute_params
            or compiled.escaped_bind_names
            or compiled.positiontup is None
        ):
            return None
        binds = [compiled.binds[name] for name in compiled.positiontup]
        if any(b.literal_execute or (many and b.expanding) for b in binds):
            return None
        return Plan(compiled, dialect)

    def arguments(self, params: Mapping[str, Any]) -> tuple[str, list[Any]] | None:
        """The SQL and its positional values for `params`; None to leave the call to SQLAlchemy."""
        values: list[Any] = []
        counts: list[int] = []
        for name, process, default, required in self._binds:
            if name in params:
                value = params[name]
            elif required:
                return None
            else:
                value = default
            if name in self._expanding:
                if not value:
                    return None  # SQLAlchemy renders an empty IN as an always-false test
                items = [process(v) for v in value] if process else list(value)
                values.extend(items)
                counts.append(len(items))
            else:
                values.append(process(value) if process else value)
        if self._parts is None:
            return self._sql, values
        sql = self._parts[0]
        for count, part in zip(counts, self._parts[1:], strict=True):
            sql += ", ".join("?" * count) + part
        return sql, values

    def rows(self, cursor: sqlite3.Cursor) -> Rows:
        if self._row is None:
            return Rows([], cursor.rowcount)
        row, processors = self._row, self._results
        fetched = cursor.fetchall()
        if any(processors):
            pairs = tuple(enumerate(processors))
            fetched = [tuple(p(r[i]) if p else r[i] for i, p in pairs) for r in fetched]
        return Rows([row(r) for r in fetched], cursor.rowcount)


_PLANS: dict[tuple[int, str, tuple[str, ...], bool], Plan | None] = {}


def plan(statement: Executable, dialect: Dialect, keys: tuple[str, ...], many: bool) -> Plan | None:
    key = (id(statement), dialect.name, keys, many)
    try:
        return _PLANS[key]
    except KeyError:
        found = _PLANS[key] = Plan.make(statement, dialect, keys, many)
        return found


def run_sqlite(
    raw: sqlite3.Connection, statement: Executable, dialect: Dialect, parameters: Any
) -> Rows | None:
    """Run a prepared statement on the driver: its rows, or None to leave it to SQLAlchemy."""
    if parameters is None:
        parameters = {}
    if isinstance(parameters, Mapping):
        found = plan(statement, dialect, tuple(sorted(parameters)), False)
        if found is None:
            return None
        arguments = found.arguments(parameters)
        if arguments is None:
            return None
        sql, values = arguments
        try:
            return found.rows(raw.execute(sql, values))
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc
    if not parameters:
        return None
    keys = tuple(sorted(parameters[0]))
    if any(len(p) != len(keys) or any(k not in p for k in keys) for p in parameters):
        return None
    found = plan(statement, dialect, keys, len(parameters) > 1)
    if found is None:
        return None
    rows: list[list[Any]] = []
    sql = ""
    for params in parameters:
        arguments = found.arguments(params)
        if arguments is None:
            return None
        sql, values = arguments
        rows.append(values)
    try:
        if len(rows) == 1:
            return found.rows(raw.execute(sql, rows[0]))
        return found.rows(raw.executemany(sql, rows))
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, rows, exc, sqlite3.Error) from exc
