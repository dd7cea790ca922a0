"""What a gateway in front of the API would do, done by the server itself.

Request ids (a client's ``X-Request-ID`` when well formed, else a new one) are echoed in
every response and bound to every log line; responses carry security headers; request
bodies are limited in size before they are read; one JSON access-log line per request
(method, path, status, duration, principal, request id) goes to the log; CORS is closed
(no cross-origin headers are ever sent). Per-principal rate limits are in
:class:`RateLimiter`, applied once the caller is proven (:mod:`ghaf.server.auth`).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ghaf.logs import bind_ids, get_logger, new_id
from ghaf.server.streams import DIGEST_SIZE

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_access = get_logger("ghaf.access")
IN_PROCESS = "ghaf.in_process"
"""ASGI scope key the embedded client's transport sets (:mod:`ghaf.client.local`): its
requests never cross a network, so they write no access log line (on an SDK user's
stdout); the audit log still records every governed action."""

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
"""Sent with every response: an API answer is never sniffed, framed or cached."""
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self' https://cdn.jsdelivr.net 'unsafe-inline'; "
    b"style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'",
)
_UI_CSP = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
)
"""The web UI's pages (``/ui/``): its own scripts and styles only, no inline script."""


def request_id_of(scope: Scope) -> str:
    """The client's well-formed ``X-Request-ID``, else a new id."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text = str(value.decode("latin-1"))
            if _REQUEST_ID.match(text):
                return text
    return new_id()


class Gateway:
    """ASGI middleware: request ids, body-size limit, security headers, access log.

    ``artifacts``: the paths whose bodies are artifacts (one file each, streamed) and
    their own, larger limit; every other request is held to ``max_body``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        tls: bool,
        artifacts: tuple[re.Pattern[str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.tls = tls
        self.artifacts = artifacts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        docs = scope["path"] in ("/docs", "/redoc")
        page_csp = _DOCS_CSP if docs else _UI_CSP if scope["path"].startswith("/ui") else None
        limit = self.max_body
        slack = 0  # bytes a body may carry beyond the limit it is told of
        if self.artifacts is not None and self.artifacts[0].match(scope["path"]):
            limit = self.artifacts[1]
            slack = DIGEST_SIZE  # the digest an upload may end with (x-ghaf-sha256: trailing)

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k not in (b"x-request-id", b"access-control-allow-origin")
                ]
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(
                    page_csp if page_csp and k == b"content-security-policy" else (k, v)
                    for k, v in SECURITY_HEADERS
                )
                if self.tls:
                    headers.append(_HSTS)
                message = {**message, "headers": headers}
            await send(message)

        refused = False  # a chunked body crossed the limit: the 413 is sent, the app muted
        seen = 0

        async def limited() -> Message:
            nonlocal refused, seen
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit + slack:
                refused = True
                await _too_large(send_with_headers, request_id, None, limit)
                return {"type": "http.disconnect"}  # the app stops reading and answers nobody
            return message

        async def send_app(message: Message) -> None:
            if not refused:
                await send_with_headers(message)

        with bind_ids(request_id=request_id):
            try:
                declared = _declared_length(scope)
                if declared is not None and declared > limit + slack:
                    await _too_large(send_with_headers, request_id, declared, limit)
                    return
                await self.app(scope, limited, send_app)
            except Exception:
                if not refused:  # after a refusal the app's complaint about it is moot
                    raise
            finally:
                if not scope.get(IN_PROCESS):
                    _access.info(
                        "request",
                        method=scope["method"],
                        path=scope["path"],
                        status=status,
                        ms=round((time.perf_counter() - started) * 1000, 2),
                        principal=state.get("principal"),
                        client=scope["client"][0] if scope.get("client") else None,
                    )


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def _too_large(send: Send, request_id: str, size: int | None, limit: int) -> None:
    what = "request body" if size is None else f"request body of {size} bytes"
    title = f"{what} exceeds the limit of {limit} bytes"
    body = orjson.dumps(
        {
            "type": "https://ghaf.dev/problems/request-too-large",
            "title": title,
            "status": 413,
            "detail": title,
            "hint": "send less per request (upload artifacts through the artifact routes)",
            "request_id": request_id,
        }
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """A token bucket per principal: ``rate`` requests a second, bursts up to ``burst``.

    Each server process keeps its own buckets: with N workers a principal may reach N
    times the rate at most (the operator divides the budget by the worker count).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        size: int = 10_000,
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._now = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._size = size

    def take(self, principal: str) -> float | None:
        """Spend one token of ``principal``'s bucket: None when allowed, else the seconds
        until a token is there (``Retry-After``)."""
        if self.rate <= 0:
            return None
        now = self._now()
        tokens, then = self._buckets.pop(principal, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[principal] = (tokens, now)
        if len(self._buckets) > self._size:
            self._buckets.popitem(last=False)
        return None if allowed else (1.0 - tokens) / self.rate
