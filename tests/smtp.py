"""A real SMTP server for the tests (aiosmtpd, in a thread of its own on a free port): it
keeps every message it accepts, refuses for good (550) the addresses it is told to, and
answers 451 (try later) to the first attempt at the addresses it is told to."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class Inbox:
    """What the server received, and how it treats addresses (aiosmtpd's handler hooks)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: set[str] = set()  # 550: never
        self.later_once: set[str] = set()  # 451 the first time
        self.lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            if address in self.refuse:
                return "550 5.1.1 no such mailbox"
            if address in self.later_once:
                self.later_once.discard(address)
                return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str, about: str | None = None) -> list[EmailMessage]:
        """The messages to `address` (whose subject names `about`, when given)."""
        with self.lock:
            return [
                m
                for m in self.messages
                if m["To"] == address and (about is None or about in str(m["Subject"]))
            ]


@contextmanager
def smtp_server() -> Iterator[tuple[str, Inbox]]:
    """`(smtp://127.0.0.1:<port>, inbox)` while the block runs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", inbox
    finally:
        controller.stop()
