"""Workflow code runs in Temporal's sandbox everywhere, production included, unless a
deployment opts out (`WORKFLOW_SANDBOX=false`, about 15-20% of the worker's CPU per order).

The sandbox stops a non-deterministic call when it runs. The test suite runs every workflow in
it (and the replay tests in its strict form); these tests hold the default to that, check the
suite's worker really uses it, and run orders without it, as an opted-out worker would.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    UnsandboxedWorkflowRunner,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain.orders import OrderView
from domain.statuses import OrderStatus
from settings import Settings
from store.db import Database
from tests import scenarios
from tests.helpers import Factory, api_for
from worker import build_worker, workflow_runner

SECRETS: dict[str, Any] = {
    "auth_secret": "runner-test-secret-5d0e8b3f1a7c9246e0b4",
    "encrypt_payloads": False,
    "allow_unencrypted_payloads": True,
    "audit_keys": {"a1": "an-audit-key-of-32-characters-or-more"},
    "audit_key_id": "a1",
}


def test_the_sandbox_is_on_by_default_production_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("WORKFLOW_SANDBOX", raising=False)
    assert Settings(environment="development").workflow_sandbox
    assert Settings(environment="test", **SECRETS).workflow_sandbox
    assert Settings(environment="production", **SECRETS).workflow_sandbox
    assert not Settings(
        environment="production", **SECRETS, workflow_sandbox=False
    ).workflow_sandbox
    monkeypatch.setenv("WORKFLOW_SANDBOX", "false")  # the opt-out
    assert not Settings(environment="production", **SECRETS).workflow_sandbox
    assert not Settings(environment="development").workflow_sandbox
    assert isinstance(workflow_runner(sandboxed=False), UnsandboxedWorkflowRunner)
    assert isinstance(workflow_runner(), SandboxedWorkflowRunner)


# What each workflow run saw: whether it ran in the sandbox (the interceptor runs where the
# workflow does).
seen_in_sandbox: list[bool] = []


class _Probe(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        return _ProbeInbound


class _ProbeInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        seen_in_sandbox.append(workflow.unsafe.in_sandbox())
        return await super().execute_workflow(input)


async def test_orders_run_to_the_end_outside_the_sandbox(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    own = settings.model_copy(
        update={"task_queue": f"unsandboxed-{uuid.uuid4().hex[:6]}", "workflow_sandbox": False}
    )
    seen_in_sandbox.clear()
    async with build_worker(temporal_client, db, own, [_Probe()]), api_for(own) as api:
        for path in (scenarios.auto_approved, scenarios.two_level_approval):
            workflow_id = await path(api, new_customer, new_product)
            handle = temporal_client.get_workflow_handle(workflow_id, result_type=OrderView)
            assert (await handle.result()).status is OrderStatus.COMPLETED
    assert seen_in_sandbox == [False, False]


async def test_the_test_suite_runs_its_workflows_in_the_sandbox(
    settings: Settings,
    db: Database,
    temporal_client: Client,
    new_customer: Factory,
    new_product: Factory,
) -> None:
    """A worker built from the suite's settings, as the session's is (whatever
    WORKFLOW_SANDBOX says in the shell), runs orders in the sandbox."""
    own = settings.model_copy(update={"task_queue": f"sandboxed-{uuid.uuid4().hex[:6]}"})
    seen_in_sandbox.clear()
    async with build_worker(temporal_client, db, own, [_Probe()]), api_for(own) as api:
        workflow_id = await scenarios.auto_approved(api, new_customer, new_product)
        handle = temporal_client.get_workflow_handle(workflow_id, result_type=OrderView)
        assert (await handle.result()).status is OrderStatus.COMPLETED
    assert seen_in_sandbox == [True]
