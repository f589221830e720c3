"""`python -m store.users create <username> <role>`: the first admin, outside development.

Asks for the password (or reads it from `USER_PASSWORD`); refuses an existing name.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import re
import sys

from domain.auth import NAME_PATTERN, Role
from domain.passwords import hash_password
from settings import get_settings
from store import migrate
from store.db import Database
from store.tables import User

USAGE = f"usage: python -m store.users create <username> <{'|'.join(Role)}>"


async def create(username: str, role: Role, password: str) -> None:
    settings = get_settings()
    url = settings.database_url
    await migrate.require_current(url)
    db = Database(url, audit_seal=settings.audit_seal())
    try:
        async with db.writer() as session:
            if await session.get(User, username) is not None:
                raise SystemExit(f"user {username} already exists")
            session.add(User(username=username, role=role, password_hash=hash_password(password)))
    finally:
        await db.dispose()


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[0] != "create" or argv[2] not in set(Role):
        raise SystemExit(USAGE)
    if not re.fullmatch(NAME_PATTERN, argv[1]) or len(argv[1]) > 64:
        # As POST /users: no `:`, so no user is named like an API key's caller (`key:…`).
        raise SystemExit("a user name is 1-64 of A-Z a-z 0-9 _ . @ -")
    password = os.environ.get("USER_PASSWORD") or getpass.getpass("password: ")
    if len(password) < 8:
        raise SystemExit("the password needs at least 8 characters")
    asyncio.run(create(argv[1], Role(argv[2]), password))
    print(f"created {argv[1]} ({argv[2]})")


if __name__ == "__main__":
    main(sys.argv[1:])
