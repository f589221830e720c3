"""Dependencies: the database, the Temporal client and the settings, per request.

Every dependency is `async def`, even when it awaits nothing: FastAPI runs a plain `def`
dependency in its thread pool, a thread hop per dependency per request."""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import Depends, Request
from temporalio.client import Client

import temporal_client
from api.errors import unavailable
from settings import Settings
from store.db import Database

log = structlog.get_logger(__name__)


class TemporalConnection:
    """Connects lazily and reconnects after an outage: the API starts even if Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Client:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        temporal_client.connect(self._settings), 5
                    )
                except Exception as exc:  # any failure to connect is an outage to the caller
                    log.warning("temporal_unreachable", error=repr(exc))
                    raise unavailable("Temporal") from exc
            return self._client


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def get_temporal(request: Request) -> TemporalConnection:
    # The connection, not the client: a route validates its input before it needs Temporal,
    # so a malformed request is a 422 even while Temporal is down.
    connection: TemporalConnection = request.app.state.temporal
    return connection


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DbDep = Annotated[Database, Depends(get_db)]
TemporalDep = Annotated[TemporalConnection, Depends(get_temporal)]
