"""The engine's ceiling: bare workflows with no-op steps, on their own task queue.

`python -m bench.baseline --address HOST:PORT --task-queue Q [--sandboxed]` runs the worker;
the suite starts it as a separate process (like our worker, and in Temporal's sandbox exactly
when ours is) and drives it with `run_bare` / `run_replica`.

- `BareWorkflow(activities, local_activities)`: as many no-op steps as an auto-approved order
  has (regular activities and local activities counted from a real order's history), run one
  after the other; the client starts it and waits for the result.
- `ReplicaWorkflow(plan)`: an order's history asked of the engine again, with nothing behind
  it: the plan (`bench.history.script`) lists, per update, the steps (no-op, answering with as
  many bytes as the order's step did), search-attribute upserts, timers started and cancelled
  and patch markers in the order's sequence, and the answer's size; it starts with an input,
  summary and search attributes like the order's. Its difference to our orders is our code
  (API, database, encryption, workflow logic).
- The order-shaped baseline is the replica of the same plan cut down to its steps (`shaped`):
  started with an update (update-with-start), then one update per later segment (dispatch,
  deliver, pay), each answered once its steps are done. Its difference to the bare workflow is
  what the update round trips cost the engine, its difference to the replica what our use of
  the engine costs it (upserts, timers, payload bytes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from bench.load import Measured, closed_loop

BARE = "BenchBareWorkflow"
REPLICA = "BenchReplicaWorkflow"
STEP_TIMEOUT = timedelta(seconds=30)
RUN_TIMEOUT = timedelta(minutes=2)  # a stuck run fails (and is counted) instead of hanging


@activity.defn(name="bench_noop")
async def noop() -> None:
    return None


@activity.defn(name="bench_sized")
async def sized(data_bytes: int) -> str:
    return _text(data_bytes)


def _text(data_bytes: int) -> str:
    """A string whose JSON payload has `data_bytes` bytes of data (its quotes included)."""
    return "x" * max(0, data_bytes - 2)


# A value of each search-attribute type, for the replica's upserts and start.
_SEARCH_ATTRIBUTE_VALUES: dict[str, tuple[Callable[[str], SearchAttributeKey[Any]], Any]] = {
    "Keyword": (SearchAttributeKey.for_keyword, "bench-replica"),
    "Text": (SearchAttributeKey.for_text, "bench replica"),
    "Int": (SearchAttributeKey.for_int, 0),
    "Double": (SearchAttributeKey.for_float, 0.0),
    "Bool": (SearchAttributeKey.for_bool, False),
    "KeywordList": (SearchAttributeKey.for_keyword_list, ["bench-replica"]),
    "Datetime": (SearchAttributeKey.for_datetime, datetime(2026, 1, 1, tzinfo=UTC)),
}


def _pairs(keys: list[list[str]]) -> list[SearchAttributePair[Any]]:
    """A value for each [name, type]."""
    pairs: list[SearchAttributePair[Any]] = []
    for name, type_name in keys:
        key, value = _SEARCH_ATTRIBUTE_VALUES[type_name]
        pairs.append(SearchAttributePair(key(name), value))
    return pairs


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


@workflow.defn(name=REPLICA)
class ReplicaWorkflow:
    """Asks the engine what an order asked, in the same sequence (see `bench.history.script`)."""

    def __init__(self) -> None:
        self._requested = 0
        self._answers: dict[int, str] = {}

    @workflow.run
    async def run(self, plan: dict[str, Any]) -> str:
        """`plan`: `replica_input`'s compact form of `bench.history.script`."""
        timers: list[asyncio.Task[None]] = []
        for index, ops in enumerate(plan["s"]):
            await workflow.wait_condition(lambda index=index: self._requested > index)  # type: ignore[misc]
            for op, arg in ops:
                if op == "l":
                    await workflow.execute_local_activity(
                        sized, arg, start_to_close_timeout=STEP_TIMEOUT
                    )
                elif op == "a":
                    await workflow.execute_activity(sized, arg, start_to_close_timeout=STEP_TIMEOUT)
                elif op == "u":
                    workflow.upsert_search_attributes(
                        [pair.key.value_set(pair.value) for pair in _pairs(plan["k"][arg])]
                    )
                elif op == "t":
                    timers.append(asyncio.create_task(asyncio.sleep(arg)))
                elif op == "c":
                    timers[arg].cancel()
                    await asyncio.wait([timers[arg]])  # its cancel command before the next
                elif op == "p":
                    workflow.patched(arg)
                elif op == "r":
                    self._answers[index] = _text(arg)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return _text(plan["r"])

    @workflow.update
    async def step(self, arg: str) -> str:
        index = self._requested
        self._requested += 1
        await workflow.wait_condition(lambda: index in self._answers)
        return self._answers[index]


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


def shaped(plan: dict[str, Any]) -> dict[str, Any]:
    """`plan` cut down to its steps and updates: no upserts, timers or patch markers, and no
    bytes in the input, the steps' results, the updates' arguments or answers."""
    return {
        "input_bytes": 0,
        "summary_bytes": 0,
        "search_attributes": [],
        "update_arg_bytes": [0 for _ in plan["update_arg_bytes"]],
        "segments": [
            [[op, 0] for op, _ in ops if op in ("local", "activity", "answer")]
            for ops in plan["segments"]
        ],
        "result_bytes": 0,
    }


def replica_input(plan: dict[str, Any]) -> dict[str, Any]:
    """The replica's input: `plan` in a compact form (ops by their first letter but `answer`
    as `r`, upserts by key set), padded to the size of the order's input when that is larger."""
    key_sets: list[list[list[str]]] = []
    segments: list[list[list[Any]]] = []
    for ops in plan["segments"]:
        compact: list[list[Any]] = []
        for op, arg in ops:
            if op == "upsert":
                if arg not in key_sets:
                    key_sets.append(arg)
                compact.append(["u", key_sets.index(arg)])
            else:
                compact.append(["r" if op == "answer" else op[0], arg])
        segments.append(compact)
    value: dict[str, Any] = {"k": key_sets, "s": segments, "r": plan["result_bytes"], "pad": ""}
    size = len(json.dumps(value, separators=(",", ":")))
    value["pad"] = "x" * max(0, plan["input_bytes"] - size)
    return value


async def run_replica(
    client: Client,
    task_queue: str,
    count: int,
    concurrency: int,
    plan: dict[str, Any],
    prefix: str,
) -> Measured:
    arg = replica_input(plan)
    start_attributes = TypedSearchAttributes(_pairs(plan["search_attributes"]))
    update_args = [_text(n) for n in plan["update_arg_bytes"]]

    async def one(i: int) -> None:
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            REPLICA,
            arg,
            id=f"{prefix}-{i}",
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            execution_timeout=RUN_TIMEOUT,
            search_attributes=start_attributes,
            static_summary=_text(plan["summary_bytes"]) if plan["summary_bytes"] else None,
        )
        await client.execute_update_with_start_workflow(
            "step", update_args[0], start_workflow_operation=start
        )
        handle = await start.workflow_handle()
        for update_arg in update_args[1:]:
            await handle.execute_update("step", update_arg)
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
        workflows=[BareWorkflow, ReplicaWorkflow],
        activities=[noop, sized],
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
