"""People for tests: a second person acts with their own token, never through a setting.

``person(platform, "ben", ["model_approver"])`` registers the principal, binds the
roles, has the home's owner mint a token for it and returns the :class:`Actor` that
token authenticates as, exactly as ``ghaf --token`` or an HTTP server would. Use
``mint`` for the token itself (HTTP tests, ``GHAF_TOKEN``).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta

from ghaf.access.bindings import bind_role, create_principal, principal_kind
from ghaf.access.tokens import create_token, verify_token
from ghaf.errors import AlreadyExistsError
from ghaf.platform import Platform
from ghaf.security.identity import Actor


def mint(
    platform: Platform,
    name: str,
    roles: Sequence[str],
    *,
    project: str | None = None,
    bind_on: str = "*",
    minted_by: Actor | None = None,
    kind: str = "user",
) -> str:
    """A fresh API token for ``name`` carrying ``roles`` in ``project`` (bound on ``bind_on``).

    The principal and its bindings are created when missing; ``minted_by`` (default:
    the home's owner) creates them and the token, so it is who the token says minted it.
    """
    issuer = minted_by or platform.admin()
    where = project or platform.default_project
    if principal_kind(platform, name) is None:
        create_principal(platform, issuer, name, kind=kind)  # type: ignore[arg-type]
    for role in roles:
        with suppress(AlreadyExistsError):
            bind_role(platform, issuer, name, role, project=bind_on)
    made = create_token(
        platform, issuer, name, project=where, roles=tuple(roles), ttl=timedelta(hours=2)
    )
    return made.secret


def person(
    platform: Platform,
    name: str,
    roles: Sequence[str],
    *,
    project: str | None = None,
    minted_by: Actor | None = None,
) -> Actor:
    """The actor ``name`` acting with a token of its own (see :func:`mint`)."""
    token = mint(platform, name, roles, project=project, minted_by=minted_by)
    return verify_token(platform, token, source="test")
