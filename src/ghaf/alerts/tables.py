"""Tables of alerting: alerts by fingerprint, received occurrences, the delivery outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class AlertRow(Base):
    """One alert per fingerprint: firing, resolved or inhibited, with its occurrence count."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("project", "fingerprint"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(256))
    project: Mapped[str] = mapped_column(String(128))
    labels: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(256))
    deployment: Mapped[str | None] = mapped_column(String(300))
    model_version: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertReceiptRow(Base):
    """An occurrence already counted: a re-sent alert (same id) is not counted twice."""

    __tablename__ = "alert_receipts"

    occurrence: Mapped[str] = mapped_column(String(128), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxRow(Base):
    """A delivery owed to a receiver, kept until sent (at least once) or out of attempts.

    ``key`` is the delivery's idempotency key: sent as ``Idempotency-Key``, the e-mail's
    Message-ID or the bus message id, so a receiver can drop a repeat.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (Index("ix_alert_outbox_due", "project", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    receiver: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(32))
    group_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
