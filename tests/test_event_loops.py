"""The worker runs on uvloop (`python -m api` asks uvicorn for it, and fails to start without);
the API's requests stay on its event loop."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import worker
from api.main import ROUTERS


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not exist on Windows")
def test_the_worker_runs_on_uvloop() -> None:
    loops: list[str] = []

    async def probe() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    worker.run(probe())
    assert loops and loops[0].startswith("uvloop")


def _is_async(call: Any) -> bool:
    if inspect.isroutine(call):
        return inspect.iscoroutinefunction(call)
    return inspect.iscoroutinefunction(type(call).__call__)  # a dependency object: Allowed(...)


def _sync_callables(dependant: Dependant) -> Iterator[str]:
    for dep in dependant.dependencies:
        if dep.call is not None and not _is_async(dep.call):
            yield getattr(dep.call, "__qualname__", type(dep.call).__qualname__)
        yield from _sync_callables(dep)


def test_no_request_waits_for_a_thread_pool() -> None:
    """FastAPI runs a plain `def` route or dependency in its thread pool: a thread hop per
    call per request. Every route and dependency of ours is `async def`."""
    found: set[str] = set()
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute):
            if not inspect.iscoroutinefunction(route.endpoint):
                found.add(route.endpoint.__qualname__)
            found.update(_sync_callables(route.dependant))
    assert not found, f"run in the thread pool: {sorted(found)}"
