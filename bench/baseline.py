"""The engine's ceiling: bare workflows with no-op steps, on their own task queue.

`python -m bench.baseline --address HOST:PORT --task-queue Q [--sandboxed]` runs the worker;
the suite starts it as a separate process (like our worker, and in Temporal's sandbox exactly
when ours is) and drives it with `run_bare` / `run_interactive`.

- `BareWorkflow(activities, local_activities)`: as many no-op steps as an auto-approved order
  has (regular activities and local activities counted from a real order's history), run one
  after the other; the client starts it and waits for the result.
- `InteractiveWorkflow(segments)`: the same steps, shaped like an order's interactions: started
  with an update (update-with-start), then one update per later segment (dispatch, deliver,
  pay), each answered once that segment's steps are done. The difference between the two is
  what the update round trips cost the engine; the difference to our orders is our code.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.load import Measured, closed_loop

BARE = "BenchBareWorkflow"
INTERACTIVE = "BenchInteractiveWorkflow"
STEP_TIMEOUT = timedelta(seconds=30)
RUN_TIMEOUT = timedelta(minutes=2)  # a stuck run fails (and is counted) instead of hanging


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


async def _steps(activities: int, local_activities: int) -> None:
    for _ in range(activities):
        await workflow.execute_activity(noop, start_to_close_timeout=STEP_TIMEOUT)
    for _ in range(local_activities):
        await workflow.execute_local_activity(noop, start_to_close_timeout=STEP_TIMEOUT)


@workflow.defn(name=BARE)
class BareWorkflow:
    @workflow.run
    async def run(self, activities: int, local_activities: int) -> int:
        await _steps(activities, local_activities)
        return activities + local_activities


@workflow.defn(name=INTERACTIVE)
class InteractiveWorkflow:
    """`segments`: [[activities, local_activities], ...], the first run on the start update."""

    def __init__(self) -> None:
        self._requested = 0
        self._done = 0

    @workflow.run
    async def run(self, segments: list[list[int]]) -> int:
        for index, (activities, local_activities) in enumerate(segments):
            await workflow.wait_condition(lambda index=index: self._requested > index)  # type: ignore[misc]
            await _steps(activities, local_activities)
            self._done = index + 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._done

    @workflow.update
    async def step(self) -> int:
        self._requested += 1
        target = self._requested
        await workflow.wait_condition(lambda: self._done >= target)
        return target


# --- the client side ------------------------------------------------------------------------


async def run_bare(
    client: Client,
    task_queue: str,
    count: int,
    concurrency: int,
    activities: int,
    local_activities: int,
    prefix: str,
) -> Measured:
    async def one(i: int) -> None:
        await client.execute_workflow(
            BARE,
            args=[activities, local_activities],
            id=f"{prefix}-{i}",
            task_queue=task_queue,
            execution_timeout=RUN_TIMEOUT,
        )

    return await closed_loop(one, count, concurrency)


async def run_interactive(
    client: Client,
    task_queue: str,
    count: int,
    concurrency: int,
    segments: list[list[int]],
    prefix: str,
) -> Measured:
    async def one(i: int) -> None:
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            INTERACTIVE,
            segments,
            id=f"{prefix}-{i}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            execution_timeout=RUN_TIMEOUT,
        )
        await client.execute_update_with_start_workflow("step", start_workflow_operation=start)
        handle = await start.workflow_handle()
        for _ in segments[1:]:
            await handle.execute_update("step")
        await handle.result()

    return await closed_loop(one, count, concurrency)


# --- the worker process ---------------------------------------------------------------------


async def serve(address: str, namespace: str, task_queue: str, sandboxed: bool) -> None:
    client = await Client.connect(address, namespace=namespace)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[BareWorkflow, InteractiveWorkflow],
        activities=[noop],
        workflow_runner=SandboxedWorkflowRunner() if sandboxed else UnsandboxedWorkflowRunner(),
    ):
        print("baseline worker ready", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="The baseline worker of the benchmark suite.")
    parser.add_argument("--address", required=True)
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--sandboxed", action="store_true", help="workflows in the sandbox")
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.namespace, args.task_queue, args.sandboxed))


if __name__ == "__main__":
    main()
