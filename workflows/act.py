"""How the workflows run a database step: as a local activity, retried until it succeeds."""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

R = TypeVar("R")

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Database steps retry until they succeed: an outage delays orders, it never fails them.
ACTIVITY_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
)


async def act(name: str, arg: BaseModel, result_type: type[R]) -> R:
    """A database step as a local activity (one marker event, no task-queue round trip).

    Args:
        name: The activity's registered name.
        arg: Its single input model.
        result_type: What it answers, for the data converter (`type(None)` for nothing).

    Returns:
        The activity's result.
    """
    result: R = await workflow.execute_local_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=ACTIVITY_RETRY,
    )
    return result
