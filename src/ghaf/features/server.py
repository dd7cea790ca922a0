"""The feature server: a raw ASGI app for online features (orjson, no framework overhead).

Every route but ``/health`` and ``/health/ready`` needs a bearer credential (``/metrics``
too unless ``metrics_public``); each read is authorized as ``features.read`` (or
``features.read_pii`` for a sensitive view, audited as allowed) on every view it
touches. Bodies are capped in size and entity rows, and checked before the store sees
them (:mod:`ghaf.features.validation`).
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from ghaf.access.guard import RequestGuard, source_of
from ghaf.asgi import read_body
from ghaf.errors import (
    GhafError,
    InvalidInputError,
    PermissionDeniedError,
)
from ghaf.features.classification import view_project, view_read_action
from ghaf.features.online import OnlineReader
from ghaf.features.registry import cache_epoch, resolve
from ghaf.features.validation import MAX_ENTITIES, parse_request
from ghaf.health import TIMEOUT_S, BackendHealth
from ghaf.http_status import http_status_for
from ghaf.logs import get_logger
from ghaf.settings import TlsSettings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

MAX_BODY_BYTES = 4 << 20
"""Default cap on a request body (4 MiB: 10,000 ids of ~400 bytes each)."""
VIEWS_TTL = 60.0
"""Seconds a request's (view, action) list is reused; definitions applied by another
process are seen after at most this long (same-process applies at once)."""
_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0)
_JSON = [(b"content-type", b"application/json")]
_CHALLENGE = (b"www-authenticate", b'Bearer error="invalid_token"')
_log = get_logger(__name__)
READ = "features.read"
HEALTH_PATHS = frozenset({"/health", "/health/ready"})
"""The only paths that answer without credentials (and ``/metrics`` if made public)."""
LIVENESS_TIMEOUT_S = 0.5
"""``/health`` reports the backends only as far as they answer in this time: a liveness
probe must not wait on (or fail because of) a backend."""
_Views = tuple[tuple[str, str, str], ...]
"""(view name, read action, project) for each view a request touches."""


class Metrics:
    """Request counters and a latency histogram in Prometheus text format."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, int], int] = {}
        self.buckets = [0] * len(_BUCKETS)
        self.count = 0
        self.total = 0.0
        self.entities = 0

    def observe(self, path: str, status: int, seconds: float, entities: int) -> None:
        key = (path, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        self.count += 1
        self.total += seconds
        self.entities += entities
        for i, bound in enumerate(_BUCKETS):
            if seconds <= bound:
                self.buckets[i] += 1

    def render(self) -> bytes:
        lines = ["# TYPE ghaf_feature_requests_total counter"]
        for (path, status), n in sorted(self.requests.items()):
            lines.append(f'ghaf_feature_requests_total{{path="{path}",status="{status}"}} {n}')
        lines.append("# TYPE ghaf_feature_entities_total counter")
        lines.append(f"ghaf_feature_entities_total {self.entities}")
        lines.append("# TYPE ghaf_feature_request_seconds histogram")
        for bound, n in zip(_BUCKETS, self.buckets, strict=True):
            lines.append(f'ghaf_feature_request_seconds_bucket{{le="{bound}"}} {n}')
        lines.append(f'ghaf_feature_request_seconds_bucket{{le="+Inf"}} {self.count}')
        lines.append(f"ghaf_feature_request_seconds_sum {self.total}")
        lines.append(f"ghaf_feature_request_seconds_count {self.count}")
        return ("\n".join(lines) + "\n").encode()


_BODY_FIX = "send fewer entities per request, or start the server with --max-body-mb"


class FeatureServer:
    """ASGI app: ``POST /get-online-features``, ``GET /health`` (and ``/health/ready``),
    ``GET /metrics``.

    The request body is ``{"features": [...] | "feature_service": NAME, "entities":
    {key: [values...]}, "full_feature_names": bool}``; the answer is
    ``{"features": {name: [...]}, "age_seconds": {view: [...]}}``. Without a ``guard``
    (``--insecure-dev`` on loopback) every request is served anonymously.
    """

    def __init__(
        self,
        reader: OnlineReader,
        *,
        guard: RequestGuard | None = None,
        metrics_public: bool = False,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_entities: int = MAX_ENTITIES,
    ) -> None:
        self.reader = reader
        self.guard = guard
        self.metrics_public = metrics_public
        self.max_body_bytes = max_body_bytes
        self.max_entities = max_entities
        self.metrics = Metrics()
        self.backends = BackendHealth({"online_store": reader.store})
        self._views: dict[Any, tuple[int, float, _Views]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path in HEALTH_PATHS:
            await self._health(send, ready=path == "/health/ready")
            return
        started = time.perf_counter()
        status, payload, entities = await self._route(scope, receive, path)
        metrics = status == 200 and path == "/metrics"
        content_type = b"text/plain; version=0.0.4" if metrics else None
        headers = [_CHALLENGE] if status == 401 else []
        await _respond(send, status, payload, content_type, headers)
        if path == "/get-online-features":
            self.metrics.observe(path, status, time.perf_counter() - started, entities)

    async def _health(self, send: Send, *, ready: bool) -> None:
        """``/health`` (liveness: 200 while the process serves, with the backends' state)
        and ``/health/ready`` (503 with the reasons while the online store is down)."""
        if not self.backends:  # an embedded store lives and dies with the process
            await _respond(
                send, 200, b'{"status":"ok","ready":true}' if ready else b'{"status":"ok"}'
            )
            return
        readiness = await self.backends.acheck(TIMEOUT_S if ready else LIVENESS_TIMEOUT_S)
        doc = {"status": "ok" if readiness.ready else "degraded", **readiness.to_json()}
        status = 503 if ready and not readiness.ready else 200
        await _respond(send, status, orjson.dumps(doc))

    async def _route(self, scope: Scope, receive: Receive, path: str) -> tuple[int, bytes, int]:
        try:
            caller = None
            guard = self.guard
            if guard is not None and not (path == "/metrics" and self.metrics_public):
                key, actor = guard.cached_actor(scope["headers"])
                source = source_of(scope.get("client"))
                if actor is None:
                    try:
                        key, actor = await guard.aauthenticate(scope["headers"], source)
                    except PermissionDeniedError as exc:  # no or refused credential: 401
                        return 401, _error(exc), 0
                caller = (key, actor, source)
            if path == "/metrics" and scope["method"] in ("GET", "HEAD"):
                if caller is not None:
                    await self._authorize(caller, "monitoring.read", "metrics:feature-server")
                return 200, self.metrics.render(), 0
            if path != "/get-online-features" or scope["method"] != "POST":
                return 404, b'{"error":"not found"}', 0
            body = await read_body(scope, receive, self.max_body_bytes, fix=_BODY_FIX)
            return await self._answer(body, caller)
        except GhafError as exc:
            return http_status_for(exc), _error(exc), 0
        except Exception as exc:  # noqa: BLE001 - a client never sees a traceback
            _log.error("feature request failed", error=f"{type(exc).__name__}: {exc}")
            return 500, b'{"error":"internal error; see the server log"}', 0

    async def _authorize(
        self,
        caller: tuple[str, Any, str | None],
        action: str,
        resource: str,
        project: str | None = None,
    ) -> None:
        guard = self.guard
        assert guard is not None  # nosec B101
        key, actor, source = caller
        project = project or guard.default_project
        pii = action.endswith("_pii")  # audited on every read: never answered from the cache
        if not pii and guard.is_allowed(key, action, project):
            return
        await guard.aauthorize(
            key, actor, action, resource, project, audit_allowed=pii, source=source
        )

    async def _answer(
        self, body: bytes, caller: tuple[str, Any, str | None] | None
    ) -> tuple[int, bytes, int]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInputError(
                f"request body is not JSON: {exc}", hint="send a JSON object"
            ) from exc
        request = parse_request(doc, max_entities=self.max_entities)
        guard = self.guard
        if caller is not None and guard is not None:
            views = self._cached_views(request.features) or await self._views_of(request.features)
            for view, action, project in views:
                if action == READ and guard.is_allowed(caller[0], action, project):
                    continue  # the hot path: an allowed decision of the last few seconds
                await self._authorize(caller, action, f"feature_view:{view}", project)
        result = self.reader.get_online_features(
            request.entities, request.features, full_feature_names=request.full_feature_names
        )
        payload = orjson.dumps(result.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY)
        return 200, payload, request.rows

    def _cached_views(self, features: Sequence[str] | str) -> _Views:
        key = features if isinstance(features, str) else tuple(features)
        cached = self._views.get(key)
        if cached is not None and cached[0] == cache_epoch() and cached[1] > time.monotonic():
            return cached[2]
        return ()

    async def _views_of(self, features: Sequence[str] | str) -> _Views:
        """The views (and how to authorize each) that ``features`` read; cached briefly."""
        key = features if isinstance(features, str) else tuple(features)
        epoch, now = cache_epoch(), time.monotonic()
        views = await asyncio.to_thread(self._classify, features)
        if len(self._views) >= 1024:
            self._views.clear()
        self._views[key] = (epoch, now + VIEWS_TTL, views)
        return views

    def _classify(self, features: Sequence[str] | str) -> _Views:
        platform = self.reader.platform
        selections, _ = resolve(platform, features)
        return tuple(
            (
                s.view.name,
                view_read_action(platform, s.view, s.version),
                view_project(platform, s.view),
            )
            for s in selections
        )


def _error(exc: GhafError) -> bytes:
    return orjson.dumps({"error": exc.headline, "hint": exc.hint})


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None = None,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = _JSON if content_type is None else [(b"content-type", content_type)]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, *(extra or ()), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve(
    app: FeatureServer, *, host: str = "127.0.0.1", port: int = 6566, tls: TlsSettings | None = None
) -> None:
    """Run ``app`` on uvicorn (uvloop, httptools), one process, no worker recycling.

    It listens with ``ghaf.security.tls``: TLS 1.2+ (and mTLS) when a certificate is
    configured; plain HTTP only on loopback or when ``tls.allow_plain_http`` is set.
    """
    from ghaf.security.tls import effective_tls, uvicorn_server

    server = uvicorn_server(
        app,
        effective_tls(tls or TlsSettings(), host),
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        limit_max_requests=None,
    )
    # Server.run, not asyncio.run(server.serve()): only run() applies the uvloop factory.
    gc.collect()
    gc.freeze()  # the loaded heap out of the collector's way (full collections cost ~200 ms)
    server.run()
