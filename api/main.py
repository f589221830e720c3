"""The application and its lifespan: `uvicorn --factory api.main:create_app`."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors, limits, openapi
from api.auth import PrincipalCache, document_permissions
from api.deps import TemporalConnection
from api.routes import (
    audit,
    auth,
    calendar,
    catalog,
    codec,
    confirmation,
    health,
    invoices,
    operations,
    orders,
    repairs,
    reports,
    returns,
)
from settings import Settings, calendar_years, get_settings, warn_if_unencrypted
from store import migrate
from store.db import Database
from store.seed import disable_demo_users, seed_demo_users
from web.app import mount as mount_web

log = structlog.get_logger("api")


class RequestLog:
    """ASGI middleware: a request id in every log line of the request, and one line per
    request with its outcome. Plain ASGI: no extra task or stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id or uuid.uuid4().hex[:12])
        started = time.perf_counter()
        status = 500

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sent)
        finally:
            log.info(
                "request_handled",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )


DESCRIPTION = """
Every sales order runs as a long-lived Temporal workflow: entry, approval, stock reservation,
production, shipment, invoicing, payment and archive. Integrators submit orders here, approvers
decide here, the warehouse and the plant report here; ops watch each order in the Temporal UI.
Errors are problem details (RFC 9457) naming the offending fields.

Every call needs `Authorization: Bearer <token>`: sign in with **Authorize** above (OAuth2
password flow, `POST /auth/token`) or send an API key created by `admin`. Who acts is always
the token's user, never a field of the body. In development there is one demo user per role,
named after the role (`sales`, `approver_l1`, `approver_l2`, `warehouse`, `production`,
`finance`, `ops`, `integrator`, `admin`), password `demo`.
"""


ROUTERS = tuple(
    module.router
    for module in (
        auth,
        orders,
        confirmation,
        returns,
        operations,
        invoices,
        repairs,
        catalog,
        calendar,
        reports,
        audit,
        codec,
        health,
    )
)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        policy = settings.load_policy()  # a bad policy file stops start-up, naming the line
        await migrate.require_current(settings.database_url)  # the schema is migrated before
        db = Database(settings.database_url, audit_seal=settings.audit_seal())
        if settings.environment == "development":
            await seed_demo_users(db)
        else:
            await disable_demo_users(db)
        app.state.settings = settings
        app.state.db = db
        app.state.policy = policy
        app.state.calendar = policy.calendar.build(calendar_years())
        app.state.temporal = TemporalConnection(settings)
        warn_if_unencrypted(settings)
        log.info("api_started", database=db.url.render_as_string(hide_password=True))
        # What start-up built lives as long as the process: out of the collector's sight, so
        # a full collection (which a page that reads hundreds of rows sets off) no longer walks
        # it: they took 150-200 ms each, the inbox's p99 with 10,000 open orders (bench --web).
        gc.collect()
        gc.freeze()
        yield
        await db.dispose()

    # /docs and /redoc from assets the `fastapi-offline` package ships (served under
    # /static-offline-docs), not from a CDN: plants and offices on an intranet see them too.
    app = FastAPIOffline(
        title="Sales order orchestration",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.principals = PrincipalCache(settings.auth_cache_seconds)
    errors.install(app)
    limits.install(app, settings.max_body_bytes)
    app.add_middleware(
        CORSMiddleware,  # the Temporal UI calls /codec from the browser
        allow_origins=settings.codec_cors_origins,
        allow_methods=["POST"],
        allow_headers=["Authorization", "Content-Type", "X-Namespace"],
        allow_credentials=True,
    )
    for router in ROUTERS:
        document_permissions(router.routes)
        app.include_router(router)
    mount_web(app)  # the web app for people: /app/ (and / redirects there)
    openapi.install(app)

    app.add_middleware(RequestLog)
    return app
