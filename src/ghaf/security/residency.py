"""Data residency: classification and residency tags → the regions their data may live in.

The policy is ``settings.security.residency`` (tag → region patterns, default: ``pii``
and ``resident:ae`` stay in ``ae-*``); a tag ``resident:X`` not named there means
region ``X`` or ``X-*``. Data with several tags must satisfy every rule. Derived
artifacts (features, training sets, models) inherit the tags of every dataset upstream
of them in the lineage graph. Every write, copy, export or replication calls
:func:`check_residency` (or :func:`check_object_residency`) with the target region;
a refusal raises :class:`PolicyViolationError` and is audited.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError, SpineBypassError
from ghaf.security.identity import Actor
from ghaf.security.rbac import audit_denied
from ghaf.spine import current_operation

if TYPE_CHECKING:
    from ghaf.platform import Platform

RESIDENCY_ACTION = "residency.check"
_REGION_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class ResidencyDecision:
    """Whether data with ``tags`` may go to ``target_region``, and why."""

    target_region: str
    tags: dict[str, list[str]]
    rules: dict[str, list[str]]
    violated: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        return not self.violated

    def explain(self) -> str:
        """Lines a person can read: each tag, where it came from, its rule and the verdict."""
        verdict = "ALLOWED" if self.allowed else "REFUSED"
        lines = [f"{verdict}: target region {self.target_region}"]
        if not self.tags:
            lines.append("  no classification or residency tags: no residency rule applies")
        for tag, sources in sorted(self.tags.items()):
            patterns = self.rules.get(tag)
            if patterns is None:
                rule = "no rule (any region)"
            else:
                ok = "violated" if tag in self.violated else "satisfied"
                rule = f"allowed in {', '.join(patterns)}: {ok}"
            lines.append(f"  tag {tag} (from {'; '.join(sources)}): {rule}")
        return "\n".join(lines)


def _rule(policy: Mapping[str, list[str]], tag: str) -> list[str] | None:
    if tag in policy:
        return list(policy[tag])
    if tag.startswith("resident:"):
        region = tag.removeprefix("resident:")
        return [region, f"{region}-*"]
    return None


def check_region(region: str) -> str:
    """Validate a region name (``ae-auh-1``)."""
    if not region or not set(region) <= _REGION_CHARS:
        raise InvalidInputError(
            f"region {region!r} is invalid", hint="lowercase letters, digits and '-', e.g. ae-auh-1"
        )
    return region


def decide_residency(
    policy: Mapping[str, list[str]],
    tags: Mapping[str, list[str]] | Iterable[str],
    target_region: str,
) -> ResidencyDecision:
    """Decide without side effects; ``tags`` maps each tag to where it came from."""
    check_region(target_region)
    sourced = dict(tags) if isinstance(tags, Mapping) else {t: ["given"] for t in tags}
    rules: dict[str, list[str]] = {}
    violated: list[str] = []
    for tag in sorted(sourced):
        patterns = _rule(policy, tag)
        if patterns is None:
            continue
        rules[tag] = patterns
        if not any(fnmatch.fnmatchcase(target_region, p) for p in patterns):
            violated.append(tag)
    return ResidencyDecision(target_region, sourced, rules, violated)


def check_residency(
    platform: Platform,
    classification_tags: Mapping[str, list[str]] | Iterable[str],
    target_region: str,
    *,
    actor: Actor | None = None,
    resource: str = "data",
    project: str | None = None,
) -> ResidencyDecision:
    """Refuse (and audit) putting data with these tags in ``target_region``.

    Inside a governed operation the refusal fails that operation, which the spine
    audits; outside one, a ``denied`` record is appended here.

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
        audit_denied(
            platform, who, RESIDENCY_ACTION, resource, project or platform.default_project, headline
        )
    raise PolicyViolationError(
        headline, hint="store it in an allowed region, or drop the tag if it was wrong"
    )


def object_tags(platform: Platform, node: str) -> dict[str, list[str]]:
    """Tags of a lineage node and of every dataset upstream of it, with their origin.

    A dataset version contributes its column classifications and ``resident:R`` for
    its residency ``R``.
    """
    nodes = [node]
    try:
        from ghaf.lineage import upstream

        nodes += upstream(platform, node)
    except ImportError:  # pragma: no cover - lineage is part of the data concern
        pass
    tags: dict[str, list[str]] = {}
    for current in nodes:
        if not current.startswith("dataset:"):
            continue
        for tag, origin in _dataset_tags(platform, current):
            via = origin if current == node else f"{origin}, upstream of {node}"
            tags.setdefault(tag, []).append(via)
    return tags


def _dataset_tags(platform: Platform, node: str) -> list[tuple[str, str]]:
    from ghaf.data import get_dataset

    ref = node.removeprefix("dataset:")
    try:
        version = get_dataset(platform, ref)
    except NotFoundError:
        return []
    found = [(t, f"{node} column {c}") for c, t in sorted(version.column_tags.items())]
    if version.residency:
        found.append((f"resident:{version.residency}", f"{node} residency"))
    return found


def check_object_residency(
    platform: Platform,
    node: str,
    target_region: str,
    *,
    actor: Actor | None = None,
    project: str | None = None,
) -> ResidencyDecision:
    """:func:`check_residency` for a lineage node (``dataset:N:V``, ``model:N:V``...)."""
    return check_residency(
        platform,
        object_tags(platform, node),
        target_region,
        actor=actor,
        resource=node,
        project=project,
    )


def check_derived_residency(
    platform: Platform,
    sources: Iterable[str],
    target_region: str,
    *,
    own_tags: Mapping[str, list[str]] | None = None,
    actor: Actor | None = None,
    resource: str = "data",
) -> ResidencyDecision:
    """:func:`check_residency` for something derived from lineage ``sources``.

    Used at write time, before the new node's own lineage edges are committed: the
    tags are the object's own plus those of every source and of everything upstream.
    """
    tags: dict[str, list[str]] = {k: list(v) for k, v in (own_tags or {}).items()}
    for source in sources:
        for tag, origins in object_tags(platform, source).items():
            tags.setdefault(tag, []).extend(origins)
    return check_residency(platform, tags, target_region, actor=actor, resource=resource)
