"""Failed attempts at a secret, per key (an account, an API key, a client address), in the
database: every API process counts the same failures (`api.throttle` decides what they earn).

A failure is one statement per key: an upsert that adds one to the key's row, or starts it again
at one when its last failure is older than `forget_before`, and returns the new count. On
PostgreSQL the row stays locked until the transaction ends, on SQLite the write transaction
holds the database: concurrent failures from any process count exactly, and the back-off a
count earns is written in the same transaction. Keys are taken in sorted order, so two
transactions never wait for each other's rows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import Connection, case, delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from store.tables import SignInThrottle

T = SignInThrottle


def state(conn: Connection, keys: Collection[str]) -> dict[str, tuple[int, datetime | None]]:
    """The recorded keys among `keys`: their failures and the end of their back-off."""
    rows = conn.execute(
        select(T.key, T.failures, T.blocked_until).where(col(T.key).in_(sorted(keys)))
    )
    return {key: (failures, until) for key, failures, until in rows}


def add_failure(
    conn: Connection, keys: Collection[str], now: datetime, forget_before: datetime
) -> dict[str, int]:
    """One more failure for each key; their counts since they were last forgotten."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    counts: dict[str, int] = {}
    for key in sorted(keys):
        statement = dialect.insert(T).values(key=key, failures=1, last_failure_at=now)
        statement = statement.on_conflict_do_update(
            index_elements=[col(T.key)],
            set_={
                # Both read the row as it was before this statement.
                "failures": case(
                    (col(T.last_failure_at) < forget_before, 1), else_=col(T.failures) + 1
                ),
                "last_failure_at": now,
            },
        )
        counts[key] = conn.execute(statement.returning(col(T.failures))).scalar_one()
    return counts


def block(conn: Connection, until: Mapping[str, datetime]) -> None:
    """Each key in back-off until its time (a later back-off already recorded stays)."""
    for key in sorted(until):
        conn.execute(
            update(T)
            .where(
                col(T.key) == key,
                or_(col(T.blocked_until).is_(None), col(T.blocked_until) < until[key]),
            )
            .values(blocked_until=until[key])
        )


def clear(conn: Connection, keys: Collection[str]) -> None:
    """Forget the keys' failures (a success)."""
    conn.execute(delete(T).where(col(T.key).in_(sorted(keys))))


def forget(conn: Connection, before: datetime, now: datetime) -> None:
    """Drop the rows of keys whose last failure is older than `before` and whose back-off is
    over: attempts at names that do not exist must not grow the table for ever."""
    conn.execute(
        delete(T).where(
            col(T.last_failure_at) < before,
            or_(col(T.blocked_until).is_(None), col(T.blocked_until) <= now),
        )
    )
