"""Mount the UI on the control plane's app: its pages, sign-in routes and static assets."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from ghaf.ui import login, pages, pages_data, pages_ops

STATIC = "/ui/static"


def install(app: FastAPI) -> None:
    """Serve the UI under ``/ui/`` (no route of it writes but sign-in and sign-out)."""
    app.include_router(login.router)
    app.include_router(pages.router)
    app.include_router(pages_data.router)
    app.include_router(pages_ops.router)
    app.mount(STATIC, StaticFiles(packages=[("ghaf.ui", "static")]), name="ui_static")
