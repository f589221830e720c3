"""The audit anchor on the real Temporal dev server: it keeps signed checkpoints of the chain's
head where a database writer cannot reach, so deleting the chain's last entries shows.

Its worker serves a copy of the session's database (tampered with here), on a task queue of
its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Replayer

from domain.audit import AuditAnchorInput, AuditCheckpoint
from domain.contract import CHECKPOINTS_QUERY, audit_anchor_id
from settings import Settings
from store import audit
from store.db import Database
from tests.audit_chain import copy_sqlite, entries, sql
from tests.conftest import CONVERTER
from tests.helpers import eventually, run_program, worker_environment
from worker import WORKFLOWS, build_worker, start_audit_anchor, workflow_runner
from workflows.audit_anchor import AuditAnchorWorkflow

HISTORIES = Path(__file__).parent / "histories"


@pytest.fixture
async def own(
    db: Database, settings: Settings, temporal_client: Client, tmp_path: Path
) -> AsyncIterator[tuple[Settings, Database]]:
    """A worker of its own on a copy of the session's database (with 60 more commands on its
    chain), anchoring every 0.2 s."""
    await db.write(audit.append, db.audit_seal, entries("anchor", 60))
    url = copy_sqlite(settings.database_url, tmp_path / "copy.db")
    own = settings.model_copy(
        update={
            "database_url": url,
            "task_queue": f"anchor-{uuid.uuid4().hex[:8]}",
            "audit_anchor_seconds": 0.2,
        }
    )
    copy = Database(url, audit_seal=own.audit_seal())
    try:
        async with build_worker(temporal_client, copy, own):
            yield own, copy
    finally:
        await copy.dispose()


async def kept(handle: WorkflowHandle[Any, Any]) -> list[AuditCheckpoint]:
    found: list[AuditCheckpoint] = await handle.query(
        CHECKPOINTS_QUERY, result_type=list[AuditCheckpoint]
    )
    return found


async def verify(own: Settings) -> tuple[int, str]:
    done = await run_program(
        [sys.executable, "-m", "store.audit", "verify"], env=worker_environment(own)
    )
    return done.returncode, done.stdout + done.stderr


async def test_the_anchor_shows_the_last_entries_deleted_even_once_the_chain_grew_again(
    own: tuple[Settings, Database], temporal_client: Client
) -> None:
    settings, db = own
    handle = await start_audit_anchor(temporal_client, settings)
    try:
        # Every worker starts it at start-up: the second start finds the first one running.
        again = await start_audit_anchor(temporal_client, settings)
        assert handle.id == again.id == audit_anchor_id(settings.task_queue)
        assert again.result_run_id == handle.result_run_id
        n = (await audit.verify(db)).entries

        async def anchored_at(seq: int) -> list[AuditCheckpoint]:
            points = await kept(handle)
            assert points and points[-1].seq == seq, [p.seq for p in points]
            return points

        await eventually(lambda: anchored_at(n))
        status, said = await verify(settings)
        assert status == 0, said
        assert f"audit chain OK: {n} entries verify" in said
        assert f"checkpoints of {handle.id}" in said and f"the latest at entry {n}" in said

        # The last 50 entries deleted: the anchor's next look finds its checkpoint gone, keeps
        # it aside (disputed), and anchors the new, shorter head.
        sql(settings.database_url, "DELETE FROM auditentry WHERE seq > ?", (n - 50,))
        points = await eventually(lambda: anchored_at(n - 50))
        assert [p.seq for p in points if p.seq == n] == [n, n]  # disputed, and as it was
        report = await audit.verify(db, points)
        first = n - 49
        assert report.first == (
            first,
            f"missing: the chain ends at {first - 1}, a checkpoint saw it reach {n}",
        )
        assert report.bad == 50
        status, said = await verify(settings)
        assert status == 1 and f"audit chain BROKEN at entry {first}: missing" in said, said

        # The service goes on writing past where the chain ended: no link shows the gap, the
        # disputed checkpoint still does (its entry is not the one it saw).
        await db.write(audit.append, db.audit_seal, entries("after", 60))
        points = await eventually(lambda: anchored_at(n + 10))
        assert (await audit.verify(db)).ok
        report = await audit.verify(db, points)
        assert report.first is not None and report.first[0] == n and report.bad == 1
        assert "checkpoint" in report.first[1]
        status, said = await verify(settings)
        assert status == 1 and f"audit chain BROKEN at entry {n}:" in said, said
    finally:
        await handle.terminate()


async def test_the_anchor_continues_as_new_with_its_checkpoints_and_replays(
    own: tuple[Settings, Database], temporal_client: Client
) -> None:
    """Its history stays bounded (it continues as new), carrying its checkpoints; the run
    replays in the strict sandbox and as production runs it."""
    settings, _ = own
    handle = await temporal_client.start_workflow(
        AuditAnchorWorkflow.run,
        AuditAnchorInput(interval_seconds=0.05, rounds_per_run=2),
        id=f"audit-anchor-test-{uuid.uuid4().hex[:8]}",
        task_queue=settings.task_queue,
    )
    try:

        async def continued() -> str:
            run_id = (await handle.describe()).run_id
            assert run_id != handle.result_run_id
            return run_id

        await eventually(continued)
        first_run = temporal_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        history = await first_run.fetch_history()
        for sandboxed in (True, False):
            replayer = Replayer(
                workflows=WORKFLOWS,
                data_converter=CONVERTER,
                workflow_runner=workflow_runner(sandboxed=sandboxed, strict=True),
            )
            await replayer.replay_workflow(history, raise_on_replay_failure=True)
        carried = await kept(temporal_client.get_workflow_handle(handle.id))
        assert carried and carried[0].key_id == settings.audit_key_id
        if os.environ.get("RECORD_HISTORIES") == "1":
            (HISTORIES / "audit_anchor.json").write_text(history.to_json())
    finally:
        await handle.terminate()


def start_worker(own: Settings, **env: str) -> subprocess.Popen[bytes]:
    """`python -m worker` serving `own`."""
    return subprocess.Popen(
        [sys.executable, "-m", "worker"],
        env=worker_environment(own) | env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_every_worker_starts_the_anchor_and_the_first_start_stands(
    settings: Settings, db: Database, temporal_client: Client
) -> None:
    own = settings.model_copy(update={"task_queue": f"anchor-start-{uuid.uuid4().hex[:6]}"})
    workers = [start_worker(own, AUDIT_ANCHOR_SECONDS="0.2") for _ in range(2)]
    handle = temporal_client.get_workflow_handle(audit_anchor_id(own.task_queue))
    try:

        async def anchored() -> list[AuditCheckpoint]:
            try:
                points = await kept(handle)
            except RPCError as exc:  # not started yet
                raise AssertionError(exc) from exc
            assert points and points[-1].key_id == own.audit_key_id
            return points

        await eventually(anchored, within=60)
        runs = [run async for run in temporal_client.list_workflows(f"WorkflowId = '{handle.id}'")]
        assert len(runs) == 1
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            await asyncio.to_thread(worker.wait, 30)
        with contextlib.suppress(RPCError):  # not there when no worker started it
            await handle.terminate()
