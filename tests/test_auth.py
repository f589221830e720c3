"""Identity is real: signed tokens and API keys, roles, 401/403, sales scoping, the record.

Requests here carry their own `Authorization` header, so the test client's sign-in helper
(`tests/auth.py`) leaves them alone; it only acts as `admin` where a test creates users.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pydantic import ValidationError
from sqlmodel import col, select

from api.auth import PrincipalCache
from api.principal import Principal
from domain.auth import Role
from domain.passwords import hash_password, verify_password
from settings import DEV_AUTH_SECRET, Settings
from store import migrate
from store.db import Database
from store.tables import ApiKey, AuditEntry, User
from tests.auth import bearer, token_for
from tests.conftest import unique
from tests.helpers import Factory, run_program

PASSWORD = "correct horse battery"


async def new_user(api: httpx.AsyncClient, role: str, **fields: Any) -> str:
    username = f"{role}.{uuid.uuid4().hex[:8]}"
    response = await api.post(
        "/users", json={"username": username, "password": PASSWORD, "role": role} | fields
    )
    assert response.status_code == 201, response.text
    return username


async def sign_in(api: httpx.AsyncClient, role: str, **fields: Any) -> tuple[str, dict[str, str]]:
    username = await new_user(api, role, **fields)
    return username, bearer(await token_for(api, username, PASSWORD))


def order_body(customer_id: str, sku: str, **more: Any) -> dict[str, Any]:
    return {
        "order_no": unique("SO"),
        "customer_id": customer_id,
        "lines": [{"sku": sku, "quantity": 1}],
    } | more


# --- 401 -------------------------------------------------------------------------------------


async def test_missing_bad_expired_or_foreign_tokens_are_401(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    now = int(time.time())
    claims = {"sub": "ops", "role": "ops", "iat": now - 7200, "t": now - 7200, "jti": "x"}
    expired = jwt.encode(claims | {"exp": now - 3600}, settings.auth_secret, algorithm="HS256")
    foreign = jwt.encode(claims | {"exp": now + 3600}, "another-key-" * 4, algorithm="HS256")
    for headers in ({}, bearer("not-a-token"), bearer(expired), bearer(foreign), bearer("sok_x.y")):
        response = await api.get("/orders", headers=headers or {"Authorization": ""})
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.headers["content-type"].startswith("application/problem+json")
    expired_answer = await api.get("/orders", headers=bearer(expired))
    assert "expired" in expired_answer.json()["detail"]


async def test_sign_in_with_the_password_form(api: httpx.AsyncClient) -> None:
    username = await new_user(api, "finance")
    wrong = await api.post("/auth/token", data={"username": username, "password": "nope"})
    unknown = await api.post("/auth/token", data={"username": "nobody", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]  # no hint which one was wrong
    answer = await api.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200
    token = answer.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    me = (await api.get("/auth/me", headers=bearer(token["access_token"]))).json()
    assert me["username"] == username and me["role"] == "finance" and me["via"] == "token"
    assert "payments:record" in me["permissions"] and "orders:approve" not in me["permissions"]


async def test_signing_out_and_deactivation_revoke_tokens(api: httpx.AsyncClient) -> None:
    username, headers = await sign_in(api, "ops")
    assert (await api.get("/orders", headers=headers)).status_code == 200
    assert (await api.post("/auth/revoke", headers=headers)).status_code == 204
    assert (await api.get("/orders", headers=headers)).status_code == 401

    headers = bearer(await token_for(api, username, PASSWORD))
    assert (await api.get("/orders", headers=headers)).status_code == 200
    assert (await api.patch(f"/users/{username}", json={"active": False})).status_code == 200
    assert (await api.get("/orders", headers=headers)).status_code == 401
    again = await api.post("/auth/token", data={"username": username, "password": PASSWORD})
    assert again.status_code == 401


# --- 403 and identity from the token -------------------------------------------------------------


async def test_each_role_is_refused_what_it_lacks_naming_the_permission(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    _, warehouse = await sign_in(api, "warehouse")
    response = await api.post(
        "/orders", json=order_body(customer["customer_id"], product["sku"]), headers=warehouse
    )
    assert response.status_code == 403
    assert response.json()["permission"] == "orders:create"
    assert "sales" in response.json()["detail"]  # who holds it
    _, sales = await sign_in(api, "sales")
    for method, path, permission in [
        ("GET", "/audit", "audit:read"),
        ("GET", "/users", "users:manage"),
        ("POST", f"/products/{product['sku']}/stock", "stock:write"),
        ("GET", "/shipments", "operations:read"),
    ]:
        response = await api.request(method, path, headers=sales, json={"delta": 1, "reason": "x"})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["permission"] == permission
    _, admin = await sign_in(api, "admin")
    assert (await api.get("/orders", headers=admin)).json()["permission"] == "orders:read"


async def test_identity_comes_from_the_token_never_the_body(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    author, sales = await sign_in(api, "sales")
    body = order_body(customer["customer_id"], product["sku"], priority="rush")
    # Naming someone else in the body is refused outright, not silently ignored.
    spoofed = await api.post("/orders", json=body | {"entered_by": "boss"}, headers=sales)
    assert spoofed.status_code == 422 and "entered_by" in spoofed.text
    order = (await api.post("/orders", json=body, headers=sales)).json()
    assert order["entered_by"] == author and order["status"] == "PENDING_APPROVAL"

    supervisor, approver = await sign_in(api, "approver_l1")
    path = f"/orders/{order['order_no']}/approve"
    spoofed = await api.post(
        path, json={"approver": "ceo", "role": "approver_l2"}, headers=approver
    )
    assert spoofed.status_code == 422
    approved = await api.post(path, json={"comment": "ok"}, headers=approver)
    assert approved.status_code == 200, approved.text
    assert [d["approver"] for d in approved.json()["approvals"]] == [supervisor]


async def test_the_author_cannot_approve_even_after_becoming_an_approver(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    author, sales = await sign_in(api, "sales")
    body = order_body(customer["customer_id"], product["sku"], priority="rush")
    order = (await api.post("/orders", json=body, headers=sales)).json()
    # Promoted: the old token is revoked with the role change.
    assert (await api.patch(f"/users/{author}", json={"role": "approver_l1"})).status_code == 200
    assert (await api.get("/auth/me", headers=sales)).status_code == 401
    approver = bearer(await token_for(api, author, PASSWORD))
    response = await api.post(f"/orders/{order['order_no']}/approve", json={}, headers=approver)
    assert response.status_code == 403 and "separation of duties" in response.json()["detail"]


# --- API keys ------------------------------------------------------------------------------------


async def test_api_keys_for_machines_are_stored_as_hashes_and_revocable(
    api: httpx.AsyncClient, db: Database, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    created = await api.post("/api-keys", json={"name": "erp-bridge", "role": "integrator"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    headers = bearer(key)
    order = await api.post(
        "/orders", json=order_body(customer["customer_id"], product["sku"]), headers=headers
    )
    assert order.status_code == 201, order.text
    assert order.json()["entered_by"] == "key:erp-bridge"
    me = (await api.get("/auth/me", headers=headers)).json()
    assert (me["username"], me["via"]) == ("key:erp-bridge", "api_key")
    async with db.reader() as session:
        row = await session.get(ApiKey, created.json()["id"])
    assert row is not None and key not in row.secret_hash and row.secret_hash not in key
    listed = (await api.get("/api-keys")).json()
    assert all("key" not in item for item in listed)
    assert (await api.delete(f"/api-keys/{created.json()['id']}")).status_code == 200
    assert (await api.get("/orders", headers=headers)).status_code == 401
    tampered = key[:-2] + ("AA" if not key.endswith("AA") else "BB")
    assert (await api.get("/orders", headers=bearer(tampered))).status_code == 401


# --- sales scoping -------------------------------------------------------------------------------


async def test_a_sales_rep_sees_only_their_own_customers_orders(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory
) -> None:
    mine, theirs = await new_customer(), await new_customer(region="far-west")
    product = await new_product()
    _, rep = await sign_in(api, "sales", customer_ids=[mine["customer_id"]])
    _, other = await sign_in(api, "sales")
    own = await api.post(
        "/orders", json=order_body(mine["customer_id"], product["sku"]), headers=rep
    )
    assert own.status_code == 201
    foreign = (
        await api.post(
            "/orders", json=order_body(theirs["customer_id"], product["sku"]), headers=other
        )
    ).json()
    refused = await api.post(
        "/orders", json=order_body(theirs["customer_id"], product["sku"]), headers=rep
    )
    assert refused.status_code == 403
    assert (await api.get(f"/orders/{foreign['order_no']}", headers=rep)).status_code == 404
    cancel = await api.post(
        f"/orders/{foreign['order_no']}/cancel",
        json={"reason_code": "other"},
        headers=rep,
    )
    assert cancel.status_code == 404
    listed = (await api.get("/orders?limit=200", headers=rep)).json()
    assert {o["customer_id"] for o in listed["items"]} == {mine["customer_id"]}
    customers = (await api.get("/customers?limit=500", headers=rep)).json()
    assert [c["customer_id"] for c in customers] == [mine["customer_id"]]
    # Scoped by region instead.
    _, west = await sign_in(api, "sales", regions=["far-west"])
    assert (await api.get(f"/orders/{foreign['order_no']}", headers=west)).status_code == 200


# --- the record ----------------------------------------------------------------------------------


async def test_every_command_is_recorded_once_with_role_and_source_refusals_too(
    api: httpx.AsyncClient, db: Database, new_customer: Factory, new_product: Factory
) -> None:
    customer, product = await new_customer(), await new_product()
    author, sales = await sign_in(api, "sales")
    order = (
        await api.post(
            "/orders",
            json=order_body(customer["customer_id"], product["sku"], priority="rush"),
            headers=sales,
        )
    ).json()
    order_no = order["order_no"]
    supervisor, approver = await sign_in(api, "approver_l1")
    refused = await api.post(f"/orders/{order_no}/reject", json={"reason": ""}, headers=approver)
    assert refused.status_code == 422  # malformed: never reaches the order, not a command
    paid = await api.post(
        f"/orders/{order_no}/payments",
        json={"amount": 1, "method": "cash", "reference": "R1"},
        headers=approver,
    )
    assert paid.status_code == 403  # lacks payments:record
    held = await api.post(f"/orders/{order_no}/hold", json={"reason": "x"}, headers=sales)
    assert held.status_code == 200
    again = await api.post(f"/orders/{order_no}/hold", json={"reason": "y"}, headers=sales)
    assert again.status_code == 409
    async with db.reader() as session:
        rows = (
            await session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.order_no) == order_no)
                .where(col(AuditEntry.role) != "")
                .order_by(col(AuditEntry.seq))
            )
        ).all()
    # What the order accepted it records itself, as its effect; what never reached it, or
    # what it refused, the API records. Each attempt once, with who, role and source.
    assert [(r.action, r.actor, r.role, r.outcome) for r in rows] == [
        ("order_received", author, "sales", "ok"),
        ("command:record_payment", supervisor, "approver_l1", "refused:403"),
        ("order_held", author, "sales", "ok"),
        ("command:hold", author, "sales", "refused:409"),
    ]
    assert all(r.source == "token@127.0.0.1" for r in rows)
    _, ops = await sign_in(api, "ops")
    trail = (await api.get(f"/audit?order_no={order_no}", headers=ops)).json()
    assert {"order_received", "order_held", "command:hold"} <= {e["action"] for e in trail}
    held_entry = next(e for e in trail if e["action"] == "order_held")
    assert (held_entry["role"], held_entry["source"]) == ("sales", "token@127.0.0.1")
    assert (await api.get(f"/audit?order_no={order_no}", headers=sales)).status_code == 403


# --- development defaults ------------------------------------------------------------------------


async def test_demo_users_sign_in_only_in_development(api: httpx.AsyncClient, db: Database) -> None:
    async with db.writer() as session:
        if await session.get(User, "demo-ops") is None:
            session.add(
                User(
                    username="demo-ops",
                    role=Role.OPS,
                    password_hash=hash_password("demo"),
                    demo=True,
                )
            )
    response = await api.post("/auth/token", data={"username": "demo-ops", "password": "demo"})
    assert response.status_code == 401  # this app runs with environment=test


def test_settings_refuse_the_development_secrets_outside_development() -> None:
    with pytest.raises(ValidationError, match="AUTH_SECRET"):
        Settings(environment="production", auth_secret=DEV_AUTH_SECRET)
    with pytest.raises(ValidationError, match="NOTIFY_WEBHOOK_SECRET"):
        Settings(
            environment="production",
            auth_secret=secrets.token_urlsafe(32),
            notify_webhook_url="http://hooks.example/x",
        )
    assert Settings(environment="development").auth_secret == DEV_AUTH_SECRET


async def test_the_first_admin_is_created_from_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"
    env = os.environ | {"DATABASE_URL": url, "USER_PASSWORD": "first-admin-pw"}
    command = [sys.executable, "-m", "store.users", "create", "root", "admin"]
    unmigrated = await run_program(command, env=env)
    assert unmigrated.returncode != 0 and "alembic upgrade head" in unmigrated.stderr
    await migrate.upgrade(url)
    done = await run_program(command, env=env)
    assert done.returncode == 0, done.stderr
    again = await run_program(command, env=env)
    assert again.returncode != 0 and "already exists" in again.stderr
    db = Database(url)
    try:
        async with db.reader() as session:
            user = await session.get(User, "root")
    finally:
        await db.dispose()
    assert user is not None and user.role is Role.ADMIN and not user.demo
    assert verify_password("first-admin-pw", user.password_hash)


def test_a_checked_credential_is_trusted_briefly_and_never_past_its_expiry() -> None:
    now = datetime.now(UTC)
    fresh = Principal("li", Role.SALES, "token", "ip", expires_at=now + timedelta(hours=1))
    expired = Principal("wu", Role.SALES, "token", "ip", expires_at=now - timedelta(seconds=1))
    key = Principal("erp", Role.INTEGRATOR, "api_key", "ip")
    cache = PrincipalCache(ttl=60)
    for credential, principal in (("a", fresh), ("b", expired), ("c", key)):
        cache.put(credential, principal)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (fresh, None, key)
    cache.clear()  # what a revocation or a user change does
    assert cache.get("a") is None and cache.get("c") is None
    short = PrincipalCache(ttl=0.01)
    short.put("a", fresh)
    time.sleep(0.02)
    assert short.get("a") is None
    off = PrincipalCache(ttl=0)
    off.put("a", fresh)
    assert off.get("a") is None
