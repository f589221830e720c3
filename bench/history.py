"""What one workflow cost the engine: its history, counted by kind, and its size in bytes; and
what it asked of the engine, step by step, for `bench.baseline.ReplicaWorkflow` to ask the same."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

LOCAL_ACTIVITY_MARKER = "core_local_activity"
PATCH_MARKER = "core_patch"
# Upserted by the SDK with every new patch marker: `workflow.patched` in the replica does it too.
CHANGE_VERSION = "TemporalChangeVersion"


async def cost(client: Client, workflow_id: str) -> dict[str, Any]:
    """Events, bytes (serialized history events), activities, updates, timers, tasks."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds: Counter[int] = Counter(event.event_type for event in history.events)
    asked = script(history.events)
    # [regular, local] activities each update set in motion.
    segs = [
        [sum(op[0] == kind for op in ops) for kind in ("activity", "local")]
        for ops in asked["segments"]
    ]
    regular = sum(seg[0] for seg in segs)
    local = sum(seg[1] for seg in segs)
    return {
        "workflow_id": workflow_id,
        "events": len(history.events),
        "bytes": sum(event.ByteSize() for event in history.events),
        "activities": regular + local,
        "regular_activities": regular,
        "local_activities": local,
        "updates": kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        "signals": kinds[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        "workflow_tasks": kinds[EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        "timers_started": kinds[EventType.EVENT_TYPE_TIMER_STARTED],
        "search_attribute_upserts": kinds[EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        "segments": segs,
        "script": asked,
    }


def _data_bytes(payloads: Any) -> int:
    return sum(len(payload.data) for payload in payloads.payloads)


def _search_attribute_types(search_attributes: Any) -> list[list[str]]:
    """[name, type] of each indexed field but the SDK's own `TemporalChangeVersion`."""
    return [
        [name, payload.metadata.get("type", b"Keyword").decode()]
        for name, payload in sorted(search_attributes.indexed_fields.items())
        if name != CHANGE_VERSION
    ]


def script(events: Any) -> dict[str, Any]:
    """What the workflow asked of Temporal, in order and with the sizes of its payloads'
    data: its start (input, search attributes, summary), then per update its argument and
    the commands until the next one. `ReplicaWorkflow` replays it with no-op steps.

    Segment ops: `["local", n]` / `["activity", n]` a step whose result has n bytes,
    `["upsert", [[name, type], ...]]`, `["timer", seconds]`, `["cancel", k]` the k-th timer
    started, `["patch", id]` (with its `TemporalChangeVersion` upsert), `["answer", n]` the
    update's result. Steps before the first update (an order has none) count with the first.
    Signals, fired timers and child workflows are not listed: the suite replicates the
    auto-approved order, which has none (`tests/test_bench.py` compares the histories)."""
    result: dict[str, Any] = {
        "input_bytes": 0,
        "summary_bytes": 0,
        "search_attributes": [],
        "update_arg_bytes": [],
        "segments": [],
        "result_bytes": 0,
    }
    ops: list[list[Any]] = []
    result["segments"].append(ops)
    timers: dict[str, int] = {}
    activities: dict[int, list[Any]] = {}
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = event.workflow_execution_started_event_attributes
            result["input_bytes"] = _data_bytes(started.input)
            result["summary_bytes"] = len(event.user_metadata.summary.data)
            result["search_attributes"] = _search_attribute_types(started.search_attributes)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes
            result["update_arg_bytes"].append(_data_bytes(accepted.accepted_request.input.args))
            if len(result["update_arg_bytes"]) > 1:
                ops = []
                result["segments"].append(ops)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            outcome = event.workflow_execution_update_completed_event_attributes.outcome
            ops.append(["answer", _data_bytes(outcome.success)])
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                ops.append(["local", _data_bytes(marker.details["result"])])
            elif marker.marker_name == PATCH_MARKER:
                data = marker.details["patch-data"].payloads[0].data
                ops.append(["patch", json.loads(data)["id"]])
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities[event.event_id] = ["activity", 0]
            ops.append(activities[event.event_id])
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in activities:
                activities[completed.scheduled_event_id][1] = _data_bytes(completed.result)
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            keys = _search_attribute_types(fields)
            if keys:
                ops.append(["upsert", keys])
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            started_timer = event.timer_started_event_attributes
            timers[started_timer.timer_id] = len(timers)
            ops.append(["timer", started_timer.start_to_fire_timeout.ToTimedelta().total_seconds()])
        elif kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            ops.append(["cancel", timers[event.timer_canceled_event_attributes.timer_id]])
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            completed_run = event.workflow_execution_completed_event_attributes
            result["result_bytes"] = _data_bytes(completed_run.result)
    return result
