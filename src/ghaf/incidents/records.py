"""Incident records as callers see them, their timeline, reads and MTTA/MTTR."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.alerts.outbox import delivery_key, enqueue
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.incidents.tables import IncidentEventRow, IncidentRow
from ghaf.platform import Platform
from ghaf.settings import AlertingSettings

_NUMBER_HINT = "ghaf incidents list shows the numbers (INC0000001)"


@dataclass(frozen=True)
class IncidentEvent:
    """One timeline entry."""

    kind: str
    actor: str
    at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class Incident:
    """An ITIL incident, linked to what it is about (deployment, model version, lineage)."""

    number: str
    project: str
    title: str
    description: str
    state: str
    impact: int
    urgency: int
    priority: int
    fingerprint: str | None
    assigned_to: str | None
    alert_count: int
    deployment: str | None
    model_version: str | None
    links: dict[str, list[str]]
    opened_by: str
    opened_at: datetime
    last_seen: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None

    @property
    def node(self) -> str:
        return f"incident:{self.number}"


def to_record(row: IncidentRow) -> Incident:
    return Incident(
        number=str(row.number),
        project=row.project,
        title=row.title,
        description=row.description,
        state=row.state,
        impact=row.impact,
        urgency=row.urgency,
        priority=row.priority,
        fingerprint=row.fingerprint,
        assigned_to=row.assigned_to,
        alert_count=row.alert_count,
        deployment=row.deployment,
        model_version=row.model_version,
        links=json.loads(row.links),
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        last_seen=row.last_seen,
        acknowledged_at=row.acknowledged_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
    )


def check_number(number: str) -> str:
    """Raises InvalidInputError unless ``number`` reads INC followed by seven digits."""
    if not (len(number) == 10 and number.startswith("INC") and number[3:].isdigit()):
        raise InvalidInputError(f"incident number {number!r} is invalid", hint=_NUMBER_HINT)
    return number


def load_row(session: Session, number: str, project: str, *, lock: bool = False) -> IncidentRow:
    """The incident ``number`` of ``project`` (another project's reads as missing)."""
    query = select(IncidentRow).where(IncidentRow.number == check_number(number))
    row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None or row.project != project:
        raise NotFoundError(
            f"incident {number} does not exist in project {project!r}", hint=_NUMBER_HINT
        )
    return row


def add_event(
    session: Session, row: IncidentRow, kind: str, actor: str, at: datetime, **details: Any
) -> IncidentEventRow:
    event = IncidentEventRow(
        incident_id=row.id, kind=kind, actor=actor, at=at, details=json.dumps(details, default=str)
    )
    session.add(event)
    return event


def payload(row: IncidentRow, severity: str = "") -> dict[str, Any]:
    """The incident as JSON for receivers (PagerDuty, ServiceNow)."""
    data = asdict(to_record(row))
    data = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}
    return {**data, "severity": severity}


def notify(
    session: Session,
    settings: AlertingSettings,
    row: IncidentRow,
    verb: str,
    at: datetime,
    *,
    severity: str = "",
) -> None:
    """Owe the incident's receivers this change: PagerDuty trigger/acknowledge/resolve (by
    the alert's dedup key), ServiceNow the record in its shape after every change."""
    body = payload(row, severity)
    pd_action = {"open": "trigger", "ack": "acknowledge", "resolve": "resolve", "cancel": "resolve"}
    for name in json.loads(row.receivers):
        receiver = settings.receivers.get(name)
        if receiver is None:
            continue
        if receiver.kind == "pagerduty" and verb in pd_action:
            action = pd_action[verb]
            key = delivery_key(name, str(row.number), action, at.isoformat())
            event = f"incident.{action}"
            enqueue(session, settings, row.project, name, event, body, key=key, now=at)
        elif receiver.kind == "servicenow":
            key = delivery_key(name, str(row.number), verb, at.isoformat(), row.state)
            enqueue(session, settings, row.project, name, "incident.changed", body, key=key, now=at)


def get_incident(platform: Platform, number: str) -> tuple[Incident, list[IncidentEvent]]:
    """The incident ``number`` (of the platform's project) and its timeline, oldest first.

    Raises:
        NotFoundError: no such incident in the project.
    """
    with platform.read_session() as session:
        row = load_row(session, number, platform.default_project)
        events = session.execute(
            select(IncidentEventRow)
            .where(IncidentEventRow.incident_id == row.id)
            .order_by(IncidentEventRow.id)
        ).scalars()
        timeline = [IncidentEvent(e.kind, e.actor, e.at, json.loads(e.details)) for e in events]
        return to_record(row), timeline


def open_incident_of(platform: Platform, fingerprints: list[str]) -> Incident | None:
    """The open incident (New, In Progress, On Hold) of one of the alert ``fingerprints``
    in the platform's project, the newest when several are open; None when none is."""
    keys = [f"{platform.default_project}:{fp}" for fp in fingerprints]
    if not keys:
        return None
    with platform.read_session() as session:
        row = session.execute(
            select(IncidentRow)
            .where(IncidentRow.open_key.in_(keys))
            .order_by(IncidentRow.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        return to_record(row) if row is not None else None


def project_of_incident(platform: Platform, number: str) -> str | None:
    """The project incident ``number`` belongs to (None when there is none)."""
    with platform.read_session() as session:
        return session.execute(
            select(IncidentRow.project).where(IncidentRow.number == check_number(number))
        ).scalar_one_or_none()


def incident_projects(platform: Platform) -> list[str]:
    """The projects that have incidents."""
    with platform.read_session() as session:
        return sorted(session.execute(select(IncidentRow.project).distinct()).scalars())


def list_incidents(
    platform: Platform,
    *,
    projects: list[str] | None = None,
    state: str | None = None,
    limit: int = 1000,
) -> list[Incident]:
    """Incidents newest first, of ``projects`` (default: every project), of one ``state``."""
    query = select(IncidentRow).order_by(IncidentRow.id.desc()).limit(limit)
    if projects is not None:
        query = query.where(IncidentRow.project.in_(projects))
    if state is not None:
        query = query.where(IncidentRow.state == state)
    with platform.read_session() as session:
        return [to_record(row) for row in session.execute(query).scalars()]


def incident_metrics(incidents: list[Incident]) -> dict[str, dict[str, float | int | None]]:
    """Per priority (``P1``..``P5``): count, MTTA and MTTR in seconds (None when none yet).

    MTTA is the mean time from opening to acknowledgement over acknowledged incidents;
    MTTR the mean time from opening to resolution over resolved ones (closed included).
    """
    acks: dict[int, list[float]] = defaultdict(list)
    fixes: dict[int, list[float]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for incident in incidents:
        counts[incident.priority] += 1
        if incident.acknowledged_at is not None:
            acks[incident.priority].append(
                (incident.acknowledged_at - incident.opened_at).total_seconds()
            )
        if incident.resolved_at is not None:
            fixes[incident.priority].append(
                (incident.resolved_at - incident.opened_at).total_seconds()
            )

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        f"P{p}": {"count": counts[p], "mtta_s": mean(acks[p]), "mttr_s": mean(fixes[p])}
        for p in sorted(counts)
    }
