"""What one workflow cost the engine: its history, counted by kind, and its size in bytes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def cost(client: Client, workflow_id: str) -> dict[str, Any]:
    """Events, bytes (serialized history events), activities, updates, timers, tasks."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    kinds: Counter[int] = Counter(event.event_type for event in history.events)
    segs = segments(history.events)
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
    }


def segments(events: Any) -> list[list[int]]:
    """[regular, local] activities after each accepted update (what it set in motion); those
    before the first update join the first segment."""
    result: list[list[int]] = [[0, 0]]
    seen_update = False
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            if seen_update:
                result.append([0, 0])
            seen_update = True
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            result[-1][0] += 1
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            result[-1][1] += 1
    return result
