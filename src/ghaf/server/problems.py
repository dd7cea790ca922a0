"""Errors as RFC 9457 problem details: a status from the one table, a body naming the fix.

Every refusal has the same shape (``type``, ``title``, ``status``, ``detail``, ``hint``,
``request_id``; ``errors`` with the field of each invalid input), and nothing else
reaches a client: an unexpected exception is a 500 that names the request id, with the
traceback in the server's log only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ghaf.errors import GhafError
from ghaf.http_status import http_status_for
from ghaf.logs import get_logger

PROBLEM_JSON = "application/problem+json"
_log = get_logger(__name__)


class UnauthenticatedError(GhafError):
    """No credential, or one that does not prove anybody (HTTP 401)."""


class RateLimitedError(GhafError):
    """The caller sent more requests than its budget allows (HTTP 429)."""

    def __init__(self, headline: str, *, retry_after: float, hint: str | None = None) -> None:
        super().__init__(headline, hint=hint)
        self.retry_after = retry_after


def problem(
    request: Request | None,
    status: int,
    title: str,
    *,
    hint: str | None = None,
    kind: str = "about:blank",
    errors: Sequence[dict[str, Any]] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {"type": kind, "title": title, "status": status, "detail": title}
    if hint:
        body["hint"] = hint
    if errors:
        body["errors"] = list(errors)
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["request_id"] = request_id
    return Response(orjson.dumps(body), status, headers=headers, media_type=PROBLEM_JSON)


def problem_type(error: Exception) -> str:
    name = type(error).__name__.removesuffix("Error")
    return "https://ghaf.dev/problems/" + "".join(
        f"-{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name)
    )


def status_of(error: GhafError) -> int:
    """The HTTP status of ``error``: the one table, plus authentication and rate limits."""
    if isinstance(error, UnauthenticatedError):
        return 401
    if isinstance(error, RateLimitedError):
        return 429
    return http_status_for(error)


async def _ghaf_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, GhafError)  # nosec B101 - type narrowing
    status = status_of(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["www-authenticate"] = 'Bearer realm="ghaf"'
    if isinstance(error, RateLimitedError):
        headers["retry-after"] = str(max(1, round(error.retry_after + 0.5)))
    if status >= 500:
        _log.error("request failed", error=f"{type(error).__name__}: {error}")
    return problem(
        request, status, error.headline, hint=error.hint, kind=problem_type(error), headers=headers
    )


def _field(location: Sequence[Any]) -> str:
    parts = [str(p) for p in location if p != "body"] or [str(p) for p in location]
    return ".".join(parts)


async def _invalid(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)  # nosec B101 - type narrowing
    errors = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "is invalid"))}
        for e in error.errors()
    ]
    first = errors[0] if errors else {"field": "body", "message": "is invalid"}
    title = f"{first['field']}: {first['message']}"
    hint = "fix the field named; the API's OpenAPI document at /openapi.json lists every field"
    return problem(
        request,
        400,
        title,
        hint=hint,
        kind="https://ghaf.dev/problems/invalid-input",
        errors=errors,
    )


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)  # nosec B101 - type narrowing
    title = str(error.detail) if error.detail else "request refused"
    return problem(request, error.status_code, title, headers=dict(error.headers or {}))


async def _unexpected(request: Request, error: Exception) -> Response:
    _log.exception("unexpected error", error=f"{type(error).__name__}: {error}")
    return problem(
        request,
        500,
        "the server failed to answer this request",
        hint="report the request_id to the operator; the server's log holds the cause",
    )


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as a problem+json body."""
    app.add_exception_handler(GhafError, _ghaf_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
