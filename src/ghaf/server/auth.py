"""Who is calling, proven per request, and what they may read.

Every route but ``/health`` and the API document needs a bearer credential (a Ghaf
token or an OIDC JWT), proven by :class:`~ghaf.access.guard.RequestGuard`, or the web
UI's session cookie (:mod:`ghaf.access.web_sessions`): a request that authenticates by
the cookie changes nothing without the session's CSRF token in ``X-CSRF-Token``, and a
cross-site request (``Sec-Fetch-Site: cross-site``) is not authenticated by it. The home's
OS owner has no special standing over HTTP: only the embedded client's in-process
transport (:mod:`ghaf.client.local`) hands the app a proven owner, in an ASGI scope key
(:data:`LOCAL_PRINCIPAL`) that no request from the network can set, and a UI session
opened with a one-time link the owner minted from its OS account (``ghaf ui login-link``)
carries it. Writes are
authorized by the spine inside the service function a route calls; reads are authorized
here, for the project that owns what is read, so a principal of project A reads nothing
of project B.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ghaf.access.guard import RequestGuard, source_of
from ghaf.access.web_sessions import (
    CSRF_HEADER,
    WebSession,
    actor_of,
    csrf_matches,
    session_cookie,
)
from ghaf.errors import BackendUnavailableError, NotFoundError, PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.server.gateway import RateLimiter
from ghaf.server.problems import RateLimitedError, UnauthenticatedError

LOCAL_PRINCIPAL = "ghaf.local_principal"
"""The ASGI scope key under which the in-process transport passes the home owner it proved
(an :class:`Actor` with a ``home-owner`` credential). A server fills a scope from the
network (method, path, headers, client address), never with this key."""


@dataclass(frozen=True)
class Caller:
    """A proven caller: the actor, the key its credential is cached under, the platform."""

    actor: Actor
    key: str
    platform: Platform
    guard: RequestGuard
    source: str | None

    def in_project(self, project: str) -> Platform:
        """The platform acting in ``project`` (a write's governed project)."""
        return self.platform.in_project(project)

    async def authorize(self, action: str, resource: str, project: str) -> None:
        """Allow the read ``action`` on ``resource`` of ``project``, or refuse (audited).

        Raises:
            PermissionDeniedError: the policy refuses (HTTP 403).
        """
        await self.guard.aauthorize(
            self.key, self.actor, action, resource, project, source=self.source
        )

    async def authorize_hidden(
        self, action: str, resource: str, project: str, *, missing: str, hint: str
    ) -> None:
        """:meth:`authorize`, but a refusal reads as ``missing`` (a 404, as for what does
        not exist), so that names in other projects do not leak; it is still audited.

        Raises:
            NotFoundError: the caller may not read it.
        """
        try:
            await self.authorize(action, resource, project)
        except PermissionDeniedError as exc:
            raise NotFoundError(missing, hint=hint) from exc

    def readable(self, action: str, projects: Iterable[str]) -> list[str]:
        """The projects among ``projects`` in which the caller may do ``action``.

        For filtering lists: asking is not an attempt, so a project left out is not
        audited as a refusal.
        """
        allowed = []
        for project in sorted(set(projects)):
            if self.guard.is_allowed(self.key, action, project):
                allowed.append(project)
                continue
            try:
                self.platform.spine.authorizer.authorize(
                    self.actor, action, f"project:{project}", project
                )
            except PermissionDeniedError:
                continue
            allowed.append(project)
        return allowed


async def caller(request: Request) -> Caller:
    """FastAPI dependency: the proven caller of ``request``, within its rate limit.

    Raises:
        UnauthenticatedError: no credential or a refused one (HTTP 401, audited).
        RateLimitedError: the caller's budget is spent (HTTP 429 with Retry-After).
    """
    state = request.app.state
    guard: RequestGuard = state.guard
    source = source_of(request.client)
    local = _local_principal(request)
    session = None
    if local is None and "authorization" not in request.headers:
        session = session_cookie(request.cookies, guard.platform.settings)
    if local is not None:
        key, actor, source = f"home-owner:{local.name}", local, local.source
    elif session is not None:
        key, actor = await _session_actor(request, guard, session, source)
    else:
        try:
            key, actor = await guard.aauthenticate(request.headers.raw, source)
        except BackendUnavailableError:
            raise
        except PermissionDeniedError as exc:
            raise UnauthenticatedError(exc.headline, hint=exc.hint) from exc
    request.state.principal = actor.name
    limiter: RateLimiter = state.limiter
    wait = limiter.take(actor.name)
    if wait is not None:
        raise RateLimitedError(
            f"{actor.name} sent more than {limiter.rate:g} requests a second",
            retry_after=wait,
            hint="slow down and retry after the Retry-After seconds",
        )
    return Caller(actor, key, guard.platform, guard, source)


SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _session_actor(
    request: Request, guard: RequestGuard, session: WebSession, source: str | None
) -> tuple[str, Actor]:
    """The actor of a UI session cookie, once the request may use it.

    Raises:
        PermissionDeniedError: a cross-site request, or a change without the session's
            CSRF token (HTTP 403, audited).
        UnauthenticatedError: the session no longer proves anybody (HTTP 401).
    """
    platform = guard.platform
    why = None
    if request.headers.get("sec-fetch-site") == "cross-site":
        why = "a cross-site request is not authenticated by the UI's session cookie"
    elif request.method not in SAFE_METHODS and not csrf_matches(
        session, request.headers.get(CSRF_HEADER)
    ):
        why = f"a change made with the UI's session cookie needs its {CSRF_HEADER} header"
    if why is not None:
        claimed = Actor(session.principal, source=source)
        await run_in_threadpool(
            platform.spine.record_denied,
            claimed,
            "auth.authenticate",
            f"session:{session.sid}",
            platform.default_project,
            why,
        )
        raise PermissionDeniedError(why, hint="use the page's own buttons, or an API token")
    try:
        actor = await run_in_threadpool(actor_of, platform, session, source)
    except PermissionDeniedError as exc:
        raise UnauthenticatedError(exc.headline, hint=exc.hint) from exc
    return f"ui-session:{session.sid}", actor


def _local_principal(request: Request) -> Actor | None:
    """The home owner the in-process transport proved, if this request came through it.

    A request that also carries a credential is not the owner's: the credential's
    principal acts (as ``ghaf --token`` on a home), so nothing is decided by precedence.
    """
    local = request.scope.get(LOCAL_PRINCIPAL)
    if not isinstance(local, Actor) or local.credential is None:
        return None
    if local.credential.kind != "home-owner" or "authorization" in request.headers:
        return None
    return local
