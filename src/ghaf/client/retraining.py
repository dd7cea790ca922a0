"""The remote client's calls for the closed loop's configuration: retraining policies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ghaf.client.session import Session


class RetrainingCalls(Session):
    """Retraining calls of :class:`~ghaf.client.http.Client`."""

    def set_retraining(
        self,
        project: str,
        deployment: str,
        *,
        pipeline: str,
        plan: Mapping[str, Any],
        params: Mapping[str, Any] | None = None,
        alerts: Sequence[str] = ("drift.detected", "model.quality"),
        cooldown: str | float = "6h",
        max_runs: int | None = None,
        window: str | float = "1d",
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Create or replace ``deployment``'s retraining policy; answers the policy."""
        body = {
            "pipeline": pipeline,
            "plan": dict(plan),
            "params": dict(params or {}),
            "alerts": list(alerts),
            "cooldown": cooldown,
            "max_runs": max_runs,
            "window": window,
            "enabled": enabled,
        }
        return dict(self.put(f"/projects/{project}/deployments/{deployment}/retraining", body))

    def retraining(self, project: str, deployment: str) -> dict[str, Any]:
        """``{"policy": ..., "runs": [...]}`` of ``deployment``."""
        return dict(self.get(f"/projects/{project}/deployments/{deployment}/retraining"))

    def delete_retraining(self, project: str, deployment: str) -> dict[str, Any]:
        """Delete ``deployment``'s retraining policy; answers what it was."""
        found = self.delete(f"/projects/{project}/deployments/{deployment}/retraining")
        return dict(found["deleted"])

    def retraining_policies(self, project: str) -> dict[str, Any]:
        """``{"policies": [...], "runs": [...]}`` of the project."""
        return dict(self.get(f"/projects/{project}/retraining"))
