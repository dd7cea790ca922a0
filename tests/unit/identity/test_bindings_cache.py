"""The authorizer reuses stored bindings briefly: this process's changes count at once,
another process's within the TTL."""

from __future__ import annotations

import pytest

from ghaf.access.bindings import bind_role, unbind_role
from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.identity import Actor, Credential
from ghaf.security.rbac import BINDINGS_TTL, RbacAuthorizer


def test_changes_here_count_at_once_and_elsewhere_within_the_ttl(platform: Platform) -> None:
    now = [0.0]
    authz = RbacAuthorizer(
        platform.spine.authorizer.policy,  # type: ignore[attr-defined]
        platform.read_session,
        owner=platform.home_owner,
        clock=lambda: now[0],
    )
    dana = Actor("dana", credential=Credential("home-owner", "uid:1001"))
    with pytest.raises(PermissionDeniedError):
        authz.authorize(dana, "dataset.write", "d", "fraud")
    # another process (another platform) binds: seen once the cached entry expires
    with Platform(platform.settings) as other:
        bind_role(other, other.admin(), "dana", "data_engineer", project="fraud")
    with pytest.raises(PermissionDeniedError):
        authz.authorize(dana, "dataset.write", "d", "fraud")
    now[0] += BINDINGS_TTL + 0.01
    authz.authorize(dana, "dataset.write", "d", "fraud")
    # this process unbinds through its own spine: refused at once, no waiting
    own = platform.spine.authorizer
    assert isinstance(own, RbacAuthorizer)
    own.authorize(dana, "dataset.write", "d", "fraud")
    unbind_role(platform, platform.admin(), "dana", "data_engineer", project="fraud")
    with pytest.raises(PermissionDeniedError):
        own.authorize(dana, "dataset.write", "d", "fraud")
