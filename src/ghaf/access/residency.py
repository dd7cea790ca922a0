"""Residency on governed writes: refuse data whose tags may not go to a region, audited.

The decision is :func:`ghaf.security.residency.decide_residency`; the lineage-aware
checks that find a derived object's tags are in :mod:`ghaf.data.residency`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ghaf.access.authorize import audit_denied
from ghaf.errors import PolicyViolationError, SpineBypassError
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.security.residency import ResidencyDecision, decide_residency
from ghaf.spine import current_operation

RESIDENCY_ACTION = "residency.check"


def check_residency(
    platform: Platform,
    classification_tags: Mapping[str, list[str]] | Iterable[str],
    target_region: str,
    *,
    actor: Actor | None = None,
    resource: str = "data",
    project: str | None = None,
    action: str = RESIDENCY_ACTION,
) -> ResidencyDecision:
    """Refuse (and audit) putting data with these tags in ``target_region``.

    Inside a governed operation the refusal fails that operation, which the spine
    audits; outside one (a check made before any byte is written, ahead of the
    operation), a ``denied`` record of ``action`` is appended here.

    Raises:
        PolicyViolationError: naming the tag, the target and the allowed regions.
    """
    decision = decide_residency(
        platform.settings.security.residency, classification_tags, target_region
    )
    if decision.allowed:
        return decision
    tag = decision.violated[0]
    headline = (
        f"residency: {resource} is tagged {tag} and may not be stored in {target_region} "
        f"(allowed: {', '.join(decision.rules[tag])})"
    )
    try:
        operation = current_operation()
    except SpineBypassError:  # outside a governed operation: audit it here
        operation = None
    if operation is not None:
        operation.details["residency"] = decision.explain()
    else:
        who = actor or platform.admin()
        audit_denied(platform, who, action, resource, project or platform.default_project, headline)
    raise PolicyViolationError(
        headline, hint="store it in an allowed region, or drop the tag if it was wrong"
    )
