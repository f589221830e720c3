"""Production (`/app/production`): the plant's open production orders, earliest due first
(as `GET /production-orders?status=open`), and reporting what has been produced through the
API's own service (`api.operations.report_production`, as `POST /production-orders/{id}/
complete`): cumulative, the whole order when no quantity is given."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api import operations
from api.bodies import ProductionReport
from api.commands import Commands
from api.errors import ProblemError, field_path
from api.principal import Principal
from domain.auth import Permission
from store import queries
from store.queries import OPEN_PRODUCTION_FILTER
from web.render import problem_page, render
from web.session import Page, form_of, require, state

router = APIRouter()
Plant = Annotated[Principal, Depends(Page(Permission.PRODUCTION_WRITE))]
LIST_LIMIT = 200


async def _page(
    request: Request,
    principal: Principal,
    *,
    failed: str | None = None,
    message: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    rows = await queries.list_production_orders(
        state(request).db, status=OPEN_PRODUCTION_FILTER, limit=LIST_LIMIT, offset=0
    )
    return render(
        request,
        "production.html",
        principal,
        status_code=status_code,
        rows=rows,
        failed=failed,
        message=message,
        errors=errors or {},
        values=values or {},
        done=request.query_params.get("done"),
    )


@router.get("/app/production")
async def production(request: Request, principal: Plant) -> Response:
    return await _page(request, principal)


@router.post("/app/production/{po_id}/complete")
async def report(request: Request, po_id: str) -> Response:
    principal = await require(request, Permission.PRODUCTION_WRITE)
    form = await form_of(request, principal)
    values = {"produced_quantity": form.get("produced_quantity", "").strip()}
    try:
        # A form sends text: the API's strict JSON types (a count is an integer) read it as such.
        body = ProductionReport.model_validate({k: v for k, v in values.items() if v}, strict=False)
    except ValidationError as exc:
        errors = {field_path(error["loc"]): error["msg"] for error in exc.errors()}
        return await _page(
            request, principal, failed=po_id, errors=errors, values=values, status_code=422
        )
    found = state(request)
    commands = Commands(
        found.db,
        request.app.state.temporal,
        timedelta(seconds=found.settings.command_timeout_seconds),
        form.get("idempotency_key", "")[:200] or None,
    )
    try:
        await operations.report_production(commands, principal, po_id, body)
    except ProblemError as exc:
        problem = exc.problem
        if problem.status not in (404, 409, 422):
            return problem_page(request, principal, exc)
        return await _page(
            request,
            principal,
            failed=po_id,
            message=problem.detail,
            errors={item.field: item.message for item in problem.errors or []},
            values=values,
            status_code=problem.status,
        )
    return RedirectResponse("/app/production?done=report", status_code=303)
