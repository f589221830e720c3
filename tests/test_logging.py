"""One logging pipeline: every line JSON, and every line about an order names it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog

from logs import configure_logging
from tests.helpers import Factory, eventually, submit_ok


@pytest.fixture
def json_logs() -> Iterator[Any]:
    """The JSON pipeline, writing to a buffer the test reads."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(fmt="json", level="INFO")
    ours = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h not in saved[0]]
    assert len(ours) == 1
    buffer = io.StringIO()
    ours[0].setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    structlog.reset_defaults()
    root.handlers, root.level = saved[0], saved[1]


async def test_order_log_lines_carry_order_no_and_workflow_id(
    api: httpx.AsyncClient, new_customer: Factory, new_product: Factory, json_logs: Any
) -> None:
    customer = await new_customer()
    product = await new_product()
    order = await submit_ok(
        api, customer_id=customer["customer_id"], lines=[{"sku": product["sku"], "quantity": 1}]
    )
    order_no, workflow_id = order["order_no"], order["workflow_id"]
    seen: list[dict[str, Any]] = []

    async def logged() -> None:
        seen[:] = json_logs()
        events = {line["event"]: line for line in seen if line.get("order_no") == order_no}
        # From an activity (structlog), the workflow (Temporal's logger) and the API request.
        for name in ("stock_reserved", "order_status_changed", "order_submitted"):
            assert name in events, f"{name} missing from {sorted(events)}"
            assert events[name]["workflow_id"] == workflow_id
        assert events["order_status_changed"]["logger"] == "temporalio.workflow"

    await eventually(logged)
    assert all("timestamp" in line and "level" in line for line in seen)
