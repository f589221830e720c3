"""A person's notifications: the deadline ladder's reminders, escalations and actions addressed
to their role (written by the worker's notification activity, `store.notifications`), newest
first, each linking to its order; mark one or all as read (CSRF-checked forms). The words are
found now, in the page's language: the rows hold the facts only.

Every signed-in person has a list (no permission beyond signing in). The unread count in
every page's header comes from `unread` (`web.session.require` puts it on the request); the
badge refreshes itself from `/app/notifications/badge`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from api.principal import Principal
from domain.notices import NoticeFacts, headline
from store import notifications as notices
from store.tables import PersonNotice
from web.i18n import translator
from web.render import language, render
from web.session import LoginRequired, count_unread, form_of, signed_in, state

router = APIRouter()

PAGE_SIZE = 50


async def person(request: Request) -> Principal:
    """Whoever is signed in, with their unread count for the header."""
    principal = await signed_in(request)
    if principal is None:
        raise LoginRequired
    await count_unread(request, principal)
    return principal


Person = Annotated[Principal, Depends(person)]


def facts(row: PersonNotice) -> NoticeFacts:
    return NoticeFacts(
        order_no=row.order_no,
        sla=row.sla,
        kind=row.kind,
        level=row.level,
        action=row.action,
        message=row.message,
        due_at=row.due_at,
    )


@router.get("/app/notifications")
async def notifications_page(request: Request, principal: Person) -> Response:
    raw = request.query_params.get("page", "")
    page = int(raw) if raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1
    rows, total = await notices.notices_of(
        state(request).db, principal.name, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    translate = translator(language(request))
    zone = ZoneInfo(request.app.state.calendar.timezone)

    def show(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    items = [{"row": row, "headline": headline(facts(row), translate, show)} for row in rows]
    return render(
        request,
        "notifications.html",
        principal,
        items=items,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
    )


@router.get("/app/notifications/badge")
async def badge(request: Request, principal: Person) -> Response:
    """The header's unread count alone, for its periodic refresh."""
    return render(request, "partials/notifications_badge.html", principal)


async def _mark(request: Request, notice_id: int | None) -> Response:
    principal = await person(request)
    await form_of(request, principal)  # CSRF
    db = state(request).db
    if notice_id is not None and not await notices.owns(db, principal.name, notice_id):
        return Response("Not found", status_code=404)
    await db.write(notices.mark_read, principal.name, datetime.now(UTC), notice_id)
    return RedirectResponse("/app/notifications", status_code=303)


@router.post("/app/notifications/read-all")
async def mark_all_read(request: Request) -> Response:
    return await _mark(request, None)


@router.post("/app/notifications/{notice_id}/read")
async def mark_one_read(request: Request, notice_id: str) -> Response:
    """Another person's notification (or none such): 404, nothing changed."""
    if not notice_id.isdigit() or len(notice_id) > 18:
        return Response("Not found", status_code=404)
    return await _mark(request, int(notice_id))
