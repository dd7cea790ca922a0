"""Who is looking at a page: the session cookie's actor, and the checks the API's read
routes make, asked of the same guard (its cache, its audited refusals)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ghaf.access.guard import RequestGuard, source_of
from ghaf.access.web_sessions import WebSession, actor_of, session_cookie
from ghaf.errors import NotFoundError, PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.identity import Actor


@dataclass(frozen=True)
class Viewer:
    """A signed-in person: the actor its session proves, and the server's guard."""

    actor: Actor
    session: WebSession
    guard: RequestGuard
    source: str | None

    @property
    def key(self) -> str:
        return f"ui-session:{self.session.sid}"

    @property
    def platform(self) -> Platform:
        return self.guard.platform

    async def authorize(self, action: str, resource: str, project: str) -> None:
        """Allow the read ``action`` or refuse it (audited), as a read route does.

        Raises:
            PermissionDeniedError: the policy refuses.
        """
        await self.guard.aauthorize(
            self.key, self.actor, action, resource, project, source=self.source
        )

    async def authorize_hidden(
        self, action: str, resource: str, project: str, *, missing: str, hint: str
    ) -> None:
        """:meth:`authorize`, a refusal reading as ``missing`` (names of other projects do
        not leak).

        Raises:
            NotFoundError: the viewer may not read it.
        """
        try:
            await self.authorize(action, resource, project)
        except PermissionDeniedError as exc:
            raise NotFoundError(missing, hint=hint) from exc

    def may(self, action: str, project: str) -> bool:
        """Whether the viewer may do ``action`` in ``project`` (to offer a button or not);
        asking is not an attempt, so a no is not audited. The server decides again when
        the button is pressed."""
        if self.guard.is_allowed(self.key, action, project):
            return True
        try:
            self.platform.spine.authorizer.authorize(
                self.actor, action, f"project:{project}", project
            )
        except PermissionDeniedError:
            return False
        return True

    def readable(self, action: str, projects: Iterable[str]) -> list[str]:
        """The projects among ``projects`` where the viewer may do ``action``."""
        return [project for project in sorted(set(projects)) if self.may(action, project)]


async def viewer(request: Request) -> Viewer | None:
    """The signed-in viewer of ``request``; None when its session is missing or over."""
    guard: RequestGuard = request.app.state.guard
    session = session_cookie(request.cookies, guard.platform.settings)
    if session is None:
        return None
    source = source_of(request.client)
    try:
        actor = await run_in_threadpool(actor_of, guard.platform, session, source)
    except PermissionDeniedError:
        return None
    request.state.principal = actor.name
    return Viewer(actor, session, guard, source)
