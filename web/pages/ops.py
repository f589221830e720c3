"""Operations (`/app/ops`): orders by status (how many, how many overdue), overdue orders by
the stage they are stuck in with escalation level and who holds them (the service behind
`GET /reports/overdue`), the escalations fired today, and links into the Temporal UI's
searches of the workflows themselves (`TEMPORAL_UI_URL`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.auth import visible_customers
from api.orders_read import overdue_by_stage
from api.principal import Principal
from domain.auth import Permission
from domain.contract import ORDER_STATUS_ATTRIBUTE
from domain.statuses import OrderStatus
from store import worklists
from web.pages.orders import temporal_ui_base
from web.render import render
from web.session import Page, state

router = APIRouter()
Ops = Annotated[Principal, Depends(Page(Permission.REPORTS_READ))]
OVERDUE_LIMIT = 1000
ESCALATION_LIMIT = 200
# The Temporal UI's saved searches ops use most: a list filter (visibility query) each.
SEARCHES = (
    ("Overdue orders in Temporal", "Overdue=true"),
    ("Orders awaiting approval in Temporal", f'{ORDER_STATUS_ATTRIBUTE}="PENDING_APPROVAL"'),
)


def temporal_search(request: Request, query: str) -> str:
    settings = state(request).settings
    return f"{temporal_ui_base(request)}/namespaces/{settings.temporal_namespace}/workflows?query={quote(query)}"


@router.get("/app/ops")
async def ops(request: Request, principal: Ops) -> Response:
    found = state(request)
    calendar = request.app.state.calendar
    zone = ZoneInfo(calendar.timezone)
    midnight = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    counts = await worklists.status_counts(
        found.db, visible=await visible_customers(found.db, principal)
    )
    return render(
        request,
        "ops.html",
        principal,
        counts=[
            (status, *counts[status.value]) for status in OrderStatus if status.value in counts
        ],
        report=await overdue_by_stage(found.db, OVERDUE_LIMIT),
        escalations=await worklists.escalations_since(found.db, midnight, limit=ESCALATION_LIMIT),
        searches=[(label, temporal_search(request, query), query) for label, query in SEARCHES],
    )
