"""Credentials that are what they say: an API key acts as `key:<name>`, never as the person
of that name (on orders and on the audit trail), and no token outlives ACCESS_TOKEN_MINUTES,
whatever it claims and whoever signed it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
from sqlmodel import col, select

from settings import Settings
from store.db import Database
from store.tables import AuditEntry
from store.users import main as users_cli
from tests.auth import bearer
from tests.helpers import Factory
from tests.test_auth import PASSWORD, order_body, sign_in


async def test_a_token_claiming_a_longer_life_than_the_api_grants_is_401(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    """Signed with our key or not, no token outlives ACCESS_TOKEN_MINUTES; none lacks `iat`
    or `exp`."""
    _, headers = await sign_in(api, "ops")
    claims = jwt.decode(
        headers["Authorization"].removeprefix("Bearer "),
        settings.auth_secret,
        algorithms=["HS256"],
    )
    now, granted = int(time.time()), settings.access_token_minutes * 60

    def signed(**changes: Any) -> dict[str, str]:
        forged = {k: v for k, v in (claims | changes).items() if v is not None}
        return bearer(jwt.encode(forged, settings.auth_secret, algorithm="HS256"))

    assert (await api.get("/auth/me", headers=signed(jti=uuid.uuid4().hex))).status_code == 200
    for forged in (
        signed(jti=uuid.uuid4().hex, exp=now + 30 * 24 * 3600),  # a month from now
        signed(jti=uuid.uuid4().hex, iat=now - 2 * granted, exp=now + granted // 2),
        signed(jti=uuid.uuid4().hex, iat=None),
        signed(jti=uuid.uuid4().hex, exp=None),
    ):
        response = await api.get("/auth/me", headers=forged)
        assert response.status_code == 401, response.text


async def test_an_api_key_acts_as_key_name_never_as_the_person_of_that_name(
    api: httpx.AsyncClient, db: Database, new_customer: Factory, new_product: Factory
) -> None:
    """A key named like a person, with another role: its actions are the key's, not theirs."""
    customer, product = await new_customer(), await new_product()
    person, sales = await sign_in(api, "sales")
    created = await api.post("/api-keys", json={"name": person, "role": "approver_l1"})
    assert created.status_code == 201, created.text  # the name is free: keys have their own
    assert created.json()["acts_as"] == f"key:{person}"
    key = bearer(created.json()["key"])
    body = order_body(customer["customer_id"], product["sku"], priority="rush")
    order = (await api.post("/orders", json=body, headers=sales)).json()
    assert order["entered_by"] == person and order["status"] == "PENDING_APPROVAL"
    # The person entered it; the key is someone else, and is recorded as itself.
    approved = await api.post(f"/orders/{order['order_no']}/approve", json={}, headers=key)
    assert approved.status_code == 200, approved.text
    assert [d["approver"] for d in approved.json()["approvals"]] == [f"key:{person}"]
    refused = await api.post(f"/orders/{order['order_no']}/hold", json={"reason": "x"}, headers=key)
    assert refused.status_code == 403
    async with db.reader() as session:
        rows = (
            await session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.order_no) == order["order_no"])
                .where(col(AuditEntry.role) != "")
                .order_by(col(AuditEntry.seq))
            )
        ).all()
    by_action = {r.action: (r.actor, r.role, r.source.split("@")[0]) for r in rows}
    assert by_action["order_received"] == (person, "sales", "token")
    assert by_action["order_approved"] == (f"key:{person}", "approver_l1", "api_key")
    assert by_action["command:hold_order"] == (f"key:{person}", "approver_l1", "api_key")
    # No person can take a key's name, through the API or the command line.
    taken = await api.post(
        "/users", json={"username": f"key:{person}", "password": PASSWORD, "role": "sales"}
    )
    assert taken.status_code == 422
    with pytest.raises(SystemExit, match="user name"):
        users_cli(["create", f"key:{person}", "admin"])
