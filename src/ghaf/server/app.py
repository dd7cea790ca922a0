"""The control plane's ASGI app: the gateway, problem+json errors, every resource's routes."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.responses import JSONResponse

from ghaf.access.guard import RequestGuard
from ghaf.health import BackendHealth
from ghaf.platform import Platform
from ghaf.server import problems
from ghaf.server.gateway import Gateway, RateLimiter
from ghaf.server.live import LiveLoopThread
from ghaf.server.routes import (
    access,
    artifacts,
    audit,
    backups,
    compliance,
    cost,
    data,
    experiments,
    features,
    governance,
    grants,
    incidents,
    monitors,
    operations,
    pipelines,
    privacy,
    projects,
    registry,
    retraining,
    scheduling,
    shipping,
    slo,
    tracking,
    uploads,
)
from ghaf.server.routing import API_PREFIX
from ghaf.server.tracing import Tracing, tracer_provider
from ghaf.ui import install as install_ui

VERSION = "1"
LOGIN_HINTS = "/.well-known/ghaf-login"
"""Where a client learns how to log a person in to this server (OIDC device flow)."""


@dataclass(frozen=True)
class ServerOptions:
    """How the control plane answers: limits and the transport it is reached over."""

    max_body: int = 64 * 1024 * 1024
    """Largest request body, in bytes (artifacts travel through their own routes)."""
    max_artifact_bytes: int = 16 * 1024**3
    """Largest body of an artifact upload (one file, streamed to disk), in bytes."""
    rate: float = 200.0
    """Requests a second each principal may send (per worker process); 0: no limit."""
    burst: int = 400
    """Requests a principal may send at once before the rate applies."""
    tls: bool = False
    """Whether clients reach it over TLS (adds Strict-Transport-Security)."""
    guard_ttl: float = 5.0
    """Seconds a proven credential and an allowed decision are reused."""
    threads: int = 8
    """Requests a worker serves at once (its service calls run on this many threads):
    below the metadata pool's 10 connections, so a request that needs a second
    connection never waits on requests that each hold one."""


def create_app(platform: Platform, options: ServerOptions | None = None) -> Any:
    """The control plane for ``platform``, wrapped in the gateway (an ASGI app)."""
    options = options or ServerOptions()
    health = BackendHealth({"events": platform.events} if _has_events(platform) else {})

    endpoint = platform.settings.otel_endpoint
    provider = tracer_provider(endpoint) if endpoint else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = options.threads
        server = platform.settings.server
        loop = LiveLoopThread(platform, server.live_loop_every_s) if server.live_loop else None
        app.state.live_loop = loop.start() if loop is not None else None
        yield
        if loop is not None:
            loop.stop()
        if provider is not None:
            provider.shutdown()  # the last spans leave before the process does
        platform.close()

    app = FastAPI(
        title="Ghaf control plane",
        version=VERSION,
        description="Every resource of a Ghaf home, governed: each route names the action "
        "it performs (x-ghaf-action); writes are authorized, done and audited by the spine.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.guard = RequestGuard(platform, ttl=options.guard_ttl)
    app.state.limiter = RateLimiter(options.rate, options.burst)
    app.state.max_artifact_bytes = options.max_artifact_bytes
    problems.install(app)
    for module in (
        projects,
        tracking,
        registry,
        artifacts,
        uploads,
        grants,
        access,
        audit,
        data,
        features,
        pipelines,
        operations,
        governance,
        incidents,
        slo,
        monitors,
        experiments,
        retraining,
        cost,
        backups,
        scheduling,
        shipping,
        privacy,
        compliance,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    install_ui(app)  # the web UI under /ui/: it reads like the read routes, writes through them

    @app.get("/health", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(LOGIN_HINTS, include_in_schema=False)
    async def login_hints() -> JSONResponse:
        """What ``ghaf login --server URL --device`` needs to log a person in (public: the
        issuer and the public client id, no secret)."""
        identity = platform.settings.identity
        if not (identity.issuer and identity.client_id):
            return JSONResponse(
                {
                    "type": "/problems/not-found",
                    "title": "this server takes Ghaf tokens only (no OIDC issuer is set)",
                    "status": 404,
                    "hint": "ghaf login --server URL --token TOKEN",
                },
                404,
                media_type="application/problem+json",
            )
        return JSONResponse(
            {
                "issuer": identity.issuer,
                "client_id": identity.client_id,
                "audience": identity.audience,
            }
        )

    @app.get("/health/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        readiness = await health.acheck()
        document = readiness.to_json()
        live = getattr(app.state, "live_loop", None)
        if live is not None:  # this worker's view: it runs the loop, or waits for the lock
            document["live_loop"] = dict(live.state)
        return JSONResponse(document, 200 if readiness.ready else 503)

    app.openapi = functools.partial(_openapi, app)  # type: ignore[method-assign]
    return Gateway(
        app if provider is None else Tracing(app, provider),
        max_body=options.max_body,
        tls=options.tls,
        artifacts=(artifacts.UPLOAD_PATH, options.max_artifact_bytes),
    )


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "hint": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
"""RFC 9457 problem details, as every refusal is answered."""
REFUSALS = {
    "400": "Invalid input: `title` and `errors` name the field",
    "401": "No credential, or one that proves nobody",
    "403": "The caller may not do this (audited)",
    "404": "No such thing, or one the caller may not see",
    "409": "It exists already, or conflicts with what is stored",
    "413": "The request body is over the limit",
    "429": "Over the caller's rate: retry after `Retry-After` seconds",
    "503": "A backend is unavailable: retry",
}


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document with what the server really answers: problem+json refusals
    (400, not FastAPI's 422, for invalid input) and bearer authentication."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    document["security"] = [{"bearer": []}]
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    for path_item in document["paths"].values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, description in REFUSALS.items():
                responses.setdefault(
                    status, {"description": description, "content": problem_content}
                )
    app.openapi_schema = document
    return document


def _has_events(platform: Platform) -> bool:
    return not platform.settings.event_bus_url.startswith("memory")
