"""Sign-in throttling: failed attempts at a password or an API key's secret back off per
account (or key) and per client address, counted in the database that every API process
shares, each refusal on the audit trail.

The apps here are their own (`create_app` on the session's database) with their own client
addresses, so their back-offs touch no other test; the session's app allows its one address
(127.0.0.1) any number of failures (tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlmodel import col, select

from api.main import create_app
from api.throttle import Throttle, Throttled, ThrottlePolicy
from domain.auth import Role
from domain.passwords import hash_password
from settings import Settings
from store.db import Database
from store.tables import AuditEntry, SignInThrottle, User
from tests.auth import bearer

PASSWORD = "throttle-test-password"
_HASH = hash_password(PASSWORD)


def throttled(settings: Settings, **changes: Any) -> Settings:
    """The session's settings with a throttle of the test's own."""
    defaults: dict[str, Any] = {
        "sign_in_free_failures": 5,
        "sign_in_free_failures_per_address": 1000,
        "sign_in_backoff_seconds": 30.0,
        "sign_in_max_backoff_seconds": 900.0,
        "sign_in_forget_seconds": 3600.0,
    }
    return settings.model_copy(update=defaults | changes)


@asynccontextmanager
async def app_at(settings: Settings) -> AsyncIterator[FastAPI]:
    """An API process of its own on the session's database; `client(app, address)` calls it
    from that client address."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


def client(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="https://test", timeout=30)


def new_address() -> str:
    return f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"


async def new_user(db: Database, role: Role = Role.OPS) -> str:
    name = f"thr.{uuid.uuid4().hex[:8]}"
    async with db.writer() as session:
        session.add(User(username=name, role=role, password_hash=_HASH))
    return name


async def sign_in(api: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await api.post("/auth/token", data={"username": username, "password": password})


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    seconds = int(response.headers["retry-after"])
    assert seconds >= 1
    return seconds


async def refusals(db: Database, actor: str) -> list[tuple[str, str, str, str]]:
    async with db.reader() as session:
        rows = (
            await session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.actor) == actor)
                .where(col(AuditEntry.action).in_(["command:sign_in", "command:api_key"]))
                .order_by(col(AuditEntry.seq))
            )
        ).all()
    return [(r.action, r.outcome, r.role, r.source) for r in rows]


# --- passwords -----------------------------------------------------------------------------


