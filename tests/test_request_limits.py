"""A request body over MAX_BODY_BYTES is a 413, whether its size is declared (Content-Length) or
it arrives in chunks (Transfer-Encoding: chunked, no Content-Length) through a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from api.main import create_app
from domain.auth import Role
from domain.passwords import hash_password
from settings import Settings
from store.db import Database
from store.tables import User
from tests.auth import bearer, token_for
from tests.helpers import error_fields, served

LIMIT = 2_000
USER, PASSWORD = "limits-sales", "limits-password"
JSON = {"content-type": "application/json"}


def notes(size: int) -> bytes:
    return b'{"notes": "' + b"x" * size + b'"}'


async def chunked(body: bytes, chunk: int = 500) -> AsyncIterator[bytes]:
    for at in range(0, len(body), chunk):
        yield body[at : at + chunk]


@pytest.fixture(scope="module", params=["uvicorn", "asgi"])
async def limited(
    request: pytest.FixtureRequest, settings: Settings, db: Database
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a body limit of LIMIT bytes, signed in as a sales rep (who may POST
    /orders): behind a real uvicorn, and through httpx's ASGI transport."""
    async with db.writer() as session:
        if await session.get(User, USER) is None:
            session.add(User(username=USER, role=Role.SALES, password_hash=hash_password(PASSWORD)))
    app = create_app(settings.model_copy(update={"max_body_bytes": LIMIT}))
    if request.param == "uvicorn":
        async with served(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as client:
            client.headers.update(bearer(await token_for(client, USER, PASSWORD)))
            yield client
        return
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.headers.update(bearer(await token_for(client, USER, PASSWORD)))
            yield client


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["detail"] == f"The request body is larger than {LIMIT} bytes"


async def test_a_declared_body_over_the_limit_is_a_413(limited: httpx.AsyncClient) -> None:
    response = await limited.post("/orders", content=notes(LIMIT), headers=JSON)
    assert "content-length" in response.request.headers
    assert_too_large(response)


async def test_a_chunked_body_over_the_limit_is_a_413_too(limited: httpx.AsyncClient) -> None:
    response = await limited.post("/orders", content=chunked(notes(LIMIT)), headers=JSON)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.request.headers
    assert_too_large(response)
    # The same client goes on: a chunked body within the limit is read and validated.
    response = await limited.post("/orders", content=chunked(notes(LIMIT - 100)), headers=JSON)
    assert response.status_code == 422, response.text
    assert {"customer_id", "lines"} <= error_fields(response)
