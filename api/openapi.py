"""The published schema says what is served: every error answer is a problem document
(`application/problem+json`, `api.errors.ProblemDetails`), including the ones every operation
may give without its route naming them (413 for a body over the limit, 503 with Retry-After
when the database or Temporal is unreachable)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI

from api.errors import PROBLEM_JSON, RETRY_AFTER_SECONDS, TITLES

PROBLEM = {"$ref": "#/components/schemas/ProblemDetails"}
# FastAPI's own 422 body, which our handler never serves (api/errors.py answers a problem).
FASTAPI_VALIDATION = {"$ref": "#/components/schemas/HTTPValidationError"}
RETRY_AFTER = {
    "Retry-After": {
        "description": f"Seconds to wait before retrying ({RETRY_AFTER_SECONDS}).",
        "schema": {"type": "string"},
        "required": True,
    }
}
UNAVAILABLE = "The database or Temporal is unreachable; retry after `Retry-After` seconds"


def install(app: FastAPI) -> None:
    """Publish `app`'s schema with its errors documented as served."""
    generated = app.openapi

    def published() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_problems(generated())
        return app.openapi_schema

    app.openapi = published  # type: ignore[method-assign]  # FastAPI's documented override


def document_problems(spec: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx of every operation as `application/problem+json`; 413 where a body is
    taken and 503 everywhere (unless the operation documents its own, as /health does)."""
    for operations in spec["paths"].values():
        for operation in operations.values():
            responses: dict[str, Any] = operation["responses"]
            if "requestBody" in operation:
                responses.setdefault("413", {"description": "The request body is too large"})
            responses.setdefault("503", {"description": UNAVAILABLE})
            for status, response in responses.items():
                if int(status) < 400:
                    continue
                content = response.get("content") or {}
                schema = content.get("application/json", {}).get("schema")
                if content and schema not in (PROBLEM, FASTAPI_VALIDATION):
                    continue  # a body of its own, documented by the route (/health's 503)
                response["content"] = {PROBLEM_JSON: {"schema": PROBLEM}}
                if response.get("description") in (None, "", "Validation Error"):
                    response["description"] = TITLES.get(int(status), "Error")
                if status == "503":
                    response["headers"] = RETRY_AFTER
    _drop_unused(spec, ("HTTPValidationError", "ValidationError"))
    return spec


def _drop_unused(spec: dict[str, Any], names: tuple[str, ...]) -> None:
    """Remove these components unless something still refers to them (in this order)."""
    schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    for name in names:
        removed = schemas.pop(name, None)
        if removed is not None and json.dumps(f"#/components/schemas/{name}") in json.dumps(spec):
            schemas[name] = removed
