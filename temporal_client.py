"""Connecting to Temporal the same way everywhere: the API, the worker, the tools."""

from __future__ import annotations

import logging
from functools import cache

from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from payload_codec import data_converter
from settings import Settings


@cache
def runtime() -> Runtime:
    """One SDK runtime per process whose core (Rust) logs join our logging pipeline."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            )
        )
    )


async def connect(settings: Settings) -> Client:
    """A client with the production data converter: pydantic models as JSON payloads, sealed
    with the configured payload key."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings.payload_codec()),
        runtime=runtime(),
    )
