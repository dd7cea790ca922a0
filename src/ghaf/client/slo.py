"""The remote client's calls for SLOs: define, list, show, delete, status, fire, rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ghaf.client.session import Session


class SLOCalls(Session):
    """SLO calls of :class:`~ghaf.client.http.Client`."""

    def define_slo(
        self,
        project: str,
        name: str,
        *,
        deployment: str,
        sli: str,
        objective: float,
        window_days: int = 30,
        threshold_ms: float | None = None,
        min_requests_per_hour: int = 100,
    ) -> dict[str, Any]:
        """Define (or redefine) the SLO ``name`` of one of ``project``'s deployments."""
        body = {
            "deployment": deployment,
            "sli": sli,
            "objective": objective,
            "window_days": window_days,
            "threshold_ms": threshold_ms,
            "min_requests_per_hour": min_requests_per_hour,
        }
        return dict(self.put(f"/projects/{project}/slos/{name}", body))

    def slos(self, project: str) -> list[dict[str, Any]]:
        """The project's SLOs, by name."""
        return list(self.get(f"/projects/{project}/slos")["slos"])

    def slo(self, project: str, name: str) -> dict[str, Any]:
        return dict(self.get(f"/projects/{project}/slos/{name}"))

    def delete_slo(self, project: str, name: str) -> dict[str, Any]:
        """Delete an SLO; ``{"deleted": {...}}`` (what it was)."""
        return dict(self.delete(f"/projects/{project}/slos/{name}"))

    def slo_status(
        self,
        project: str,
        name: str,
        series: Mapping[str, Any],
        *,
        at: float | None = None,
        fire: bool = False,
    ) -> dict[str, Any]:
        """Each window pair's verdict over ``series`` (``EventSeries.to_dict()``); with
        ``fire``, what pages or tickets goes to alerts and incidents (``"alerts"``)."""
        verb = "fire" if fire else "status"
        body = {"series": dict(series), "at": at}
        return dict(self.post(f"/projects/{project}/slos/{name}/{verb}", body))

    def slo_rules(self, project: str, names: Sequence[str] = ()) -> dict[str, Any]:
        """``{"format": "prometheus", "groups": [...], "rules": YAML}``."""
        return dict(self.get(f"/projects/{project}/slo-rules", name=list(names) or None))

    def schedule_slo(
        self, project: str, name: str, targets: Sequence[str], every_s: int = 60
    ) -> dict[str, Any]:
        """Have the server's live loop evaluate the SLO ``name`` every ``every_s``
        seconds from the counters of ``targets`` (ghaf serve base URLs)."""
        body = {"targets": list(targets), "every_s": every_s}
        return dict(self.put(f"/projects/{project}/slos/{name}/schedule", body))

    def unschedule_slo(self, project: str, name: str) -> dict[str, Any]:
        """``{"unscheduled": {...}}`` (what the schedule was)."""
        return dict(self.delete(f"/projects/{project}/slos/{name}/schedule"))

    def slo_schedules(self, project: str) -> list[dict[str, Any]]:
        """The project's scheduled SLOs, by name."""
        return list(self.get(f"/projects/{project}/slo-schedules")["schedules"])
