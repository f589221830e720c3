"""Errors at the edge, mapped once: problem details (RFC 9457) with the offending fields."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import RPCTimeoutOrCancelledError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.errors import Refusal

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = "5"

REFUSAL_STATUS = {
    Refusal.INVALID_STATE: 409,
    Refusal.CONFLICT: 409,
    Refusal.FORBIDDEN: 403,
    Refusal.INVALID: 422,
    Refusal.NOT_FOUND: 404,
}
TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class FieldProblem(BaseModel):
    field: str
    message: str


class ProblemDetails(BaseModel):
    """The body of every error answer."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] | None = None
    order_no: str | None = None
    permission: str | None = Field(
        default=None, description="On a 403: the permission the caller's role lacks."
    )


class ProblemError(Exception):
    """Raise anywhere in a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: Sequence[FieldProblem] | None = None,
        order_no: str | None = None,
        permission: str | None = None,
        type_: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = ProblemDetails(
            type=type_ or "about:blank",
            title=TITLES.get(status, "Error"),
            status=status,
            detail=detail,
            errors=list(errors) if errors is not None else None,
            order_no=order_no,
            permission=permission,
        )
        self.headers = headers


def problem_response(
    problem: ProblemDetails, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "lines", 0, "quantity")` → `lines[0].quantity`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] or parts
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def unavailable(what: str) -> ProblemError:
    return ProblemError(
        503,
        f"{what} is unreachable; try again shortly",
        headers={"Retry-After": RETRY_AFTER_SECONDS},
    )


def refusal_to_problem(
    error: WorkflowUpdateFailedError, order_no: str | None, *, return_no: str | None = None
) -> ProblemError:
    """Map the workflow's refusal of an update (an order's, or a return's when `return_no`
    is given) to its HTTP status."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type in REFUSAL_STATUS:
        return ProblemError(
            REFUSAL_STATUS[cause.type],
            cause.message,
            order_no=order_no,
            type_=cause.type,
            errors=_field_problems(cause.details),
        )
    log.error(
        "update_failed_unexpectedly", order_no=order_no, return_no=return_no, error=str(cause)
    )
    refused_by = "return" if return_no else "order"
    return ProblemError(409, f"The {refused_by} refused the command: {cause}", order_no=order_no)


def _field_problems(details: Sequence[Any]) -> list[FieldProblem] | None:
    """Field problems the workflow attached to a refusal (a list of {field, message})."""
    problems = [
        FieldProblem(field=str(item["field"]), message=str(item["message"]))
        for detail in details
        if isinstance(detail, list)
        for item in detail
        if isinstance(item, dict) and {"field", "message"} <= item.keys()
    ]
    return problems or None


def rpc_to_problem(
    error: RPCError, order_no: str | None = None, *, return_no: str | None = None
) -> ProblemError:
    """Temporal's answer as a problem: a workflow not found is the order's 404, or the
    return's when `return_no` is given; trouble reaching Temporal a 503."""
    if error.status == RPCStatusCode.NOT_FOUND:
        missing = f"Return {return_no}" if return_no else f"Order {order_no}"
        return ProblemError(404, f"{missing} not found", order_no=order_no)
    if error.status in (
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.CANCELLED,
    ):
        return unavailable("Temporal")
    log.error("temporal_rpc_failed", status=error.status.name, error=error.message)
    return unavailable("Temporal")


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldProblem(
                # A JSON syntax error's location is a character offset, not a field.
                field="body"
                if err.get("type") == "json_invalid"
                else field_path(err.get("loc", ())),
                message=str(err.get("msg", "")),
            )
            for err in exc.errors()
        ]
        return problem_response(
            ProblemDetails(
                title=TITLES[422],
                status=422,
                detail="The request does not match the schema",
                errors=errors,
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (e.g. bytes that are not UTF-8 JSON): a
            # malformed request like any other, so the same field-level 422.
            return problem_response(
                ProblemDetails(
                    title=TITLES[422],
                    status=422,
                    detail="The request body is not valid JSON",
                    errors=[FieldProblem(field="body", message=str(exc.detail))],
                )
            )
        return problem_response(
            ProblemDetails(
                title=TITLES.get(exc.status_code, "Error"),
                status=exc.status_code,
                detail=str(exc.detail),
            ),
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(RPCError)
    async def _rpc(_: Request, exc: RPCError) -> JSONResponse:
        problem = rpc_to_problem(exc)
        return problem_response(problem.problem, problem.headers)

    @app.exception_handler(RPCTimeoutOrCancelledError)
    async def _timeout(_: Request, exc: RPCTimeoutOrCancelledError) -> JSONResponse:
        # No worker answered in time. The command stays queued in the workflow's history or
        # is dropped with it; retrying the same request is safe either way.
        log.warning("workflow_command_timed_out", error=str(exc))
        problem = ProblemError(
            503,
            "The order process did not answer in time; retry the same request shortly",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
        return problem_response(problem.problem, problem.headers)

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        log.warning("database_error", error=str(exc.orig))
        problem = unavailable("The database")
        return problem_response(problem.problem, problem.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled_error", error=repr(exc))
        return problem_response(
            ProblemDetails(title=TITLES[500], status=500, detail="Internal server error")
        )


def problems_from(items: Sequence[Any]) -> list[FieldProblem]:
    return [FieldProblem(field=item.field, message=item.message) for item in items]
