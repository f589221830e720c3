"""People's notifications (`PersonNotice`): who a fired ladder step is for, written once per
(step, person); the e-mail's claim and outcome; and what the web app reads and marks.

The steps (`deliver`, `claim_email`, …) are synchronous functions of a connection, run by
`Database.write` in one transaction each; the web app's reads and marks are async."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import SQLModel, col
from sqlmodel import select as orm_select

from domain.messages import Notification
from store.db import Database
from store.tables import PersonNotice, User, UserContact  # noqa: F401 (defines the tables)

_NOTICES = SQLModel.metadata.tables["personnotice"]
_USERS = SQLModel.metadata.tables["user"]
_CUSTOMERS = SQLModel.metadata.tables["customer"]
_CONTACTS = SQLModel.metadata.tables["usercontact"]


@dataclass(frozen=True)
class Recipient:
    """One person a step is for, their notice's row, and where its e-mail stands."""

    notice_id: int
    username: str
    email: str | None
    language: str | None
    emailed: bool  # sent, or refused for good: nothing more to do


def _in_scope(user: Any, customer_id: str, region: str | None) -> bool:
    """As the API scopes a person (`api.auth.visible_customers`): no customers and no regions
    named, all orders; else the named customers' and the named regions' orders."""
    customers, regions = list(user.customer_ids or []), list(user.regions or [])
    if not customers and not regions:
        return True
    return customer_id in customers or (region is not None and region in regions)


def deliver(conn: Connection, notification: Notification) -> list[Recipient]:
    """Put the step in the list of every active person of a role it names who may see the
    order, once: a retry finds the rows there (unique (notification, person)) and adds none.
    A person added to the role between attempts is added too; nobody is added twice."""
    region = conn.execute(
        select(_CUSTOMERS.c.region).where(_CUSTOMERS.c.customer_id == notification.customer_id)
    ).scalar_one_or_none()
    people = conn.execute(
        select(_USERS).where(col(User.role).in_(notification.notify), col(User.active).is_(True))
    ).all()
    dialect_insert = sqlite_insert if conn.dialect.name == "sqlite" else pg_insert
    insert = dialect_insert(_NOTICES).on_conflict_do_nothing()  # (notification, person) exists
    for person in people:
        if not _in_scope(person, notification.customer_id, region):
            continue
        conn.execute(
            insert,
            {
                "notification_id": notification.id,
                "username": person.username,
                "role": str(person.role),
                "order_no": notification.order_no,
                "sla": str(notification.sla),
                "kind": str(notification.kind),
                "level": notification.level,
                "action": str(notification.action) if notification.action else None,
                "message": (notification.message or "")[:500] or None,
                "due_at": notification.due_at,
                "fired_at": notification.fired_at,
                "read_at": None,
                "email_claimed_at": None,
                "emailed_at": None,
                "emailed_to": None,
                "email_error": None,
            },
        )
    rows = conn.execute(
        select(
            _NOTICES.c.id,
            _NOTICES.c.username,
            _CONTACTS.c.email,
            _CONTACTS.c.language,
            _NOTICES.c.emailed_at,
            _NOTICES.c.email_error,
        )
        .outerjoin(_CONTACTS, _CONTACTS.c.username == _NOTICES.c.username)
        .where(_NOTICES.c.notification_id == notification.id)
        .order_by(_NOTICES.c.username)
    ).all()
    return [
        Recipient(
            notice_id=row.id,
            username=row.username,
            email=row.email,
            language=row.language,
            emailed=row.emailed_at is not None or row.email_error is not None,
        )
        for row in rows
    ]


def claim_email(conn: Connection, notice_id: int, at: datetime, lease: timedelta) -> bool:
    """Take the e-mail of one notice for this attempt: True when it is not sent and no other
    attempt holds it (or the other's lease ran out: it died mid-send)."""
    claimed = conn.execute(
        update(_NOTICES)
        .where(
            _NOTICES.c.id == notice_id,
            _NOTICES.c.emailed_at.is_(None),
            _NOTICES.c.email_error.is_(None),
            or_(
                _NOTICES.c.email_claimed_at.is_(None),
                _NOTICES.c.email_claimed_at < at - lease,
            ),
        )
        .values(email_claimed_at=at)
    )
    return claimed.rowcount == 1


def email_sent(conn: Connection, notice_id: int, to: str, at: datetime) -> None:
    conn.execute(
        update(_NOTICES).where(_NOTICES.c.id == notice_id).values(emailed_at=at, emailed_to=to)
    )


def email_refused(conn: Connection, notice_id: int, to: str, error: str) -> None:
    """The server refused the address for good (5xx): recorded, never retried."""
    conn.execute(
        update(_NOTICES)
        .where(_NOTICES.c.id == notice_id)
        .values(emailed_to=to, email_error=error[:300])
    )


def release_email(conn: Connection, notice_id: int) -> None:
    """The send failed before the server took the mail: the next attempt may send it."""
    conn.execute(
        update(_NOTICES)
        .where(_NOTICES.c.id == notice_id, _NOTICES.c.emailed_at.is_(None))
        .values(email_claimed_at=None)
    )


# --- what the web app reads and marks ------------------------------------------------------


async def unread_count(db: Database, username: str) -> int:
    """The person's unread notifications: one indexed count (`ix_personnotice_unread`)."""
    query = select(func.count()).where(
        _NOTICES.c.username == username, _NOTICES.c.read_at.is_(None)
    )
    async with db.reading() as conn:
        return int((await conn.execute(query)).scalar_one())


async def notices_of(
    db: Database, username: str, *, limit: int, offset: int = 0
) -> tuple[list[PersonNotice], int]:
    """A page of the person's notifications, newest first, and how many there are."""
    query = (
        orm_select(PersonNotice)
        .where(col(PersonNotice.username) == username)
        .order_by(col(PersonNotice.fired_at).desc(), col(PersonNotice.id).desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).where(_NOTICES.c.username == username)
    async with db.reader() as session:
        rows = list((await session.exec(query)).all())
    async with db.reading() as conn:
        total = int((await conn.execute(count)).scalar_one())
    return rows, total


def mark_read(conn: Connection, username: str, at: datetime, notice_id: int | None) -> int:
    """Mark one of the person's notifications (or all of them: None) read; how many changed.
    Another person's notification is never touched (0). Run with `Database.write`."""
    where = [_NOTICES.c.username == username, _NOTICES.c.read_at.is_(None)]
    if notice_id is not None:
        where.append(_NOTICES.c.id == notice_id)
    return int(conn.execute(update(_NOTICES).where(and_(*where)).values(read_at=at)).rowcount)


async def owns(db: Database, username: str, notice_id: int) -> bool:
    query = select(_NOTICES.c.id).where(_NOTICES.c.id == notice_id, _NOTICES.c.username == username)
    async with db.reading() as conn:
        return (await conn.execute(query)).first() is not None
