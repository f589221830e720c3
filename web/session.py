"""The browser session: the API's own signed token in a cookie, checked by the API's own code
(`api.auth.principal_for`, `Allowed`), and a CSRF token on every form.

The cookie is HttpOnly (no script reads it), SameSite=Lax (no other site's form posts it) and
Secure outside development. CSRF: every POST form carries a token derived (HMAC with the
signing secret) from the session's token id, or, before sign-in, from a random cookie: a
forged form from elsewhere cannot know it (double submit, tied to the session)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from api.auth import API_KEY_PREFIX, Allowed, PrincipalCache, principal_for
from api.errors import ProblemError
from api.principal import Principal
from domain.auth import Permission
from settings import Settings
from store import notifications
from store.db import Database

SESSION_COOKIE = "session"
PRESESSION_COOKIE = "presession"  # the CSRF anchor of the sign-in form
CSRF_FIELD = "csrf_token"
UNREAD = "unread_notices"  # on the request's state: the header's count of unread notifications


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to the sign-in page."""


class Forbidden(Exception):
    """The signed-in person's role lacks the page's permission: the 403 page."""

    def __init__(self, principal: Principal, permission: Permission) -> None:
        super().__init__(permission.value)
        self.principal = principal
        self.permission = permission


class CsrfRefused(Exception):
    """A POST without the form's CSRF token."""


@dataclass(frozen=True)
class State:
    """What every request of the web app knows: settings, database, credential cache."""

    settings: Settings
    db: Database
    cache: PrincipalCache


def state(request: Request) -> State:
    app_state = request.app.state
    return State(app_state.settings, app_state.db, app_state.principals)


def secure_cookies(settings: Settings) -> bool:
    return settings.environment != "development"


def set_session(response: Response, settings: Settings, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/app",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )


def clear_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/app", httponly=True, samesite="lax", secure=secure_cookies(settings)
    )


def presession(request: Request, response: Response, settings: Settings) -> str:
    """The sign-in form's CSRF anchor: the browser's cookie, or a new one."""
    anchor = request.cookies.get(PRESESSION_COOKIE)
    if not anchor or len(anchor) > 64:
        anchor = secrets.token_urlsafe(24)
        response.set_cookie(
            PRESESSION_COOKIE,
            anchor,
            path="/app",
            httponly=True,
            samesite="lax",
            secure=secure_cookies(settings),
        )
    return anchor


def csrf_token(settings: Settings, anchor: str) -> str:
    mac = hmac.new(settings.auth_secret.encode(), f"csrf:{anchor}".encode(), hashlib.sha256)
    return mac.hexdigest()


def check_csrf(settings: Settings, anchor: str | None, sent: object) -> None:
    if not anchor or not isinstance(sent, str):
        raise CsrfRefused
    if not hmac.compare_digest(csrf_token(settings, anchor), sent):
        raise CsrfRefused


def session_anchor(principal: Principal) -> str:
    return principal.jti or ""


async def signed_in(request: Request) -> Principal | None:
    """The person the session cookie names, checked like the API checks a bearer token;
    None without a valid session (API keys do not sign a browser in)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or token.startswith(API_KEY_PREFIX):
        return None
    found = state(request)
    try:
        return await principal_for(request, token, found.db, found.settings, found.cache)
    except ProblemError:
        return None


async def require(request: Request, permission: Permission) -> Principal:
    """The signed-in person holding `permission`: `LoginRequired` without a session,
    `Forbidden` (recorded on the command log, as the API's 403 is) without the permission."""
    principal = await signed_in(request)
    if principal is None:
        raise LoginRequired
    try:
        allowed = await Allowed(permission)(request, principal)
    except ProblemError as exc:
        if exc.problem.status == 403:
            raise Forbidden(principal, permission) from exc
        raise
    await count_unread(request, allowed)
    return allowed


async def count_unread(request: Request, principal: Principal) -> None:
    """The person's unread notifications, for the header of the page being made (one indexed
    count)."""
    count = await notifications.unread_count(state(request).db, principal.name)
    setattr(request.state, UNREAD, count)


def unread(request: Request) -> int:
    return int(getattr(request.state, UNREAD, 0))


class Page:
    """A page's dependency: `Depends(Page(Permission.X))` gives the signed-in person."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Principal:
        return await require(request, self.permission)


async def form_of(request: Request, principal: Principal | None) -> dict[str, str]:
    """A POSTed form's fields, once its CSRF token has been checked (`CsrfRefused`)."""
    form = await request.form()
    anchor = session_anchor(principal) if principal else request.cookies.get(PRESESSION_COOKIE)
    check_csrf(state(request).settings, anchor, form.get(CSRF_FIELD))
    return {key: value for key, value in form.items() if isinstance(value, str)}


def safe_next(target: str | None) -> str:
    """Where to go after a form: only a page of this app, never another site."""
    if target and target.startswith("/app/") and not target.startswith("/app//"):
        return target
    return "/app/"
