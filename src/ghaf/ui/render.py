"""Jinja2 pages (autoescaped) and the redirects and errors every page shares."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from ghaf.errors import GhafError
from ghaf.http_status import http_status_for

NAV = (
    ("runs", "Runs", "/ui/runs"),
    ("models", "Models", "/ui/models"),
    ("data", "Data", "/ui/data"),
    ("features", "Features", "/ui/features"),
    ("deployments", "Deployments", "/ui/deployments"),
    ("monitoring", "Monitoring", "/ui/monitoring"),
    ("incidents", "Incidents", "/ui/incidents"),
    ("audit", "Audit", "/ui/audit"),
    ("cost", "Cost", "/ui/cost"),
)
"""The navigation, in order; data, deployments and monitoring pages slot in here."""


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("ghaf.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["number"] = _number
    env.filters["urlpart"] = lambda value: quote(str(value), safe="")
    env.globals["nav"] = NAV
    return env


def page(
    request: Request, template: str, context: dict[str, Any], *, status: int = 200
) -> HTMLResponse:
    """Render ``template`` with the request and ``context``."""
    html = environment().get_template(template).render(request=request, **context)
    return HTMLResponse(html, status)


def is_htmx(request: Request) -> bool:
    """A partial update asked for by htmx (``HX-Request``), not a whole page."""
    return request.headers.get("hx-request") == "true"


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a UI path of this server only (no open redirect)."""
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/runs"


def to_login(request: Request) -> RedirectResponse:
    """Send a browser without a session to the sign-in page, back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(here, safe='')}", 303)


def error_page(request: Request, error: GhafError, context: dict[str, Any]) -> HTMLResponse:
    """A refusal or failure as a page: its headline and hint, with the status the API uses."""
    status = http_status_for(error)
    return page(
        request,
        "error.html",
        {**context, "status": status, "headline": error.headline, "hint": error.hint},
        status=status,
    )
