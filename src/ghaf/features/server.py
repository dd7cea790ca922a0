"""The feature server: a raw ASGI app for online features (orjson, no framework overhead)."""

from __future__ import annotations

import gc
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from ghaf.errors import GhafError, InvalidInputError, NotFoundError, PermissionDeniedError
from ghaf.features.online import OnlineReader
from ghaf.settings import TlsSettings

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AuthHook = Callable[[Mapping[str, str]], object]
"""Gets the request headers; returns an identity or raises PermissionDeniedError."""

_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 1.0)
_STATUS = {InvalidInputError: 400, PermissionDeniedError: 403, NotFoundError: 404}
_JSON = [(b"content-type", b"application/json")]


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


class FeatureServer:
    """ASGI app: ``POST /get-online-features``, ``GET /health``, ``GET /metrics``.

    The request body is ``{"features": [...] | "feature_service": NAME, "entities":
    {key: [values...]}, "full_feature_names": bool}``; the answer is
    ``{"features": {name: [...]}, "age_seconds": {view: [...]}}``.
    """

    def __init__(self, reader: OnlineReader, *, auth: AuthHook | None = None) -> None:
        self.reader = reader
        self.auth = auth
        self.metrics = Metrics()

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
        if path == "/health":
            await _respond(send, 200, b'{"status":"ok"}')
            return
        if path == "/metrics":
            await _respond(send, 200, self.metrics.render(), b"text/plain; version=0.0.4")
            return
        if path != "/get-online-features" or scope["method"] != "POST":
            await _respond(send, 404, b'{"error":"not found"}')
            return
        started = time.perf_counter()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload, entities = self._answer(scope, body)
        await _respond(send, status, payload)
        self.metrics.observe(path, status, time.perf_counter() - started, entities)

    def _answer(self, scope: Scope, body: bytes) -> tuple[int, bytes, int]:
        try:
            if self.auth is not None:
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                try:
                    self.auth(headers)
                except PermissionDeniedError as exc:  # no or refused credential
                    body = orjson.dumps({"error": exc.headline, "hint": exc.hint})
                    return 401, body, 0
            try:
                request = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise InvalidInputError(f"request body is not JSON: {exc}") from exc
            if not isinstance(request, dict):
                raise InvalidInputError("request body must be a JSON object")
            entities = request.get("entities")
            if not isinstance(entities, dict) or not entities:
                raise InvalidInputError(
                    "field 'entities' must be an object of key -> list of values",
                    hint='send {"entities": {"customer_id": [1, 2]}, "features": [...]}',
                )
            features = request.get("feature_service") or request.get("features")
            if not features:
                raise InvalidInputError("field 'features' or 'feature_service' is required")
            result = self.reader.get_online_features(
                entities, features, full_feature_names=bool(request.get("full_feature_names"))
            )
            n = len(next(iter(entities.values())))
            return 200, orjson.dumps(result.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY), n
        except GhafError as exc:
            status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
            return status, orjson.dumps({"error": exc.headline, "hint": exc.hint}), 0


async def _respond(send: Send, status: int, body: bytes, content_type: bytes | None = None) -> None:
    headers = _JSON if content_type is None else [(b"content-type", content_type)]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
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
