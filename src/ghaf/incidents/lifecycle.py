"""Changes to an incident, each a governed action (authorized, audited, on the timeline):
``incident.ack|hold|resume|resolve|close|cancel|reopen`` move it between states (see
:mod:`ghaf.incidents.states`); ``incident.assign``, ``incident.note`` and
``incident.record`` (rollback, retrain, canary... by the closed loop) add to it.

``at`` lets a caller that knows when something happened (a replay, a test) say so;
the doors leave it to the clock.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ghaf.errors import InvalidInputError
from ghaf.incidents.records import Incident, add_event, load_row, notify, to_record
from ghaf.incidents.states import OPEN_STATES, RESOLVED, next_state
from ghaf.incidents.tables import IncidentRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

RECORD_KINDS = (
    "trigger", "retrain", "register", "gate", "approval", "deploy", "canary", "promote",
    "rollback",
)  # fmt: skip
"""Timeline entries other services add with :func:`record_event` (the closed loop's hops:
a retraining trigger fired or skipped, the pipeline run, the registered version, its
gates, an approval asked for, the candidate deployed, each canary decision, the end)."""
MAX_NOTE = 10_000


def _text(value: str, field: str, limit: int) -> str:
    if not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidInputError(
            f"{field} must be 1 to {limit} characters of text", hint=f"give a {field}"
        )
    return value


def _move(
    platform: Platform, actor: Actor, number: str, verb: str, at: datetime | None, note: str = ""
) -> Incident:
    session = current_session()
    row = load_row(session, number, platform.default_project, lock=True)
    now = at or utcnow()
    before = row.state
    state = next_state(str(row.number), row.state, verb)
    if verb == "reopen" and row.fingerprint is not None:
        _refuse_second_open(session, row)
    row.state = state
    if verb == "ack" and row.acknowledged_at is None:
        row.acknowledged_at = now
        row.assigned_to = row.assigned_to or actor.name
    if row.state == RESOLVED:
        row.resolved_at = now
    if verb == "reopen":
        row.resolved_at = None
    if verb == "close":
        row.closed_at = now
    if verb == "cancel":
        row.closed_at = now
    row.open_key = f"{row.project}:{row.fingerprint}" if row.state in OPEN_STATES else None
    row.updated_at = now
    details = {"from": before, "to": row.state, **({"note": note} if note else {})}
    add_event(session, row, verb, actor.name, now, **details)
    notify(session, platform.settings.alerting, row, verb, now)
    session.flush()
    current_operation().details.update(details)
    return to_record(row)


def _refuse_second_open(session: Session, row: IncidentRow) -> None:
    other = session.execute(
        select(IncidentRow.number).where(
            IncidentRow.open_key == f"{row.project}:{row.fingerprint}", IncidentRow.id != row.id
        )
    ).scalar_one_or_none()
    if other is not None:
        raise InvalidInputError(
            f"incident {other} is open for the same alert",
            hint=f"work on {other} instead of reopening {row.number}",
        )


@governed("incident.ack", resource="incident:{number}")
def acknowledge(
    platform: Platform, actor: Actor, number: str, *, at: datetime | None = None
) -> Incident:
    """New -> In Progress; the first acknowledgement sets MTTA's end and the assignee."""
    return _move(platform, actor, number, "ack", at)


@governed("incident.hold", resource="incident:{number}")
def hold(
    platform: Platform, actor: Actor, number: str, reason: str = "", *, at: datetime | None = None
) -> Incident:
    """New or In Progress -> On Hold (waiting on someone else)."""
    return _move(platform, actor, number, "hold", at, reason)


@governed("incident.resume", resource="incident:{number}")
def resume(
    platform: Platform, actor: Actor, number: str, *, at: datetime | None = None
) -> Incident:
    """On Hold -> In Progress."""
    return _move(platform, actor, number, "resume", at)


@governed("incident.resolve", resource="incident:{number}")
def resolve(
    platform: Platform,
    actor: Actor,
    number: str,
    resolution: str = "",
    *,
    at: datetime | None = None,
) -> Incident:
    """New, In Progress or On Hold -> Resolved; sets MTTR's end; the next alert with the
    same fingerprint opens a new incident."""
    return _move(platform, actor, number, "resolve", at, resolution)


@governed("incident.close", resource="incident:{number}")
def close(platform: Platform, actor: Actor, number: str, *, at: datetime | None = None) -> Incident:
    """Resolved -> Closed (final)."""
    return _move(platform, actor, number, "close", at)


@governed("incident.cancel", resource="incident:{number}")
def cancel(
    platform: Platform, actor: Actor, number: str, reason: str = "", *, at: datetime | None = None
) -> Incident:
    """New, In Progress or On Hold -> Canceled (final: not an incident after all)."""
    return _move(platform, actor, number, "cancel", at, reason)


@governed("incident.reopen", resource="incident:{number}")
def reopen(
    platform: Platform, actor: Actor, number: str, reason: str = "", *, at: datetime | None = None
) -> Incident:
    """Resolved -> In Progress (the fix did not hold), unless a newer incident is open
    for the same alert."""
    return _move(platform, actor, number, "reopen", at, reason)


@governed("incident.assign", resource="incident:{number}")
def assign(
    platform: Platform, actor: Actor, number: str, assignee: str, *, at: datetime | None = None
) -> Incident:
    """Assign an open incident to ``assignee`` (a principal name)."""
    session = current_session()
    row = load_row(session, number, platform.default_project, lock=True)
    if row.state not in OPEN_STATES:
        raise InvalidInputError(
            f"incident {row.number} is {row.state}: it cannot be assigned",
            hint="assign New, In Progress or On Hold incidents",
        )
    now = at or utcnow()
    before, row.assigned_to = row.assigned_to, _text(assignee, "assignee", 256)
    row.updated_at = now
    add_event(session, row, "assign", actor.name, now, **{"from": before, "to": assignee})
    notify(session, platform.settings.alerting, row, "assign", now)
    current_operation().details["assignee"] = assignee
    return to_record(row)


@governed("incident.note", resource="incident:{number}")
def add_note(
    platform: Platform, actor: Actor, number: str, text: str, *, at: datetime | None = None
) -> Incident:
    """Add a work note to the incident's timeline (in any state)."""
    session = current_session()
    row = load_row(session, number, platform.default_project)
    add_event(session, row, "note", actor.name, at or utcnow(), text=_text(text, "note", MAX_NOTE))
    return to_record(row)


@governed("incident.record", resource="incident:{number}")
def record_event(
    platform: Platform,
    actor: Actor,
    number: str,
    kind: str,
    details: dict[str, object] | None = None,
    *,
    at: datetime | None = None,
) -> Incident:
    """Add a hop of the closed loop (one of :data:`RECORD_KINDS`) to the timeline."""
    if kind not in RECORD_KINDS:
        raise InvalidInputError(
            f"timeline kind {kind!r} is unknown", hint=f"use one of {', '.join(RECORD_KINDS)}"
        )
    session = current_session()
    row = load_row(session, number, platform.default_project)
    add_event(session, row, kind, actor.name, at or utcnow(), **dict(details or {}))
    current_operation().details["kind"] = kind
    return to_record(row)
