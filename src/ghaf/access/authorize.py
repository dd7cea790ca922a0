"""Authorization outside the spine's write path: audited refusals and sensitive reads."""

from __future__ import annotations

from ghaf.errors import PermissionDeniedError
from ghaf.platform import Platform
from ghaf.security.identity import Actor


def audit_denied(
    platform: Platform, actor: Actor, action: str, resource: str, project: str, reason: str
) -> None:
    """Append a ``denied`` audit record for a refusal decided outside the spine."""
    platform.spine.record_denied(actor, action, resource, project, reason)


def authorize_read(
    platform: Platform,
    actor: Actor,
    action: str,
    resource: str,
    project: str | None = None,
    *,
    audit_allowed: bool = False,
) -> None:
    """Authorize a read of something sensitive; a denial is audited, then raised.

    Args:
        action: e.g. ``"audit.read"`` or ``"dataset.read_pii"`` (see
            :func:`ghaf.security.rbac.read_action`).
        audit_allowed: also append an ``allowed`` record (access logging of pii reads).

    Raises:
        PermissionDeniedError: the policy refuses.
    """
    project = project or platform.default_project
    try:
        platform.spine.authorizer.authorize(actor, action, resource, project)
    except PermissionDeniedError as exc:
        audit_denied(platform, actor, action, resource, project, exc.headline)
        raise
    if audit_allowed:
        with platform.spine.operation(actor, action, resource, project):
            pass
