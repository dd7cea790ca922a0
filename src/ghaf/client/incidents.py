"""The remote client's calls for alerts and incidents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ghaf.client.session import Session


class IncidentCalls(Session):
    """Alert and incident calls of :class:`~ghaf.client.http.Client`."""

    def fire_alerts(self, project: str, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Send alerts (Ghaf's shape); answered once they are stored: received,
        duplicates, inhibited, opened and updated incident numbers."""
        return dict(self.post(f"/projects/{project}/alerts", {"alerts": list(alerts)}))

    def alerts(self, project: str, status: str | None = None) -> list[dict[str, Any]]:
        """The project's alerts, one per fingerprint."""
        return list(self.get(f"/projects/{project}/alerts", status=status)["alerts"])

    def resolve_alert(self, project: str, fingerprint: str) -> dict[str, Any]:
        return dict(self.post(f"/projects/{project}/alerts/{fingerprint}/resolve", {}))

    def deliver_alerts(self, project: str) -> dict[str, Any]:
        """Send the deliveries that are due; what was sent, retried, failed, pending."""
        return dict(self.post(f"/projects/{project}/alerts/deliver", {}))

    def incidents(self, project: str | None = None, state: str | None = None) -> dict[str, Any]:
        """``{"incidents": [...], "metrics": {P1: {count, mtta_s, mttr_s}, ...}}``."""
        return dict(self.get("/incidents", project=project, state=state))

    def incident(self, number: str) -> dict[str, Any]:
        """``{"incident": {...}, "timeline": [...]}``."""
        return dict(self.get(f"/incidents/{number}"))

    def move_incident(self, number: str, verb: str, note: str = "") -> dict[str, Any]:
        """ack, hold, resume, resolve, close, cancel or reopen ``number``."""
        return dict(self.post(f"/incidents/{number}/{verb}", {"note": note}))

    def assign_incident(self, number: str, assignee: str) -> dict[str, Any]:
        return dict(self.post(f"/incidents/{number}/assign", {"assignee": assignee}))

    def note_incident(self, number: str, text: str) -> dict[str, Any]:
        return dict(self.post(f"/incidents/{number}/notes", {"text": text}))
