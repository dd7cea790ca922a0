"""A project's release and code policies as documents: the HTTP API's answers and what
``ghaf policy ... --output json`` prints, in either mode."""

from __future__ import annotations

from typing import Any

from ghaf.models.custom_code import NEVER_ALLOWED, CodePolicy
from ghaf.registry.release import StoredReleasePolicy


def release_document(stored: StoredReleasePolicy) -> dict[str, Any]:
    """{"project", "version" (0: the built-in default), "created_by", "policy", "text"}."""
    return {
        "project": stored.project,
        "version": stored.version,
        "created_by": stored.created_by,
        "policy": stored.policy.model_dump(mode="json"),
        "text": stored.text,
    }


def code_document(policy: CodePolicy) -> dict[str, Any]:
    """{"project", "version", "enabled", "modules", "set_by", "never_allowed"}."""
    return {
        "project": policy.project,
        "version": policy.version,
        "enabled": policy.enabled,
        "modules": list(policy.modules),
        "set_by": policy.set_by,
        "never_allowed": sorted(NEVER_ALLOWED),
    }
