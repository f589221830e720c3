"""Replay: the workflow code must reproduce every recorded history, command for command.

`tests/histories/` holds histories of real runs, one per path; `tests/histories/v1/` those of
the code before the deadline ladders (`workflow.patched("deadlines-v1")`), and
`tests/histories/v2/` those of the paths that later patches changed (a CANCELLING checkpoint,
partial pick lists following amendments, delivery deadlines re-armed by key, return credits
settling invoices, short-close credits, a cancellation requested in Temporal), recorded before
them; `tests/histories/v3/` every path as it ran before confirmation's promise
(`workflow.patched("order-confirmation-v1")`): orders started then must still replay. A change to `workflows/` that alters the command
sequence fails here unless it is guarded with `workflow.patched()`; keep the old histories when
you add one.
Re-record after an intended, guarded change with `RECORD_HISTORIES=1 make test`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer

from tests.conftest import CONVERTER
from tests.helpers import Factory
from tests.scenarios import SCENARIOS, TEMPORAL_SCENARIOS
from worker import WORKFLOWS, workflow_runner

HISTORIES = Path(__file__).parent / "histories"
# The history budgets of issue 2 (auto-approved) and issue 6 (two-level approval).
EVENT_BUDGET = {"auto_approved": 60, "two_level_approval": 80}


def replayer(*, sandboxed: bool = True) -> Replayer:
    return Replayer(
        workflows=WORKFLOWS,
        # Histories recorded before payload encryption are plain; newer ones are sealed.
        data_converter=CONVERTER,
        workflow_runner=workflow_runner(sandboxed=sandboxed, strict=True),
    )


@pytest.mark.parametrize(
    "path", sorted(str(p.relative_to(HISTORIES)) for p in HISTORIES.rglob("*.json"))
)
@pytest.mark.parametrize("sandboxed", [True, False], ids=["strict-sandbox", "production-runner"])
async def test_recorded_history_replays(path: str, sandboxed: bool) -> None:
    """In the strict sandbox (its checks on our code), and outside it as production runs."""
    history = WorkflowHistory.from_json(path.removesuffix(".json"), (HISTORIES / path).read_text())
    result = await replayer(sandboxed=sandboxed).replay_workflow(
        history, raise_on_replay_failure=True
    )
    assert result.replay_failure is None


def test_every_path_has_a_recorded_history() -> None:
    assert {p.stem for p in HISTORIES.glob("*.json")} >= set(SCENARIOS) | set(TEMPORAL_SCENARIOS)
    before_deadlines = {
        "auto_approved",
        "two_level_approval",
        "production_shortage",
        "prepaid",
        "rejected",
    }
    assert {p.stem for p in (HISTORIES / "v1").glob("*.json")} >= before_deadlines
    before_credits = {
        "approval_expired",
        "amended",
        "partial_delivery",
        "return_replaced",
        "cancelled_in_temporal",
    }
    assert {p.stem for p in (HISTORIES / "v2").glob("*.json")} >= before_credits
    # Before confirmation (确认) and its promise: every path of the time.
    assert {p.stem for p in (HISTORIES / "v3").glob("*.json")} >= set(SCENARIOS) | set(
        TEMPORAL_SCENARIOS
    )


@pytest.mark.parametrize("name", sorted([*SCENARIOS, *TEMPORAL_SCENARIOS]))
async def test_fresh_history_replays_within_budget(
    name: str,
    api: httpx.AsyncClient,
    new_customer: Factory,
    new_product: Factory,
    temporal_client: Client,
) -> None:
    if name in TEMPORAL_SCENARIOS:
        workflow_id = await TEMPORAL_SCENARIOS[name](
            api, new_customer, new_product, temporal_client
        )
    else:
        workflow_id = await SCENARIOS[name](api, new_customer, new_product)
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    await replayer().replay_workflow(history)
    if name in EVENT_BUDGET:
        assert len(history.events) <= EVENT_BUDGET[name]
    if os.environ.get("RECORD_HISTORIES") == "1":
        data: Any = history.to_json()
        (HISTORIES / f"{name}.json").write_text(data)
