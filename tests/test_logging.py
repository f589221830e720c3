"""One logging pipeline: every line JSON, and every line about an order names it."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import structlog

from activities import notifications
from activities.notifications import NotificationActivities
from domain.messages import Notification
from domain.policy import Sla, StepKind
from logs import configure_logging
from tests import webhook
from tests.conftest import unique
from tests.helpers import Factory, eventually, submit_ok
from tests.webhook import WebhookReceiver, running

SECRET = "logging-test-webhook-secret"


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


def overdue(order_no: str, step: int = 1) -> Notification:
    """An approval's first escalation, as the workflow sends it."""
    return Notification(
        id=f"{order_no}:approval:order:1:{step}",
        order_no=order_no,
        customer_id="C-1",
        status="PENDING_APPROVAL",
        sla=Sla.APPROVAL,
        key="order",
        step=step,
        kind=StepKind.ESCALATION,
        level=1,
        notify=["approver_l1"],
        message="Approval is overdue",
        due_at=datetime(2026, 11, 23, 5, tzinfo=UTC),
        fired_at=datetime(2026, 11, 23, 5, tzinfo=UTC),
    )


def notification_events(json_logs: Any) -> list[dict[str, Any]]:
    return [line for line in json_logs() if line["event"] == "deadline_notification"]


async def test_a_deadline_notification_is_logged_once_when_delivered(json_logs: Any) -> None:
    order_no = unique("SO")
    notification = overdue(order_no)
    async with running(WebhookReceiver(SECRET)) as receiver:
        receiver.refuse_first.add(f"{order_no}:escalation")
        sender = NotificationActivities(receiver.url, SECRET)
        # Refused (503): Temporal retries the activity, and nothing is logged as sent yet.
        with pytest.raises(RuntimeError, match="503"):
            await sender.send_notification(notification)
        assert notification_events(json_logs) == []
        await sender.send_notification(notification)
    assert receiver.refused == [notification.id]
    assert [n["id"] for n in receiver.received] == [notification.id]
    (event,) = notification_events(json_logs)
    expected = {
        "notification_id": notification.id,
        "order_no": order_no,
        "sla": "approval",
        "kind": "escalation",
        "escalation_level": 1,
        "level": "warning",
        "notify": ["approver_l1"],
        "delivered_to_webhook": True,
    }
    assert {key: event.get(key) for key in expected} == expected
    # With no webhook configured, the log event is the notification: once, all the same.
    quiet = overdue(order_no, step=2)
    await NotificationActivities(None, SECRET).send_notification(quiet)
    assert [e["notification_id"] for e in notification_events(json_logs)] == [
        notification.id,
        quiet.id,
    ]


async def test_the_test_webhook_checks_the_documented_signature_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`X-Signature: sha256=<hex HMAC-SHA256 of the body>`, checked by the receiver with its
    own HMAC: had it used the service's `sign()`, a wrong algorithm there would pass."""

    def wrong_sign(secret: str, body: bytes) -> str:
        return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()

    order_no = unique("SO")
    async with running(WebhookReceiver(SECRET)) as receiver:
        sender = NotificationActivities(receiver.url, SECRET)
        await sender.send_notification(overdue(order_no, step=1))
        # The service's signing gone wrong, wherever the name `sign` is bound.
        monkeypatch.setattr(notifications, "sign", wrong_sign)
        monkeypatch.setattr(webhook, "sign", wrong_sign, raising=False)
        await sender.send_notification(overdue(order_no, step=2))
    assert [(n["step"], n["_signature_ok"]) for n in receiver.received] == [(1, True), (2, False)]
    assert receiver.received[0]["_id_header"] == overdue(order_no, step=1).id
