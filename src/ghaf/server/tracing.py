"""OpenTelemetry traces of the control plane, when ``otel_endpoint`` names a collector.

One server span per request, continuing the caller's W3C ``traceparent`` when it sends
one, named by method and route template and carrying the status, the principal and the
request id; spans leave in batches over OTLP/HTTP. Unset (the default), the SDK is not
even imported.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ghaf.server.routing import ROUTES

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@functools.cache
def _templates() -> tuple[tuple[str, re.Pattern[str], str], ...]:
    from starlette.routing import compile_path

    return tuple((r.method, compile_path(r.path)[0], r.path) for r in ROUTES)


def route_template(method: str, path: str) -> str | None:
    """The declared route ``path`` matches (``/api/v1/runs/{run_id}``), for span names
    that group requests rather than one name per id."""
    for route_method, pattern, template in _templates():
        if route_method == method and pattern.match(path):
            return template
    return None


def tracer_provider(endpoint: str, *, service: str = "ghaf-server") -> TracerProvider:
    """A provider exporting to the OTLP/HTTP collector at ``endpoint`` (``/v1/traces`` added)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    return provider


class Tracing:
    """ASGI middleware: a server span around each HTTP request."""

    def __init__(self, app: ASGIApp, provider: TracerProvider) -> None:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.app = app
        self.provider = provider
        self.tracer = provider.get_tracer("ghaf.server")
        self.propagator = TraceContextTextMapPropagator()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry.trace import SpanKind, StatusCode

        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        context = self.propagator.extract(carrier)
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", context=context, kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                template = route_template(scope["method"], scope["path"])
                if template:
                    span.update_name(f"{scope['method']} {template}")
                    span.set_attribute("http.route", template)
                state = scope.get("state", {})
                span.set_attribute("http.request.method", scope["method"])
                span.set_attribute("url.path", scope["path"])
                span.set_attribute("http.response.status_code", status)
                if state.get("request_id"):
                    span.set_attribute("ghaf.request_id", state["request_id"])
                if state.get("principal"):
                    span.set_attribute("enduser.id", state["principal"])
                if status >= 500:
                    span.set_status(StatusCode.ERROR)
