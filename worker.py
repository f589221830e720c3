"""The worker: runs the order workflow and its activities. `python -m worker`."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

import structlog
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import temporal_client
from activities.audit import AuditActivities
from activities.billing import BillingActivities
from activities.deadlines import DeadlineActivities
from activities.entry import EntryActivities
from activities.inventory import InventoryActivities
from activities.notifications import Mailer, NotificationActivities, People
from activities.production import ProductionActivities
from activities.promise import PromiseActivities
from activities.read_model import ReadModelActivities
from activities.returns import ReturnActivities
from activities.shipping import ShippingActivities
from domain.audit import AuditAnchorInput
from domain.contract import audit_anchor_id
from logs import OrderLogContext, configure_logging
from settings import Settings, calendar_years, get_settings, warn_if_unencrypted
from store import migrate
from store.db import Database
from web.i18n import DEFAULT_LANGUAGE, translator
from workflows.audit_anchor import AuditAnchorWorkflow
from workflows.order import OrderWorkflow
from workflows.returns import ReturnWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS = [OrderWorkflow, ReturnWorkflow, AuditAnchorWorkflow]


def workflow_runner(*, sandboxed: bool = True, strict: bool = False) -> WorkflowRunner:
    """What our workflows run in: Temporal's sandbox (the default everywhere,
    `Settings.workflow_sandbox`), or (`sandboxed=False`) plainly on the worker's threads.

    The sandbox stops a non-deterministic call (a clock, randomness, I/O) when it runs, at a
    price on every activation: for each payload it hands over, the SDK asks the sandbox for
    its serialization context by running code compiled from a string (15-20% of the worker's
    CPU per order, `bench/README.md`). Every workflow path the tests take runs in it, and the
    replay tests run in its `strict` form, so a deployment may opt out for that CPU.

    Sandboxed, our domain models and workflow modules pass through instead of being imported
    afresh into every order's sandbox (which costs ~7 ms of worker CPU per order, mostly
    re-declaring the workflow classes); `strict` re-imports the workflow modules into each
    sandbox as Temporal does by default, so the sandbox's runtime checks apply to their code.
    """
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    passthrough = ("domain", "pydantic") if strict else ("domain", "pydantic", "workflows")
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*passthrough)
    )


def build_worker(
    client: Client, db: Database, settings: Settings, interceptors: Sequence[Interceptor] = ()
) -> Worker:
    """The worker with every activity; a bad policy file stops it here, naming the line."""
    policy = settings.load_policy()
    warn_if_unencrypted(settings)
    calendar = policy.calendar.build(calendar_years())
    activities = [
        *EntryActivities(db, settings.approval_policy(), calendar).all(),
        *InventoryActivities(db).all(),
        *ProductionActivities(db, calendar).all(),
        *ShippingActivities(db).all(),
        *BillingActivities(db, calendar).all(),
        *ReadModelActivities(db).all(),
        *DeadlineActivities(db, policy, calendar).all(),
        *PromiseActivities(db, policy, calendar).all(),
        *NotificationActivities(
            settings.notify_webhook_url,
            settings.notify_webhook_secret,
            people=people(db, settings, calendar.timezone),
        ).all(),
        *ReturnActivities(db).all(),
        *AuditActivities(db).all(),
    ]
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        workflow_runner=workflow_runner(sandboxed=settings.workflow_sandbox),
        max_cached_workflows=settings.max_cached_workflows,
        interceptors=[OrderLogContext(), *interceptors],
    )


def people(db: Database, settings: Settings, timezone: str) -> People:
    """How notifications reach people: their in-app list always, e-mail with SMTP_URL; the
    words from the web app's catalogues, in each person's language."""
    server = settings.smtp_server()
    return People(
        db=db,
        translator=translator,
        default_language=DEFAULT_LANGUAGE,
        timezone=timezone,
        app_url=settings.app_url(),
        mailer=Mailer(server, settings.smtp_from) if server is not None else None,
    )


async def start_audit_anchor(
    client: Client, settings: Settings, *, workflow_id: str | None = None
) -> WorkflowHandle[Any, Any]:
    """Start the audit anchor (`workflows/audit_anchor.py`) unless it runs: every worker asks
    at start-up, and the first one's start stands (with its `AUDIT_ANCHOR_SECONDS`)."""
    return await client.start_workflow(
        AuditAnchorWorkflow.run,
        AuditAnchorInput(interval_seconds=settings.audit_anchor_seconds),
        id=workflow_id or audit_anchor_id(settings.task_queue),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )


async def main(interceptors: Sequence[Interceptor] = ()) -> None:
    settings = get_settings()
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    await migrate.require_current(settings.database_url)  # the schema is migrated before
    db = Database(settings.database_url, audit_seal=settings.audit_seal())
    client = await temporal_client.connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(client, db, settings, interceptors)
    await start_audit_anchor(client, settings)
    async with worker:
        log.info(
            "worker_started",
            task_queue=settings.task_queue,
            temporal=settings.temporal_address,
            workflow_sandbox=settings.workflow_sandbox,
        )
        await stop.wait()
        log.info("worker_stopping")
    await db.dispose()


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop (libuv's event loop, in C), asyncio's own on Windows."""
    if sys.platform == "win32":
        asyncio.run(main)
    else:
        import uvloop

        uvloop.run(main)


if __name__ == "__main__":
    run(main())
