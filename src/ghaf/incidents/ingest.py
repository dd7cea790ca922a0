"""Alert ingestion (``alert.ingest``): de-duplicate, inhibit, notify, and open or update
one incident per fingerprint, all in the transaction whose commit acknowledges the sender.

An alert whose fingerprint has an open incident (New, In Progress, On Hold) counts on
that incident. Once the incident is resolved, closed or canceled, the next alert with
that fingerprint opens a NEW incident (no reopen window: a resolution a person recorded
stays true of that incident; the timeline of the new one names the previous).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ghaf.alerts.base import Alert
from ghaf.alerts.outbox import GROUPED, delivery_key, enqueue
from ghaf.alerts.rules import group_key, inhibited, levels, priority, receivers_for
from ghaf.alerts.tables import AlertReceiptRow, AlertRow
from ghaf.errors import InvalidInputError
from ghaf.incidents.records import add_event, notify
from ghaf.incidents.states import NEW
from ghaf.incidents.tables import IncidentRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.settings import AlertingSettings
from ghaf.spine import current_operation, current_session, governed

MAX_BATCH = 5000
"""Alerts one call may carry (Alertmanager sends far fewer per notification)."""
_CHUNK = 500
_LOCK_ID = 0x6768_6166_616C  # one ingest at a time per database (PostgreSQL advisory lock)


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did: occurrences counted (new), repeats dropped, incidents touched."""

    received: int
    duplicates: int
    inhibited: int
    opened: list[str]
    updated: list[str]


