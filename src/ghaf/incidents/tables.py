"""Tables of incidents: ITIL incident records and the timeline of each."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class IncidentRow(Base):
    """An incident. ``open_key`` (``PROJECT:FINGERPRINT``) is set while the incident is
    open (New, In Progress, On Hold) and NULL after: the database holds one open incident
    per fingerprint, whatever door or process raced to open it."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str | None] = mapped_column(String(16), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16))
    impact: Mapped[int] = mapped_column(Integer)
    urgency: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str | None] = mapped_column(String(32), index=True)
    open_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    assigned_to: Mapped[str | None] = mapped_column(String(256))
    alert_count: Mapped[int] = mapped_column(Integer)
    deployment: Mapped[str | None] = mapped_column(String(300))
    model_version: Mapped[str | None] = mapped_column(String(300))
    links: Mapped[str] = mapped_column(Text)
    receivers: Mapped[str] = mapped_column(Text)
    opened_by: Mapped[str] = mapped_column(String(256))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncidentEventRow(Base):
    """One entry of an incident's timeline: alert, ack, note, assign, rollback, resolve..."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    details: Mapped[str] = mapped_column(Text)