async def test_forty_wrong_passwords_then_even_the_right_one_is_429_with_retry_after(
    api: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    username, address = await new_user(db), new_address()
    async with app_at(throttled(settings)) as app, client(app, address) as own:
        answers = [await sign_in(own, username, f"guess-{n}") for n in range(40)]
        right = await sign_in(own, username, PASSWORD)
    spec = (await api.get("/openapi.json")).json()  # the session's app: built once
    statuses = [a.status_code for a in answers]
    # Five free failures, the sixth earns 30 s of back-off: every later attempt is refused
    # unchecked, and the right password is refused all the same.
    assert statuses == [401] * 6 + [429] * 34, statuses
    assert 1 <= retry_after(right) <= 30
    assert "try again in" in right.json()["detail"]
    documented = spec["paths"]["/auth/token"]["post"]["responses"]["429"]
    assert "Retry-After" in documented["headers"]
    # Every refusal is on the audit trail, with where it came from.
    trail = await refusals(db, username)
    assert [outcome for _, outcome, _, _ in trail] == ["refused:401"] * 6 + ["refused:429"] * 35
    assert {source for *_, source in trail} == {f"password@{address}"}
    assert trail[0][2] == "ops"  # a failure for an existing account names its role


async def test_the_back_off_is_shared_by_every_api_process_on_the_database(
    settings: Settings, db: Database
) -> None:
    username, address = await new_user(db), new_address()
    own = throttled(settings)
    async with app_at(own) as first, app_at(own) as second:
        async with client(first, address) as one, client(second, address) as other:
            for n in range(6):
                assert (await sign_in(one, username, f"guess-{n}")).status_code == 401
            retry_after(await sign_in(other, username, PASSWORD))
        # The account is in back-off from any address (the address itself is not).
        async with client(second, new_address()) as elsewhere:
            retry_after(await sign_in(elsewhere, username, PASSWORD))


async def test_once_the_back_off_passes_the_right_password_gets_in_and_is_forgiven(
    settings: Settings, db: Database
) -> None:
    username, address = await new_user(db), new_address()
    own = throttled(settings, sign_in_free_failures=2, sign_in_backoff_seconds=0.5)
    async with app_at(own) as app, client(app, address) as api:
        for n in range(3):
            assert (await sign_in(api, username, f"guess-{n}")).status_code == 401
        waited = retry_after(await sign_in(api, username, PASSWORD))
        await asyncio.sleep(0.6)
        assert waited == 1 and (await sign_in(api, username, PASSWORD)).status_code == 200
        async with db.reader() as session:
            row = await session.get(SignInThrottle, f"password:account:{username}")
        assert row is None  # the account's failures are forgotten
        for n in range(2):  # so its free failures are free again
            assert (await sign_in(api, username, f"again-{n}")).status_code == 401
        assert (await sign_in(api, username, PASSWORD)).status_code == 200


async def test_one_address_guessing_across_accounts_is_throttled_not_the_others(
    settings: Settings, db: Database
) -> None:
    own = throttled(settings, sign_in_free_failures=100, sign_in_free_failures_per_address=3)
    sprayer, office = new_address(), new_address()
    victims = [await new_user(db) for _ in range(5)]
    async with app_at(own) as app, client(app, sprayer) as spray, client(app, office) as ok:
        for victim in victims[:4]:  # one guess each: no account is near its limit
            assert (await sign_in(spray, victim, "Winter2026!")).status_code == 401
        retry_after(await sign_in(spray, victims[4], PASSWORD))  # the address is in back-off
        assert (await sign_in(ok, victims[4], PASSWORD)).status_code == 200
    assert [o for _, o, _, _ in await refusals(db, victims[4])] == ["refused:429"]


async def test_unknown_accounts_are_throttled_like_real_ones(
    settings: Settings, db: Database
) -> None:
    """No hint which names exist: a made-up account backs off like a real one."""
    address = new_address()
    made_up = f"nobody.{uuid.uuid4().hex[:6]}"
    async with app_at(throttled(settings)) as app, client(app, address) as api:
        statuses = [(await sign_in(api, made_up, f"guess-{n}")).status_code for n in range(8)]
        bad_name = await sign_in(api, f"key:{made_up}", PASSWORD)
    assert statuses == [401] * 6 + [429] * 2
    assert bad_name.status_code == 401
    assert [(a, o, r) for a, o, r, _ in await refusals(db, made_up)][-1] == (
        "command:sign_in",
        "refused:429",
        "",
    )


async def test_the_web_apps_sign_in_is_throttled_with_the_apis(
    settings: Settings, db: Database
) -> None:
    """One account, one back-off: failures at the web app's sign-in page count for the API's
    `POST /auth/token` too, and the page says so in its language."""
    username, address = await new_user(db), new_address()
    async with app_at(throttled(settings)) as app, client(app, address) as web:
        form = await web.get("/app/login", headers={"Accept-Language": "en"})
        csrf = re.search(r'name="csrf_token" value="([0-9a-f]+)"', form.text)
        assert csrf is not None

        async def page_sign_in(password: str) -> httpx.Response:
            data = {"username": username, "password": password, "csrf_token": csrf.group(1)}
            return await web.post("/app/login", data=data, headers={"Accept-Language": "en"})

        for n in range(6):
            assert (await page_sign_in(f"guess-{n}")).status_code == 401
        refused = await page_sign_in(PASSWORD)
        assert retry_after(await sign_in(web, username, PASSWORD)) >= 1
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in refused.text
    assert [o for _, o, _, _ in await refusals(db, username)][-3:] == ["refused:401"] + [
        "refused:429"
    ] * 2


# --- API keys ------------------------------------------------------------------------------


async def test_wrong_api_key_secrets_back_off_per_key_and_per_address(
    api: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    created = (await api.post("/api-keys", json={"name": "erp-throttled"})).json()
    other = (await api.post("/api-keys", json={"name": "erp-other"})).json()
    key, key_id = created["key"], created["id"]
    wrong = f"sok_{key_id}.{'x' * 43}"
    own = throttled(settings, sign_in_free_failures_per_address=8)
    prober, elsewhere = new_address(), new_address()
    async with app_at(own) as app, client(app, prober) as probe, client(app, elsewhere) as ok:
        answers = [await probe.get("/auth/me", headers=bearer(wrong)) for _ in range(8)]
        assert [a.status_code for a in answers] == [401] * 6 + [429] * 2
        retry_after(await probe.get("/auth/me", headers=bearer(key)))  # the right key too
        retry_after(await ok.get("/auth/me", headers=bearer(key)))  # the key, from anywhere
        # Made-up keys count against the address: past its free failures, every key from it
        # is refused, a good one too (one this process has not checked in AUTH_CACHE_SECONDS).
        for n in range(3):
            made_up = await probe.get("/auth/me", headers=bearer(f"sok_{n:012x}.nope"))
            assert made_up.status_code == 401, made_up.text
        retry_after(await probe.get("/auth/me", headers=bearer(other["key"])))
        assert (await ok.get("/auth/me", headers=bearer(other["key"]))).status_code == 200
    trail = await refusals(db, "key:erp-throttled")
    assert [(a, o, r) for a, o, r, _ in trail[:7]] == [
        ("command:api_key", "refused:401", "integrator")
    ] * 6 + [("command:api_key", "refused:429", "")]
    assert {s for *_, s in trail} == {f"api_key@{prober}", f"api_key@{elsewhere}"}


# --- the counter ---------------------------------------------------------------------------


async def test_concurrent_failures_from_many_processes_count_exactly(store: Database) -> None:
    """On SQLite and PostgreSQL: twenty failures at once through four databases' pools (as
    four API processes would), each counted once, earning the back-off of their number."""
    policy = ThrottlePolicy(5, 1000, 30.0, 900.0, 3600.0)
    url = store.url.render_as_string(hide_password=False)
    others = [Database(url) for _ in range(3)]
    processes = [Throttle(db, policy, "password") for db in (store, *others)]
    account, address = f"acct-{uuid.uuid4().hex[:8]}", new_address()
    try:
        attempt = await processes[0].check(account, address)
        started = time.time()
        await asyncio.gather(*(processes[n % 4].failed(attempt) for n in range(20)))
    finally:
        for db in others:
            await db.dispose()
    async with store.reader() as session:
        rows = (
            await session.exec(
                select(SignInThrottle).where(col(SignInThrottle.key).in_(list(attempt.keys)))
            )
        ).all()
    assert {row.key: row.failures for row in rows} == dict.fromkeys(attempt.keys, 20)
    account_row = next(row for row in rows if ":account:" in row.key)
    assert account_row.blocked_until is not None  # 15 over the free 5: the longest back-off
    assert abs(account_row.blocked_until.timestamp() - started - policy.max_seconds) < 10
    with pytest.raises(Throttled):
        await processes[0].check(account, new_address())


def test_the_back_off_doubles_from_the_base_up_to_the_maximum() -> None:
    policy = ThrottlePolicy(5, 50, 1.0, 900.0, 3600.0)
    assert [policy.backoff(n, 5) for n in range(4, 10)] == [0, 0, 1, 2, 4, 8]
    assert policy.backoff(15, 5) == 512 and policy.backoff(16, 5) == 900
    assert policy.backoff(10_000, 5) == 900  # no overflow
