"""Rendering a page: one Jinja2 environment (autoescape on for every template: an order's
note `<script>` shows as text), and what every page's layout needs: who is signed in, the
navigation their role may use, the language switch and the CSRF token of its forms.

Adding a page: a module in `web/pages/` with its router (listed in `web.app.PAGE_MODULES`), a
template extending `base.html`, its labels in both catalogues, and a `NAVIGATION` entry when
it belongs in the menu (shown only to roles holding its permission)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from api.errors import ProblemError
from api.principal import Principal
from domain.auth import Permission, allows
from domain.statuses import OrderStatus
from web.i18n import LANG_COOKIE, LANGUAGES, choose_language, translator
from web.session import csrf_token, session_anchor, state, unread

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=True,  # every template, whatever its name
    undefined=StrictUndefined,  # a misspelt variable fails the test, not the page silently
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class NavItem:
    path: str
    label: str  # a msgid
    permission: Permission
    also: tuple[Permission, ...] = ()  # shown as well to roles holding any of these


NAVIGATION: list[NavItem] = [
    NavItem("/app/orders", "Orders", Permission.ORDERS_READ),
    NavItem("/app/orders/new", "New order", Permission.ORDERS_CREATE),
    NavItem("/app/inbox", "Approvals", Permission.ORDERS_APPROVE),
    NavItem("/app/warehouse", "Warehouse", Permission.SHIPMENTS_DISPATCH),
    NavItem("/app/production", "Production", Permission.PRODUCTION_WRITE),
    NavItem("/app/finance", "Finance", Permission.PAYMENTS_RECORD),
    NavItem("/app/ops", "Operations", Permission.REPORTS_READ),
    NavItem(
        "/app/returns",
        "Returns",
        Permission.RETURNS_REQUEST,
        (Permission.RETURNS_DECIDE, Permission.RETURNS_HANDLE),
    ),
]


def navigation(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    return [
        item
        for item in NAVIGATION
        if any(allows(principal.role, p) for p in (item.permission, *item.also))
    ]


def language(request: Request) -> str:
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def money(value: Decimal | float | int | None) -> str:
    return "" if value is None else f"{Decimal(value):,.2f}"


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    *,
    status_code: int = 200,
    csrf: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page `template` for `principal` in the request's language."""
    lang = language(request)
    found = state(request)
    calendar = request.app.state.calendar
    zone = ZoneInfo(calendar.timezone)

    def local(moment: datetime | None) -> str:
        return "" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def status_label(status: str) -> str:
        try:
            known = OrderStatus(status)
        except ValueError:
            return status
        return known.label_zh if lang == "zh" else known.label_en

    if csrf is None and principal is not None:
        csrf = csrf_token(found.settings, session_anchor(principal))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = env.get_template(template).render(
        _=translator(lang),
        lang=lang,
        languages=LANGUAGES,
        here=quote(here, safe=""),
        path=request.url.path,
        principal=principal,
        nav=navigation(principal),
        csrf=csrf or "",
        local=local,
        money=money,
        status_label=status_label,
        idempotency_key=lambda: uuid.uuid4().hex,
        unread=unread(request),
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def problem_page(request: Request, principal: Principal | None, exc: ProblemError) -> HTMLResponse:
    """A problem a page does not show in place (404 unknown order, 503 Temporal down)."""
    return render(
        request,
        "error.html",
        principal,
        status_code=exc.problem.status,
        code=exc.problem.status,
        message=exc.problem.detail or exc.problem.title,
        permission=exc.problem.permission,
    )
