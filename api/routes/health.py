"""`GET /health`: 200 once the API, the database and Temporal are all reachable and the
database takes writes."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError

from api.deps import TemporalConnection
from api.errors import RETRY_AFTER_SECONDS
from store.db import Database

router = APIRouter(tags=["health"])
CHECK_TIMEOUT = 3.0
OK = "ok"


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"] = Field(
        description="`ok` (200); `unavailable` (503) when a dependency does not answer; "
        "`degraded` (503) when the database answers reads but a write cannot begin."
    )
    checks: dict[str, str] = Field(
        description="`api`, `database`, `temporal`: `ok`, or `unreachable: <error>`; the "
        "database also `degraded: cannot write: <reason>` (read-only, immutable, a standby)."
    )


NOT_OK: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Health,
        "description": "A dependency is unreachable, or the database refuses writes",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before asking again.",
                "schema": {"type": "string"},
                "required": True,
            }
        },
    }
}


@router.get("/health", response_model=Health, responses=NOT_OK)
async def health(request: Request) -> JSONResponse:
    db: Database = request.app.state.db
    connection: TemporalConnection = request.app.state.temporal
    database, temporal = await asyncio.gather(_database(db), _temporal(connection))
    checks = {"api": OK, "database": database, "temporal": temporal}
    if all(value == OK for value in checks.values()):
        status = "ok"
    elif any(value.startswith("unreachable") for value in checks.values()):
        status = "unavailable"
    else:
        status = "degraded"
    return JSONResponse(
        Health(status=status, checks=checks).model_dump(),
        status_code=200 if status == "ok" else 503,
        headers=None if status == "ok" else {"Retry-After": RETRY_AFTER_SECONDS},
    )


async def _database(db: Database) -> str:
    try:
        await asyncio.wait_for(db.ping(), CHECK_TIMEOUT)
    except Exception as exc:  # any failure means "not reachable"
        return f"unreachable: {type(exc).__name__}"
    try:
        await asyncio.wait_for(db.check_writes(), CHECK_TIMEOUT)
    except TimeoutError:
        return f"degraded: cannot write: no write transaction began within {CHECK_TIMEOUT:g} s"
    except DBAPIError as exc:
        if exc.connection_invalidated:  # gone since the ping: not a refusal to write
            return f"unreachable: {type(exc.orig).__name__}"
        return f"degraded: cannot write: {str(exc.orig).strip()}"
    except Exception as exc:
        return f"degraded: cannot write: {type(exc).__name__}"
    return OK


async def _temporal(connection: TemporalConnection) -> str:
    try:
        client = await connection.get()
        await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT)
    except Exception as exc:
        return f"unreachable: {type(exc).__name__}"
    return OK