def _lock(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


def _fresh(session: Session, alerts: Sequence[Alert], now: datetime) -> list[Alert]:
    """The alerts whose occurrence was not counted before (nor earlier in this batch)."""
    unique = {alert.occurrence: alert for alert in alerts}
    seen: set[str] = set()
    ids = list(unique)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        seen |= set(
            session.execute(
                select(AlertReceiptRow.occurrence).where(AlertReceiptRow.occurrence.in_(chunk))
            ).scalars()
        )
    fresh = [alert for key, alert in unique.items() if key not in seen]
    session.add_all(
        AlertReceiptRow(occurrence=a.occurrence, fingerprint=a.fingerprint, received_at=now)
        for a in fresh
    )
    return fresh


def _links(platform: Platform, alert: Alert) -> dict[str, list[str]]:
    """Feature views and dataset versions upstream of the alert's model version and
    deployment, from lineage."""
    from ghaf.lineage import upstream

    nodes = []
    if alert.deployment:
        nodes.append(f"deployment:{alert.deployment}")
    if alert.model_version:
        nodes.append(f"model:{alert.model_version}")
    found: set[str] = set()
    for node in nodes:
        try:
            found |= set(upstream(platform, node))
        except InvalidInputError:
            continue
    return {
        "feature_views": sorted(n for n in found if n.startswith("feature_view:")),
        "datasets": sorted(n for n in found if n.startswith("dataset:")),
        "models": sorted(n for n in found if n.startswith("model:")),
    }


def _open_incident(
    platform: Platform,
    session: Session,
    settings: AlertingSettings,
    actor: Actor,
    alert: Alert,
    count: int,
    now: datetime,
) -> IncidentRow:
    project = platform.default_project
    impact, urgency = levels(settings, alert)
    kinds = ("pagerduty", "servicenow")
    receivers = (
        [r for r in receivers_for(settings, alert) if settings.receivers[r].kind in kinds]
        if settings.routes
        else []
    )
    previous = session.execute(
        select(IncidentRow.number)
        .where(IncidentRow.project == project, IncidentRow.fingerprint == alert.fingerprint)
        .order_by(IncidentRow.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    row = IncidentRow(
        number=None,
        project=project,
        title=(alert.summary or alert.name)[:512],
        description=f"{alert.name} {json.dumps(dict(alert.labels), sort_keys=True)}",
        state=NEW,
        impact=impact,
        urgency=urgency,
        priority=priority(settings, impact, urgency),
        fingerprint=alert.fingerprint,
        open_key=f"{project}:{alert.fingerprint}",
        assigned_to=None,
        alert_count=count,
        deployment=alert.deployment,
        model_version=alert.model_version,
        links=json.dumps(_links(platform, alert)),
        receivers=json.dumps(receivers),
        opened_by=actor.name,
        opened_at=now,
        last_seen=now,
        acknowledged_at=None,
        resolved_at=None,
        closed_at=None,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    row.number = f"INC{row.id:07d}"
    add_event(session, row, "opened", actor.name, now, alert=alert.name, previous=previous)
    add_event(session, row, "alert", actor.name, now, count=count, fingerprint=alert.fingerprint)
    notify(session, settings, row, "open", now, severity=alert.severity)
    return row


def _store_alert(
    session: Session, project: str, alert: Alert, count: int, now: datetime, row: AlertRow | None
) -> tuple[AlertRow, bool]:
    """Create or update the fingerprint's alert row; True when it (re)starts firing."""
    if row is None:
        row = AlertRow(
            fingerprint=alert.fingerprint,
            name=alert.name,
            project=project,
            labels=json.dumps(dict(alert.labels), sort_keys=True),
            severity=alert.severity,
            summary=alert.summary,
            source=alert.source,
            deployment=alert.deployment,
            model_version=alert.model_version,
            status=alert.status,
            count=count if alert.status == "firing" else 0,
            starts_at=alert.starts_at,
            last_seen=now,
            ends_at=now if alert.status == "resolved" else None,
        )
        session.add(row)
        return row, alert.status == "firing"
    started = alert.status == "firing" and row.status != "firing"
    stopped = alert.status == "resolved" and row.status != "resolved"
    if alert.status == "firing":
        row.count += count
        if started:
            row.starts_at, row.ends_at = alert.starts_at, None
    row.status = alert.status
    row.last_seen = now
    row.summary = alert.summary or row.summary
    if stopped:
        row.ends_at = now
    return row, started or stopped


def _notify_alert(
    session: Session, settings: AlertingSettings, alert: Alert, row: AlertRow, now: datetime
) -> None:
    project = row.project
    event = "alert.fired" if alert.status == "firing" else "alert.resolved"
    body = {**alert.to_dict(), "count": row.count}
    group = group_key(settings, alert)
    for name in receivers_for(settings, alert):
        kind = settings.receivers[name].kind
        if kind in GROUPED or kind == "bus":
            key = delivery_key(name, event, alert.fingerprint, row.starts_at.isoformat())
            enqueue(
                session, settings, project, name, event, body, key=key, group_key=group, now=now
            )


@governed("alert.ingest", resource="alerts")
def ingest_alerts(
    platform: Platform, actor: Actor, alerts: Sequence[Alert], *, now: datetime | None = None
) -> IngestResult:
    """Record ``alerts`` (firing or resolved) in the platform's project and act on them.

    Per fingerprint: the alert row counts occurrences (an occurrence id seen before is
    dropped), notifications are owed to the routed receivers when it starts or stops
    firing, an alert muted by an inhibit rule is kept as ``inhibited`` and goes nowhere,
    and a firing one opens an incident or counts on the open one. Nothing is sent here:
    the outbox holds the deliveries (``deliver_outbox``).

    Raises:
        InvalidInputError: more than :data:`MAX_BATCH` alerts.
    """
    if len(alerts) > MAX_BATCH:
        raise InvalidInputError(
            f"{len(alerts)} alerts in one call; at most {MAX_BATCH}",
            hint="send them in batches",
        )
    session = current_session()
    settings = platform.settings.alerting
    project = platform.default_project
    now = now or utcnow()
    _lock(session)
    fresh = _fresh(session, alerts, now)
    by_fp: dict[str, list[Alert]] = defaultdict(list)
    for alert in fresh:
        by_fp[alert.fingerprint].append(alert)
    rows = {
        r.fingerprint: r
        for r in session.execute(
            select(AlertRow).where(AlertRow.project == project, AlertRow.fingerprint.in_(by_fp))
        ).scalars()
    }
    firing_labels = []
    if settings.inhibit_rules:
        firing = session.execute(
            select(AlertRow.name, AlertRow.labels, AlertRow.severity).where(
                AlertRow.project == project, AlertRow.status == "firing"
            )
        ).all()
        firing_labels = [
            {**json.loads(labels), "alertname": name, "severity": severity}
            for name, labels, severity in firing
        ]
        firing_labels += [a.all_labels for a in fresh if a.status == "firing"]
    opens = {
        r.open_key: r
        for r in session.execute(
            select(IncidentRow).where(IncidentRow.open_key.in_([f"{project}:{fp}" for fp in by_fp]))
        ).scalars()
    }
    muted = 0
    opened: list[str] = []
    updated: list[str] = []
    for fp, group in by_fp.items():
        alert = max(group, key=lambda a: (a.status == "firing", a.starts_at))
        count = sum(1 for a in group if a.status == "firing")
        if alert.status == "firing" and inhibited(settings.inhibit_rules, alert, firing_labels):
            row, _ = _store_alert(session, project, alert, count, now, rows.get(fp))
            row.status = "inhibited"
            muted += len(group)
            continue
        row, changed = _store_alert(session, project, alert, count, now, rows.get(fp))
        if changed:
            _notify_alert(session, settings, alert, row, now)
        incident = opens.get(f"{project}:{fp}")
        if alert.status == "resolved":
            if incident is not None:
                add_event(session, incident, "alert_resolved", actor.name, now, fingerprint=fp)
            continue
        if incident is None:
            incident = _open_incident(platform, session, settings, actor, alert, count, now)
            opened.append(str(incident.number))
        else:
            incident.alert_count += count
            incident.last_seen = incident.updated_at = now
            add_event(session, incident, "alert", actor.name, now, count=count, fingerprint=fp)
            updated.append(str(incident.number))
    session.flush()
    result = IngestResult(len(fresh), len(alerts) - len(fresh), muted, opened, updated)
    current_operation().details.update(
        {"received": result.received, "duplicates": result.duplicates, "opened": opened}
    )
    return result


@governed("alert.resolve", resource="alert:{fingerprint}")
def resolve_alert(
    platform: Platform, actor: Actor, fingerprint: str, *, now: datetime | None = None
) -> dict[str, object]:
    """Mark the firing alert ``fingerprint`` resolved (its receivers are told; an open
    incident gets a timeline entry, and stays open until a person resolves it).

    Raises:
        NotFoundError: no alert with that fingerprint in the project.
    """
    from ghaf.errors import NotFoundError

    session = current_session()
    row = session.execute(
        select(AlertRow).where(
            AlertRow.project == platform.default_project, AlertRow.fingerprint == fingerprint
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"no alert with fingerprint {fingerprint!r}", hint="ghaf alerts list shows them"
        )
    alert = Alert(
        name=row.name,
        labels=json.loads(row.labels),
        severity=row.severity,
        summary=row.summary,
        source=row.source,
        deployment=row.deployment,
        model_version=row.model_version,
        starts_at=row.starts_at,
        status="resolved",
        id=f"resolve:{fingerprint}:{row.starts_at.isoformat()}",
    )
    result = ingest_alerts(platform, actor, [alert], now=now)
    return {"fingerprint": fingerprint, "resolved": result.received == 1}


def list_alerts(platform: Platform, *, status: str | None = None) -> list[dict[str, object]]:
    """The project's alerts by fingerprint, most recently seen first."""
    query = (
        select(AlertRow)
        .where(AlertRow.project == platform.default_project)
        .order_by(AlertRow.last_seen.desc())
    )
    if status is not None:
        query = query.where(AlertRow.status == status)
    with platform.read_session() as session:
        return [
            {
                "fingerprint": r.fingerprint,
                "name": r.name,
                "labels": json.loads(r.labels),
                "severity": r.severity,
                "summary": r.summary,
                "status": r.status,
                "count": r.count,
                "starts_at": r.starts_at.isoformat(),
                "last_seen": r.last_seen.isoformat(),
                "deployment": r.deployment,
                "model_version": r.model_version,
            }
            for r in session.execute(query).scalars()
        ]
