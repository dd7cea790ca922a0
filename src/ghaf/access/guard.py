"""Per-request authentication and authorization for Ghaf's data-plane servers.

The model server and the feature server answer thousands of requests a second; proving
a credential (a token row and its bindings, or a JWT signature and its group bindings)
and deciding a role on every one of them would put metadata queries on the hot path.
:class:`RequestGuard` keeps each proven credential and each *allowed* decision for
``ttl`` seconds (default 5): a revoked token, an unbound role or an expired credential
stops working within that time. Refusals are never cached: each one is audited.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from ghaf.access.authorize import authorize_read
from ghaf.access.http_auth import authenticate
from ghaf.errors import ConfigError
from ghaf.logs import get_logger
from ghaf.security.identity import Actor
from ghaf.security.tls import is_loopback

if TYPE_CHECKING:
    from ghaf.platform import Platform

Headers = Iterable[tuple[bytes, bytes]]
"""ASGI request headers: lower-case names and values as bytes."""

DEFAULT_TTL = 5.0
_MAX_ENTRIES = 4096
_log = get_logger(__name__)
_K = TypeVar("_K")
_V = TypeVar("_V")


class RequestGuard:
    """Authenticate ``Authorization: Bearer`` and authorize actions for one platform.

    ``authenticate``/``authorize`` are the blocking forms; the ``a``-prefixed forms
    answer from the cache on the event loop and go to a worker thread only on a miss.
    """

    def __init__(
        self,
        platform: Platform,
        *,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        self.ttl = ttl
        self._clock = clock
        self._actors: dict[str, tuple[Actor, float]] = {}
        self._allowed: dict[tuple[str, str, str], float] = {}

    @property
    def default_project(self) -> str:
        return self.platform.default_project

    # Authentication ----------------------------------------------------------------

    def cached_actor(self, headers: Headers) -> tuple[str, Actor | None]:
        """(credential key, the actor proven for it less than ``ttl`` ago or None)."""
        key = _credential_key(headers)
        found = self._actors.get(key)
        if found is not None and found[1] > self._clock():
            return key, found[0]
        return key, None

    def authenticate(self, headers: Headers, source: str | None = None) -> tuple[str, Actor]:
        """(credential key, actor) for the request's bearer credential.

        Raises:
            PermissionDeniedError: no credential or a refused one (audited; HTTP 401).
            BackendUnavailableError: the identity provider cannot be reached (HTTP 503).
        """
        key, actor = self.cached_actor(headers)
        if actor is not None:
            return key, actor
        plain = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in headers
            if name == b"authorization"
        }
        actor = authenticate(self.platform, plain, source=source)
        _remember(self._actors, key, (actor, self._clock() + self.ttl))
        return key, actor

    async def aauthenticate(self, headers: Headers, source: str | None = None) -> tuple[str, Actor]:
        """:meth:`authenticate` without blocking the event loop."""
        key, actor = self.cached_actor(headers)
        if actor is not None:
            return key, actor
        if not key:  # no Authorization header: refused at once, no I/O to wait for
            return self.authenticate(headers, source)
        return await asyncio.to_thread(self.authenticate, list(headers), source)

    # Authorization -----------------------------------------------------------------

    def is_allowed(self, key: str, action: str, project: str) -> bool:
        """Whether ``action`` in ``project`` was allowed for this credential within ``ttl``."""
        until = self._allowed.get((key, action, project))
        return until is not None and until > self._clock()

    def authorize(
        self,
        key: str,
        actor: Actor,
        action: str,
        resource: str,
        project: str,
        *,
        audit_allowed: bool = False,
        source: str | None = None,
    ) -> None:
        """Allow ``actor`` to do ``action`` on ``resource`` in ``project``, or refuse.

        ``audit_allowed`` (reads of pii) appends an ``allowed`` audit record every time,
        so it never answers from the cache.

        Raises:
            PermissionDeniedError: the policy refuses (audited as ``denied``; HTTP 403).
        """
        if not audit_allowed and self.is_allowed(key, action, project):
            return
        if source is not None and actor.source != source:
            actor = dataclasses.replace(actor, source=source)
        authorize_read(self.platform, actor, action, resource, project, audit_allowed=audit_allowed)
        _remember(self._allowed, (key, action, project), self._clock() + self.ttl)

    async def aauthorize(
        self,
        key: str,
        actor: Actor,
        action: str,
        resource: str,
        project: str,
        *,
        audit_allowed: bool = False,
        source: str | None = None,
    ) -> None:
        """:meth:`authorize` without blocking the event loop."""
        if not audit_allowed and self.is_allowed(key, action, project):
            return
        await asyncio.to_thread(
            self.authorize,
            key,
            actor,
            action,
            resource,
            project,
            audit_allowed=audit_allowed,
            source=source,
        )


def _credential_key(headers: Headers) -> str:
    """A digest of the Authorization header: the cache never holds a credential itself."""
    for name, value in headers:
        if name == b"authorization":
            return hashlib.sha256(value).hexdigest()
    return ""


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _MAX_ENTRIES:
        cache.clear()  # a burst of distinct credentials costs re-proving, never memory
    cache[key] = value


def check_insecure_dev(host: str, server: str) -> None:
    """Allow serving without authentication only on a loopback address, loudly.

    Raises:
        ConfigError: ``host`` is not a loopback address.
    """
    if not is_loopback(host):
        raise ConfigError(
            f"--insecure-dev refuses to serve on {host}: without authentication anybody "
            "who reaches the port could read everything it serves",
            hint="bind --host 127.0.0.1 for development, or drop --insecure-dev and send tokens",
        )
    _log.warning(
        "INSECURE DEV: authentication and authorization are OFF; every request is served "
        "anonymously (loopback only, for development)",
        server=server,
        host=host,
    )


def source_of(client: tuple[str, int] | list[object] | None) -> str | None:
    """``host:port`` of an ASGI ``scope["client"]`` for audit records."""
    return f"{client[0]}:{client[1]}" if client else None
