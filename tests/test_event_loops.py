"""The worker runs on uvloop (`python -m api` asks uvicorn for it, and fails to start without)."""

from __future__ import annotations

import asyncio
import sys

import pytest

import worker


@pytest.mark.skipif(sys.platform == "win32", reason="uvloop does not exist on Windows")
def test_the_worker_runs_on_uvloop() -> None:
    loops: list[str] = []

    async def probe() -> None:
        loops.append(type(asyncio.get_running_loop()).__module__)

    worker.run(probe())
    assert loops and loops[0].startswith("uvloop")
