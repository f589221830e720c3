"""`GET /health`: 200 once the API, the database and Temporal are all reachable."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import TemporalConnection
from store.db import Database

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 3.0


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    db: Database = request.app.state.db
    connection: TemporalConnection = request.app.state.temporal
    checks: dict[str, str] = {"api": "ok"}
    try:
        await asyncio.wait_for(db.ping(), CHECK_TIMEOUT)
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not reachable"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        client = await connection.get()
        await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT)
        checks["temporal"] = "ok"
    except Exception as exc:
        checks["temporal"] = f"unreachable: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status_code=200 if healthy else 503,
        headers=None if healthy else {"Retry-After": "5"},
    )
