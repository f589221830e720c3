"""Signing test requests in as the person each test names, through the real token flow.

Tests describe commands the way people say them ("sup.zhang, as supervisor, approves"): a body
with `approver`/`role`, `entered_by`, `requested_by` or `by`. The API takes identity only from
the token, so `ActAs` turns those fields into a real sign-in: it makes sure the user exists with
that role (straight in the app's database, as an admin would), signs in with `POST /auth/token`,
sends `Authorization: Bearer`, and removes the fields from the body. A request that names nobody
is signed in as a user of the first role holding the route's permission (its `x-permission`).
A request that already carries an `Authorization` header is left alone (the auth tests).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from domain.auth import Permission, Role, roles_with
from domain.passwords import hash_password
from store.db import Database
from store.tables import User

TEST_PASSWORD = "test-password"
_HASH = hash_password(TEST_PASSWORD)  # one scrypt for the whole session

# Who reads everything in tests: ops. Everything else: the first role holding the permission.
DEFAULT_ROLE = {
    Permission.ORDERS_READ: Role.OPS,
    Permission.OPERATIONS_READ: Role.OPS,
    Permission.CATALOG_READ: Role.OPS,
    Permission.REPORTS_READ: Role.OPS,
}
# `by` means a different role depending on the command.
BY_ROLE = [
    (re.compile(r"/returns/[^/]+/(approve|refuse)$"), Role.APPROVER_L1),
    (re.compile(r"/returns/[^/]+/(receive|inspect)$"), Role.WAREHOUSE),
    (re.compile(r"/credit-hold/release$"), Role.FINANCE),
    (re.compile(r".*"), Role.SALES),
]
FIELD_ROLE = {
    "entered_by": Role.SALES,
    "requested_by": Role.SALES,
    "dispatched_by": Role.WAREHOUSE,
    "reported_by": Role.PRODUCTION,
}
CREDIT_FIELDS = {"credit_limit", "payment_terms"}


def sign_in_request(base: httpx.URL, username: str, password: str) -> httpx.Request:
    return httpx.Request(
        "POST",
        base.copy_with(path="/auth/token", query=None),
        data={"username": username, "password": password},
    )


class ActAs(httpx.Auth):
    requires_request_body = True

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.tokens: dict[str, str] = {}
        self.roles: dict[str, Role] = {}
        self.routes: list[tuple[str, re.Pattern[str], Permission | None]] = []
        self.lock = asyncio.Lock()  # many concurrent first requests create a user once

    def _route_permission(self, method: str, path: str) -> Permission | None:
        if not self.routes:
            for template, operations in self.app.openapi()["paths"].items():
                pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
                for verb, operation in operations.items():
                    found = operation.get("x-permission")
                    self.routes.append(
                        (verb.upper(), pattern, Permission(found) if found else None)
                    )
        for verb, pattern, permission in self.routes:
            if verb == method and pattern.match(path):
                return permission
        return None

    def _who(self, request: httpx.Request) -> tuple[str, Role, httpx.Request]:
        path = request.url.path
        body: Any = None
        if request.content and request.headers.get("content-type", "").startswith(
            "application/json"
        ):
            try:
                body = json.loads(request.content)
            except ValueError:  # a malformed body, sent on purpose
                body = None
        if isinstance(body, dict):
            found = self._named(path, body)
            if found is not None:
                rebuilt = httpx.Request(
                    request.method,
                    request.url,
                    headers={
                        k: v for k, v in request.headers.items() if k.lower() != "content-length"
                    },
                    json=body,
                )
                return found[0], found[1], rebuilt
            if request.method == "PATCH" and path.startswith("/customers/"):
                role = Role.FINANCE if CREDIT_FIELDS & body.keys() else Role.ADMIN
                return role.value, role, request
        permission = self._route_permission(request.method, path)
        if permission is None:
            return Role.OPS.value, Role.OPS, request
        role = DEFAULT_ROLE.get(permission) or roles_with(permission)[0]
        return role.value, role, request

    @staticmethod
    def _named(path: str, body: dict[str, Any]) -> tuple[str, Role] | None:
        """The acting person named in the body (removed from it), with their role."""
        if "approver" in body:
            name = str(body.pop("approver"))
            return name, Role(body.pop("role", Role.APPROVER_L1.value))
        for field, role in FIELD_ROLE.items():
            if field in body:
                return str(body.pop(field)), role
        if "by" in body:
            name = str(body.pop("by"))
            return name, next(role for pattern, role in BY_ROLE if pattern.search(path))
        return None

    async def _store_user(self, name: str, role: Role) -> None:
        db: Database = self.app.state.db
        async with db.writer() as session:
            user = await session.get(User, name)
            if user is None:
                session.add(User(username=name, role=role, password_hash=_HASH))
            elif user.role is not role or not user.active:
                user.role, user.active = role, True
                user.tokens_valid_after = datetime.now(UTC)
                session.add(user)
        self.roles[name] = role
        self.tokens.pop(name, None)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if "authorization" in request.headers or request.url.path in ("/auth/token", "/health"):
            yield request
            return
        name, role, request = self._who(request)
        async with self.lock:  # concurrent first requests: one user row, one sign-in
            if self.roles.get(name) is not role:
                await self._store_user(name, role)
            token = self.tokens.get(name)
            if token is None:
                response = yield sign_in_request(request.url, name, TEST_PASSWORD)
                await response.aread()
                assert response.status_code == 200, response.text
                token = self.tokens[name] = response.json()["access_token"]
        request.headers["Authorization"] = f"Bearer {token}"
        yield request


async def token_for(client: httpx.AsyncClient, username: str, password: str = TEST_PASSWORD) -> str:
    response = await client.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
