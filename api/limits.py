"""A request body larger than the configured limit is refused with 413: at once when its
Content-Length says so, and as soon as the bytes read pass the limit when it is sent in chunks
(no Content-Length)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import ProblemDetails, problem_response


class BodyTooLarge(HTTPException):
    """Raised while the body is read. An HTTP exception, so the route's body parsing passes it
    on as the 413 it is (any other error there becomes "the body is not valid JSON")."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes"


class BodyLimit:
    """ASGI middleware: checks Content-Length up front and counts streamed bytes too."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counted, send)
        except BodyTooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            ProblemDetails(
                title="Request too large",
                status=413,
                detail=_too_large(self.max_bytes),
            )
        )
        await response(scope, receive, send)


def install(app: Any, max_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
