"""The remote client's calls for scheduled monitors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ghaf.client.session import Session


class MonitorCalls(Session):
    """Monitor calls of :class:`~ghaf.client.http.Client`."""

    def schedule_monitor(
        self,
        project: str,
        deployment: str,
        *,
        every: str | int = "5m",
        window: str | int | None = None,
        reference: str | None = None,
        log: str | None = None,
        options: Mapping[str, Any] | None = None,
        enabled: bool = True,
    ) -> dict[str, Any]:
        """Create or replace ``deployment``'s monitor (``log``: a directory under the
        server's ``predictions/``); answers the schedule."""
        body = {
            "deployment": deployment,
            "every": every,
            "window": window,
            "reference": reference,
            "log": log,
            "options": dict(options or {}),
            "enabled": enabled,
        }
        return dict(self.post(f"/projects/{project}/monitors", body))

    def monitors(self, project: str) -> list[dict[str, Any]]:
        """The project's monitor schedules."""
        return list(self.get(f"/projects/{project}/monitors")["monitors"])

    def run_monitors(self, project: str, deployment: str | None = None) -> list[dict[str, Any]]:
        """Run ``deployment``'s monitor now, or every due one; answers the runs."""
        return list(
            self.post(f"/projects/{project}/monitors/run", {"deployment": deployment})["runs"]
        )

    def monitor_status(self, project: str, deployment: str | None = None) -> list[dict[str, Any]]:
        """The latest result of each deployment and model version."""
        return list(
            self.get(f"/projects/{project}/monitors/status", deployment=deployment)["results"]
        )

    def monitor_results(
        self,
        project: str,
        deployment: str,
        *,
        model_version: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """A deployment's monitor results, newest first."""
        found = self.get(
            f"/projects/{project}/monitors/{deployment}/results",
            model_version=model_version,
            limit=limit,
        )
        return list(found["results"])
