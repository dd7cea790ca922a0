"""Incidents: alerts in, ITIL incident records out (priority, states, timeline, MTTA/MTTR)."""

from ghaf.incidents.ingest import IngestResult, ingest_alerts, resolve_alert
from ghaf.incidents.lifecycle import acknowledge, resolve
from ghaf.incidents.records import Incident, get_incident, incident_metrics, list_incidents

__all__ = [
    "Incident",
    "IngestResult",
    "acknowledge",
    "get_incident",
    "incident_metrics",
    "ingest_alerts",
    "list_incidents",
    "resolve",
    "resolve_alert",
]
