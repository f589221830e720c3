"""Credentials that are what they say: no token outlives ACCESS_TOKEN_MINUTES, whatever it
claims and whoever signed it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt

from settings import Settings
from tests.auth import bearer
from tests.test_auth import sign_in


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
