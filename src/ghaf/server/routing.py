"""Routes that say what they do: each declares the governed action it performs or the
read action it authorizes, and the OpenAPI document carries it (``x-ghaf-action``).

A write route's action is a governed service function's action: the route calls that
function, so the spine authorizes, acts and audits. A read route authorizes its action
for the project of what it reads before it answers. ``ROUTES`` lists them all, so a
test can hold the table to the spine's (every governed action has a route, every route
an action).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RouteSpec:
    """One route: its method and path, the action it declares, and whether it writes."""

    method: str
    path: str
    action: str
    writes: bool


ROUTES: list[RouteSpec] = []
"""Every route of the control plane, in declaration order."""

API_PREFIX = "/api/v1"
SELF = "self"
"""The action of a route that shows a proven caller only what is its own."""


class ActionRouter(APIRouter):
    """An ``APIRouter`` whose routes must declare their action."""

    def _declare(
        self, method: str, path: str, action: str, writes: bool, **kw: Any
    ) -> Callable[[F], F]:
        def decorate(fn: F) -> F:
            ROUTES.append(RouteSpec(method, API_PREFIX + path, action, writes))
            extra = {
                **kw.pop("openapi_extra", {}),
                "x-ghaf-action": action,
                "x-ghaf-writes": writes,
            }
            self.add_api_route(path, fn, methods=[method], openapi_extra=extra, **kw)
            return fn

        return decorate

    def write(self, method: str, path: str, *, action: str, **kw: Any) -> Callable[[F], F]:
        """A route that performs the governed ``action`` (through its service function)."""
        return self._declare(method, path, action, True, **kw)

    def read(self, path: str, *, action: str, **kw: Any) -> Callable[[F], F]:
        """A GET route that answers only a caller allowed ``action`` on what it reads."""
        return self._declare("GET", path, action, False, **kw)

    def own(self, path: str, **kw: Any) -> Callable[[F], F]:
        """A GET route that answers any proven caller with what is its own (``whoami``)."""
        return self._declare("GET", path, SELF, False, **kw)
