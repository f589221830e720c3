"""A fired ladder step as a person reads it: the facts stored once per person, the words found
at read time in that person's language (the web app's catalogues), so the same notification
reads in Chinese for one approver and in English for the next. Pure: the caller hands in the
catalogue's `translate` and how to show a moment (the company's time zone).

Also the SMTP server setting (`SMTP_URL`), parsed here so a mistake stops the process at start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

Translate = Callable[[str], str]
ShowTime = Callable[[datetime], str]

# Who may read their notifications in which language; None (no preference): the app default.
LANGUAGES = ("zh", "en")
# An e-mail address as people type it: something@domain.tld, no spaces (the mail server judges
# the rest; a refused address is recorded on the notification, not retried).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


@dataclass(frozen=True)
class NoticeFacts:
    """What one ladder step said, as stored for each person it was addressed to."""

    order_no: str
    sla: str
    kind: str  # reminder | escalation | action
    level: int
    action: str | None
    message: str | None  # the policy's own words, shown as written
    due_at: datetime


def headline(facts: NoticeFacts, translate: Translate, show: ShowTime) -> str:
    """One line: what happened to which deadline of which order, and when it is (was) due."""
    template = translate(f"notice:{facts.kind}")
    return template.format(
        order_no=facts.order_no,
        sla=translate(f"sla:{facts.sla}"),
        level=facts.level,
        due=show(facts.due_at),
        action=translate(f"notice-action:{facts.action}") if facts.action else "",
    )


def mail(facts: NoticeFacts, translate: Translate, show: ShowTime, link: str) -> tuple[str, str]:
    """The e-mail of one step for one person: subject and plain-text body."""
    line = headline(facts, translate, show)
    subject = f"[{facts.order_no}] {line}"
    parts = [line, ""]
    if facts.message:
        parts += [f"{translate('notice:policy-note')}: {facts.message}", ""]
    parts += [f"{translate('notice:open-order')}: {link}", "", translate("notice:why")]
    return subject, "\n".join(parts) + "\n"


@dataclass(frozen=True)
class SmtpServer:
    """`smtp://[user[:password]@]host[:port][?starttls=true]` (STARTTLS after connecting),
    or `smtps://…` (TLS from the first byte, port 465 by default)."""

    host: str
    port: int
    tls: bool  # smtps: implicit TLS
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpServer:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL is smtp://host:port or smtps://host:port")
        if not parts.hostname:
            raise ValueError("SMTP_URL names no host")
        try:
            port = parts.port
        except ValueError as exc:
            raise ValueError("SMTP_URL has a bad port") from exc
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(options) - {"starttls"}
        if unknown:
            raise ValueError(f"SMTP_URL: unknown option {sorted(unknown)[0]!r} (starttls)")
        starttls = options.get("starttls", "false").lower()
        if starttls not in ("true", "false", "1", "0"):
            raise ValueError("SMTP_URL: starttls is true or false")
        tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=port or (465 if tls else 25),
            tls=tls,
            starttls=starttls in ("true", "1") and not tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def valid_email(address: str) -> bool:
    return re.fullmatch(EMAIL_PATTERN, address) is not None
