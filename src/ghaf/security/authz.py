"""Authorization: the ``Authorizer`` Protocol and the embedded default (home admins only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ghaf.errors import PermissionDeniedError
from ghaf.security.identity import Actor


class Authorizer(Protocol):
    """Decides whether ``actor`` may perform ``action`` on ``resource`` in ``project``."""

    def authorize(self, actor: Actor, action: str, resource: str, project: str) -> None:
        """Return if allowed; raise ``PermissionDeniedError`` naming what is missing."""
        ...


class HomeAdminAuthorizer:
    """Embedded mode: the home's admin principals may do everything, nobody else anything."""

    def __init__(self, admins: Iterable[str]) -> None:
        self._admins = frozenset(admins)

    def authorize(self, actor: Actor, action: str, resource: str, project: str) -> None:
        if actor.name not in self._admins:
            raise PermissionDeniedError(
                f"{actor.name!r} may not {action} {resource} in project {project!r}",
                hint="ask a home admin to grant you access",
            )
