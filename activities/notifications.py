"""Notifications: for each fired ladder step, the people of the roles it names (their in-app
list, and an e-mail when SMTP_URL is set), a signed webhook POST, and a structured log event.

The webhook call is a regular activity, so Temporal retries it until the receiver accepts it.
Each notification has a stable id (order, SLA, arming, step) sent as `X-Notification-Id`:
a receiver that sees an id twice (after a crash between its 2xx and our recording it) drops it.
The body is signed: `X-Signature: sha256=<hex HMAC of the body with the shared secret>`.

People are reached in the same activity (no new workflow command): every active person of a
role the step names, who may see the order (a sales person scoped to customers or regions sees
only theirs), gets one row in their list (`store.notifications.deliver`: unique per step and
person, so a retry adds nothing), then, with an address, one e-mail in their language. The
order is in-app, e-mail, webhook: an outage of one delays what comes after it, and what came
before is recorded and not repeated by the retry (the webhook's receiver dedupes on the id).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
import structlog
from temporalio import activity

from domain.messages import ActivityName, Notification
from domain.notices import NoticeFacts, SmtpServer, Translate, mail
from store import notifications as notices
from store.db import Database

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Signature"
ID_HEADER = "X-Notification-Id"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


# How long one attempt holds a person's e-mail: longer than a send can take (socket timeouts)
# and than the activity's 30 s, so a second attempt never sends while the first still can.
EMAIL_LEASE = timedelta(minutes=5)


class Mailer:
    """Sends one message through the SMTP server: the standard library's smtplib, in a
    thread (`asyncio.to_thread`). Chosen over aiosmtplib: no further runtime dependency, and
    the volume is a handful of short connections per fired step; the thread keeps the
    worker's event loop free while the server answers."""

    def __init__(self, server: SmtpServer, sender: str, *, timeout: float = 10.0) -> None:
        self.server = server
        self.sender = sender
        self.timeout = timeout

    def send(self, message: EmailMessage) -> None:
        """Blocking: connect, STARTTLS / TLS and log in as configured, send, quit."""
        server = self.server
        smtp: smtplib.SMTP
        if server.tls:
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                timeout=self.timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=self.timeout)
        with smtp:
            if server.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if server.username:
                smtp.login(server.username, server.password or "")
            smtp.send_message(message)


@dataclass(frozen=True)
class People:
    """What reaching people needs: the database (their rows), the catalogues' words by
    language, the company's time zone, the app's address for links, and the mail server (None:
    in-app only)."""

    db: Database
    translator: Callable[[str], Translate]
    default_language: str
    timezone: str
    app_url: str
    mailer: Mailer | None = None
    lease: timedelta = EMAIL_LEASE


def _permanent(exc: Exception) -> bool:
    """The server refused this address or this message for good (5xx after MAIL FROM): never
    better on a retry. A refused sender, a failed login, 4xx, a lost connection: retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


class NotificationActivities:
    def __init__(
        self,
        webhook_url: str | None,
        secret: str,
        *,
        timeout: float = 10.0,
        people: People | None = None,
    ) -> None:
        self.webhook_url = webhook_url
        self.secret = secret
        self.timeout = timeout
        self.people = people

    def all(self) -> list[Callable[..., Any]]:
        return [self.send_notification]

    @activity.defn(name=ActivityName.SEND_NOTIFICATION)
    async def send_notification(self, notification: Notification) -> None:
        """Deliver the notification to its people (in-app, e-mail) and to the webhook, raising
        (and being retried) until every part is done, then log it."""
        recipients: list[notices.Recipient] = []
        if self.people is not None:
            recipients = await self.people.db.write(notices.deliver, notification)
            if self.people.mailer is not None:
                await self._mail(self.people, self.people.mailer, notification, recipients)
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
            people=[r.username for r in recipients],
        )

    async def _mail(
        self,
        people: People,
        mailer: Mailer,
        notification: Notification,
        recipients: list[notices.Recipient],
    ) -> None:
        """One e-mail per person, at most one attempt sending it at a time.

        At-least-once, made as close to once as the protocol allows: the row is claimed
        (`email_claimed_at`, a lease) before the send, and `emailed_at` is written the moment
        the server has accepted the message. A send that fails before that (connection,
        4xx, login) releases the claim and the activity is retried: the mail goes later. A
        retry while another attempt holds the claim sends nothing and retries later. Only a
        crash between the server's acceptance and our write (or a cancellation while the
        send is in flight, whose outcome is unknown) leaves the claim to expire, and the mail
        is sent again: a reminder of a deadline delivered twice beats one never delivered
        (at-most-once would drop it). Both copies carry the same Message-ID, by which mail
        systems recognise a duplicate. A 5xx refusal of the address is recorded, not retried.
        """
        waiting = False
        for recipient in recipients:
            if recipient.emailed or not recipient.email:
                continue
            claimed = await people.db.write(
                notices.claim_email, recipient.notice_id, datetime.now(UTC), people.lease
            )
            if not claimed:
                waiting = True  # another attempt is sending it, or has just sent it
                continue
            message = self._message(people, mailer, notification, recipient, recipient.email)
            try:
                await asyncio.to_thread(mailer.send, message)
            except (smtplib.SMTPException, OSError) as exc:
                if _permanent(exc):
                    await people.db.write(
                        notices.email_refused, recipient.notice_id, recipient.email, str(exc)
                    )
                    log.warning(
                        "notification_email_refused",
                        notification_id=notification.id,
                        username=recipient.username,
                        error=str(exc)[:300],
                    )
                    continue
                await people.db.write(notices.release_email, recipient.notice_id)
                raise RuntimeError(f"the SMTP server failed: {exc!r}; will retry") from exc
            await people.db.write(
                notices.email_sent, recipient.notice_id, recipient.email, datetime.now(UTC)
            )
        if waiting:
            raise RuntimeError("another attempt holds an e-mail of this step; will retry")

    def _message(
        self,
        people: People,
        mailer: Mailer,
        notification: Notification,
        recipient: notices.Recipient,
        to: str,
    ) -> EmailMessage:
        zone = ZoneInfo(people.timezone)
        translate = people.translator(recipient.language or people.default_language)
        facts = NoticeFacts(
            order_no=notification.order_no,
            sla=str(notification.sla),
            kind=str(notification.kind),
            level=notification.level,
            action=str(notification.action) if notification.action else None,
            message=notification.message,
            due_at=notification.due_at,
        )
        subject, body = mail(
            facts,
            translate,
            lambda moment: moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            f"{people.app_url}/app/orders/{quote(notification.order_no, safe='')}",
        )
        message = EmailMessage()
        message["From"] = mailer.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(notification.fired_at)
        # The same on every attempt: a duplicate (see `_mail`) is recognisable as one.
        digest = hashlib.sha256(f"{notification.id}|{recipient.username}".encode()).hexdigest()
        message["Message-ID"] = f"<{digest[:40]}@sales-orders.notifications>"
        message["X-Notification-Id"] = notification.id
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        return message
