"""One logging pipeline for our structlog events, uvicorn's and Temporal's stdlib loggers.

JSON lines by default (production), a readable console in the run command. Every line about an
order carries `order_no` and `workflow_id`: bound with contextvars in the API and activities,
lifted from the `temporal_workflow` / `temporal_activity` extras Temporal's loggers attach.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

ORDER_WORKFLOW_PREFIX = "order-"


def _temporal_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Turn Temporal's logging extras into our `order_no` / `workflow_id` fields."""
    record = event_dict.get("_record")
    if record is None:
        return event_dict
    for key in ("temporal_workflow", "temporal_activity"):
        info = getattr(record, key, None)
        if isinstance(info, dict):
            workflow_id = info.get("workflow_id")
            if isinstance(workflow_id, str):
                event_dict.setdefault("workflow_id", workflow_id)
                if workflow_id.startswith(ORDER_WORKFLOW_PREFIX):
                    event_dict.setdefault("order_no", workflow_id[len(ORDER_WORKFLOW_PREFIX) :])
            if key == "temporal_activity" and "activity_type" in info:
                event_dict.setdefault("activity", info["activity_type"])
    return event_dict


def configure_logging(*, fmt: str = "json", level: str = "INFO") -> None:
    """Route structlog and every stdlib logger through one formatter."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _temporal_context,
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            *shared[:1],
            structlog.stdlib.filter_by_level,
            *shared[1:],
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    foreign: list[Processor] = list(shared)
    final: list[Processor] = [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        *([structlog.processors.format_exc_info] if fmt != "console" else []),
        _drop_temporal_extras,
        renderer,
    ]
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final,
                "foreign_pre_chain": foreign,
            }
        },
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "structlog"}},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            # uvicorn installs its own handlers; send everything through ours instead.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
            "sqlalchemy": {"level": "WARNING"},
            "aiosqlite": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
        },
    }
    logging.config.dictConfig(config)
    # Temporal's loggers put workflow/activity info in the message text by default; we keep
    # the message a plain event name and lift the info into fields (`_temporal_context`).
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False


def _drop_temporal_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("temporal_workflow", None)
    event_dict.pop("temporal_activity", None)
    event_dict.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event_dict


class OrderLogContext(Interceptor):
    """Binds `order_no` and `workflow_id` to every log line an activity writes."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityContext(next)


class _ActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        context: dict[str, Any] = {"workflow_id": info.workflow_id, "activity": info.activity_type}
        if info.workflow_id and info.workflow_id.startswith(ORDER_WORKFLOW_PREFIX):
            context["order_no"] = info.workflow_id[len(ORDER_WORKFLOW_PREFIX) :]
        with structlog.contextvars.bound_contextvars(**context):
            return await self.next.execute_activity(input)
