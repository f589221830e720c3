"""A real HTTP webhook receiver for the tests: records notifications, checks their signature,
and can refuse a notification's first attempt to prove Temporal retries it."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

# The documented contract, spelled out here rather than imported: a receiver that checked with
# the service's own `sign()` would accept whatever algorithm that function happened to use.
SIGNATURE_HEADER = "x-signature"  # `sha256=<hex HMAC-SHA256 of the body>`
ID_HEADER = "x-notification-id"

Scope = dict[str, Any]
Message = dict[str, Any]


class WebhookReceiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.url = ""
        self.received: list[dict[str, Any]] = []  # accepted notifications, in arrival order
        self.refused: list[str] = []  # ids answered 503 once
        self.refuse_first: set[str] = set()  # step kinds whose first delivery is refused

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()

    def for_order(self, order_no: str) -> list[dict[str, Any]]:
        return [n for n in self.received if n["order_no"] == order_no]

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        notification = json.loads(body)
        notification["_signature_ok"] = hmac.compare_digest(
            headers.get(SIGNATURE_HEADER, "").encode(), self.signature(body).encode()
        )
        notification["_id_header"] = headers.get(ID_HEADER)
        key = f"{notification['order_no']}:{notification['kind']}"
        status = 204
        if key in self.refuse_first:
            self.refuse_first.discard(key)
            self.refused.append(notification["id"])
            status = 503
        else:
            self.received.append(notification)
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def running(receiver: WebhookReceiver) -> AsyncIterator[WebhookReceiver]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to await)
        await asyncio.sleep(0.01)
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
