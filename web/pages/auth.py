"""Signing in and out, the language switch, and the way in: `/` → `/app/` → the first page
the person's role may use (or the sign-in page).

Sign-in checks the password with the API's own `authenticate` (the function behind
`POST /auth/token`) and keeps the API's own signed token in the session cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api.auth import authenticate, client_address, issue_token, revoke_token
from api.errors import ProblemError
from web.i18n import LANG_COOKIE, LANGUAGES
from web.render import navigation, render
from web.session import (
    LoginRequired,
    clear_session,
    csrf_token,
    form_of,
    presession,
    safe_next,
    set_session,
    signed_in,
    state,
)

router = APIRouter()

LANG_COOKIE_SECONDS = 365 * 24 * 3600
# The sign-in's refusals in the page's language (msgids of web/locale).
LOGIN_ERRORS = {
    401: "Incorrect user name or password.",
    429: "Too many failed sign-ins: wait a little, then try again.",
}


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=307)


@router.get("/app")
@router.get("/app/")
async def home(request: Request) -> RedirectResponse:
    principal = await signed_in(request)
    if principal is None:
        return RedirectResponse("/app/login", status_code=303)
    pages = navigation(principal)
    return RedirectResponse(pages[0].path if pages else "/app/account", status_code=303)


@router.get("/app/account")
async def account(request: Request) -> Response:
    """Who is signed in; the landing page of a role with no page yet (e.g. admin)."""
    principal = await signed_in(request)
    if principal is None:
        raise LoginRequired
    return render(request, "account.html", principal)


def _login_page(
    request: Request, *, error: str | None = None, username: str = "", status_code: int = 200
) -> Response:
    settings = state(request).settings
    response = Response()
    anchor = presession(request, response, settings)
    page = render(
        request,
        "login.html",
        None,
        status_code=status_code,
        csrf=csrf_token(settings, anchor),
        error=error,
        username=username,
        next=safe_next(request.query_params.get("next")),
    )
    for name, value in response.headers.items():
        if name == "set-cookie":
            page.headers.append(name, value)
    return page


@router.get("/app/login")
async def login_form(request: Request) -> Response:
    if await signed_in(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(request)


@router.post("/app/login")
async def login(request: Request) -> Response:
    form = await form_of(request, None)
    username, password = form.get("username", ""), form.get("password", "")
    found = state(request)
    if not (0 < len(username) <= 64 and 0 < len(password) <= 200):
        return _login_page(
            request,
            error="Enter your user name and password.",
            username=username[:64],
            status_code=422,
        )
    try:
        # The API's sign-in, its throttling included: the same back-off for this door.
        user = await authenticate(
            found.db, found.settings, username, password, client_address(request)
        )
    except ProblemError as exc:  # 401, 429; any other refusal of the API's sign-in says its own
        page = _login_page(
            request,
            error=LOGIN_ERRORS.get(exc.problem.status, exc.problem.detail),
            username=username,
            status_code=exc.problem.status,
        )
        if exc.headers and "Retry-After" in exc.headers:
            page.headers["Retry-After"] = exc.headers["Retry-After"]
        return page
    token, expires_in = issue_token(user, found.settings)
    response = RedirectResponse(safe_next(form.get("next")), status_code=303)
    set_session(response, found.settings, token, expires_in)
    return response


@router.post("/app/logout")
async def logout(request: Request) -> Response:
    principal = await signed_in(request)
    found = state(request)
    response = RedirectResponse("/app/login", status_code=303)
    if principal is not None:
        await form_of(request, principal)
        await revoke_token(found.db, principal, found.cache)
    clear_session(response, found.settings)
    return response


@router.get("/app/lang/{lang}")
async def switch_language(request: Request, lang: str) -> Response:
    """The language switch: remembered in a cookie for a year."""
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE, lang, max_age=LANG_COOKIE_SECONDS, path="/", samesite="lax"
        )
    return response
