"""One authenticated HTTP session with the control plane; problems become Ghaf's errors.

A refusal arrives as problem+json; the client raises the same :class:`~ghaf.errors.GhafError`
subclass embedded mode raises for it (so scripts, the CLI's exit codes and tests do not
care which mode they run in). 429 and 503 are retried after their ``Retry-After``, a
bounded number of times.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import orjson

from ghaf.errors import (
    AlreadyExistsError,
    BackendUnavailableError,
    ConfigError,
    GhafError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
    RequestTooLargeError,
)

API = "/api/v1"
RESUMABLE_ABOVE = 2 * 1024**3
"""Bytes from which a file is uploaded in resumable pieces rather than one request."""
RETRIES = 5
"""Tries of a request answered 429 or 503 (waiting its Retry-After, at most 30 s each)."""
_KINDS: dict[str, type[GhafError]] = {
    "not-found": NotFoundError,
    "already-exists": AlreadyExistsError,
    "invalid-input": InvalidInputError,
    "request-too-large": RequestTooLargeError,
    "permission-denied": PermissionDeniedError,
    "unauthenticated": PermissionDeniedError,
    "policy-violation": PolicyViolationError,
    "integrity": IntegrityError,
    "backend-unavailable": BackendUnavailableError,
    "rate-limited": BackendUnavailableError,
    "config": ConfigError,
}
_BY_STATUS: dict[int, type[GhafError]] = {
    400: InvalidInputError,
    401: PermissionDeniedError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: AlreadyExistsError,
    413: RequestTooLargeError,
    429: BackendUnavailableError,
    503: BackendUnavailableError,
}


def error_from(response: httpx.Response) -> GhafError:
    """The Ghaf error a problem+json response stands for."""
    try:
        body: dict[str, Any] = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = {}
    title = str(body.get("title") or f"the server answered {response.status_code}")
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    cls = _KINDS.get(kind) or _BY_STATUS.get(response.status_code, GhafError)
    hint = body.get("hint")
    request_id = body.get("request_id")
    if response.status_code >= 500 and request_id:
        hint = f"{hint + '; ' if hint else ''}request id {request_id}"
    return cls(title, hint=str(hint) if hint else None)


class Session:
    """A session with one server as one caller (``token``: a Ghaf token or an OIDC JWT).

    The resource calls live in one mixin per area (``ghaf.client.<area>``);
    :class:`~ghaf.client.http.Client` puts them together."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        verify: Any = True,
        resumable_above: int = RESUMABLE_ABOVE,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Args:
        token: the bearer credential; None only over a ``transport`` that proves the
            caller itself (the embedded one, :mod:`ghaf.client.local`).
        resumable_above: files of this many bytes or more are uploaded in resumable
            pieces (a failure costs one piece, not the file; the server stages them).
        transport: how requests reach the app (default: the network).
        """
        self.resumable_above = resumable_above
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"server URL {url!r} is not http(s)://", hint="GHAF_URL=https://...")
        self.url = url.rstrip("/")
        headers = {"user-agent": "ghaf-client/1"}
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url + API,
            headers=headers,
            timeout=timeout,
            verify=verify,
            transport=transport,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send a request; the decoded JSON answer, or the error it stands for.

        Raises:
            GhafError: the subclass the server's problem names.
            BackendUnavailableError: the server cannot be reached.
        """
        content = None if json is None else orjson.dumps(json)
        headers = {"content-type": "application/json"} if content is not None else None
        response = self.send(method, path, content=content, params=params, headers=headers)
        if response.headers.get("content-type", "").startswith("application/x-ndjson"):
            return [orjson.loads(line) for line in response.content.splitlines() if line]
        return orjson.loads(response.content) if response.content else None

    def send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | Callable[[], Iterator[bytes]] | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send a request, retried after 429 and 503; the response, or the error it stands for.

        Args:
            content: the body: bytes, or a function that makes a fresh stream of chunks
                for each try.
            stream: leave the body unread (read it with ``iter_bytes``, then close it).

        Raises:
            GhafError: the subclass the server's problem names.
            BackendUnavailableError: the server cannot be reached.
        """
        for attempt in range(RETRIES):
            body = content() if callable(content) else content
            request = self._http.build_request(
                method, path, content=body, params=params, headers=headers
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if attempt == RETRIES - 1:
                    raise BackendUnavailableError(
                        f"cannot reach {self.url}: {exc}", hint="check GHAF_URL and the network"
                    ) from exc
                time.sleep(min(0.2 * 2**attempt, 5.0))
                continue
            if response.status_code in (429, 503) and attempt < RETRIES - 1:
                response.close()
                time.sleep(_retry_after(response))
                continue
            if response.status_code >= 400:
                response.read()
                response.close()
                raise error_from(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, /, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str, /, **params: Any) -> Any:
        return self.request(
            "DELETE", path, params={k: v for k, v in params.items() if v is not None}
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), 0.05), 30.0)
    except ValueError:
        return 1.0
