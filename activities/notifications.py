"""Notifications: a signed webhook POST per fired ladder step, and a structured log event.

The webhook call is a regular activity, so Temporal retries it until the receiver accepts it.
Each notification has a stable id (order, SLA, arming, step) sent as `X-Notification-Id`:
a receiver that sees an id twice (after a crash between its 2xx and our recording it) drops it.
The body is signed: `X-Signature: sha256=<hex HMAC of the body with the shared secret>`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

import httpx
import structlog
from temporalio import activity

from domain.messages import ActivityName, Notification

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Signature"
ID_HEADER = "X-Notification-Id"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class NotificationActivities:
    def __init__(self, webhook_url: str | None, secret: str, *, timeout: float = 10.0) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.timeout = timeout

    def all(self) -> list[Callable[..., Any]]:
        return [self.send_notification]

    @activity.defn(name=ActivityName.SEND_NOTIFICATION)
    async def send_notification(self, notification: Notification) -> None:
        """Deliver the notification to the webhook, raising (and being retried) until a 2xx
        answer, then log it."""
        if self.webhook_url:
            body = notification.model_dump_json().encode()
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                response = await http.post(
                    self.webhook_url,
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        ID_HEADER: notification.id,
                        SIGNATURE_HEADER: sign(self.secret, body),
                    },
                )
            if not response.is_success:
                raise RuntimeError(f"webhook answered {response.status_code}; will retry")
        # Logged once it is delivered, not per attempt: one step, one event, as for the webhook.
        log.warning(
            "deadline_notification",
            notification_id=notification.id,
            order_no=notification.order_no,
            sla=notification.sla,
            key=notification.key,
            step=notification.step,
            kind=notification.kind,
            # `level` is the log line's own (warning); this is the ladder's.
            escalation_level=notification.level,
            notify=notification.notify,
            message=notification.message,
            due_at=notification.due_at.isoformat(),
            delivered_to_webhook=bool(self.webhook_url),
        )
