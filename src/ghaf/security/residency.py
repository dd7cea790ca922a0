"""Data residency: classification and residency tags → the regions their data may live in.

The policy is ``settings.security.residency`` (tag → region patterns, default: ``pii``
and ``resident:ae`` stay in ``ae-*``); a tag ``resident:X`` not named there means
region ``X`` or ``X-*``. Data with several tags must satisfy every rule. This
module is the pure decision; :mod:`ghaf.access.residency` applies it to lineage and
audits refusals.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ghaf.errors import InvalidInputError

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
