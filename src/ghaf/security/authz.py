"""Authorization: the ``Authorizer`` Protocol the spine consults before every operation."""

from __future__ import annotations

from typing import Protocol

from ghaf.security.identity import Actor


class Authorizer(Protocol):
    """Decides whether ``actor`` may perform ``action`` on ``resource`` in ``project``."""

    def authorize(self, actor: Actor, action: str, resource: str, project: str) -> None:
        """Return if allowed; raise ``PermissionDeniedError`` naming what is missing."""
        ...
