"""The web app for the people who work the orders, served by the API's process under `/app/`
(`mount`, called once by `api.main`). Pages are server-rendered (Jinja2) with htmx for partial
updates and Pico CSS: files from the npm registry (web/package.json, its committed lockfile,
installed by `make`), served from here; nothing is fetched from elsewhere at run time."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from web import live
from web.pages import (
    auth,
    finance,
    inbox,
    new_order,
    notifications,
    ops,
    order_actions,
    orders,
    production,
    returns,
    warehouse,
)
from web.render import render
from web.session import CsrfRefused, Forbidden, LoginRequired, signed_in

HERE = Path(__file__).parent
NODE_MODULES = HERE / "node_modules"
# The front-end packages' files the pages load, as /app/static/vendor/<name>.
VENDOR = {
    "htmx.min.js": "htmx.org/dist/htmx.min.js",
    "pico.min.css": "@picocss/pico/css/pico.min.css",
}
# new_order before orders: /app/orders/new is no order number.
PAGE_MODULES = (
    auth,
    new_order,
    orders,
    order_actions,
    inbox,
    warehouse,
    production,
    finance,
    ops,
    notifications,
    returns,
    live,
)


async def vendor_file(name: str) -> Response:
    found = VENDOR.get(name)
    if found is None or not (NODE_MODULES / found).is_file():
        return Response("Not found (run `make` to install web/node_modules)", status_code=404)
    return FileResponse(NODE_MODULES / found, headers={"Cache-Control": "max-age=3600"})


async def login_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(f"/app/login?next={target}", status_code=303)
    if request.headers.get("hx-request"):  # htmx follows a redirect in place: reload instead
        response.headers["HX-Redirect"] = "/app/login"
    return response


async def forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Forbidden)
    return render(
        request,
        "error.html",
        exc.principal,
        status_code=403,
        code=403,
        message="Your role may not use this page.",
        permission=exc.permission.value,
    )


async def csrf_refused(request: Request, exc: Exception) -> Response:
    return render(
        request,
        "error.html",
        await signed_in(request),
        status_code=403,
        code=403,
        message="The form has expired or did not come from this site. Reload the page and try again.",
        permission=None,
    )


def mount(app: FastAPI) -> None:
    """Add the web app to the API's application: pages, static files, `/` → `/app/`."""
    app.add_api_route("/app/static/vendor/{name}", vendor_file, include_in_schema=False)
    app.mount("/app/static", StaticFiles(directory=HERE / "static"), name="web-static")
    for module in PAGE_MODULES:
        app.include_router(module.router, include_in_schema=False)
    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CsrfRefused, csrf_refused)
