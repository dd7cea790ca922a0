"""Tables of the monitoring concern: stored reference profiles, monitor schedules and
the results of their runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class ReferenceProfileRow(Base):
    """A reference profile: the artifact holding it, where it came from, its project.

    A name belongs to the project of its first version (``save_profile`` refuses a save
    in another), so ``profile:NAME`` means one thing to every drift check.
    """

    __tablename__ = "monitoring_profiles"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    project: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(512))
    num_rows: Mapped[int] = mapped_column(BigInteger)
    num_columns: Mapped[int] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MonitorScheduleRow(Base):
    """A deployment's monitor: where its prediction log is, how often it runs, over what
    window, against what reference, with which thresholds (``options``, JSON)."""

    __tablename__ = "monitor_schedules"
    __table_args__ = (UniqueConstraint("project", "deployment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(300))
    model: Mapped[str] = mapped_column(String(256))
    reference: Mapped[str | None] = mapped_column(String(512))
    log_dir: Mapped[str] = mapped_column(String(1024))
    interval_s: Mapped[int] = mapped_column()
    window_s: Mapped[int] = mapped_column()
    options: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean)
    next_run_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MonitorResultRow(Base):
    """What one monitor run found for one model version over one window.

    ``report`` holds the drift, quality, prediction-drift and estimate summaries (JSON);
    ``performance`` is filled once labels arrive (``labels_watermark``: the last outcome
    id seen when it was computed, so a later run recomputes it only when more came in).
    """

    __tablename__ = "monitor_results"
    __table_args__ = (
        Index("ix_monitor_results_schedule_end", "schedule_id", "window_end"),
        Index("ix_monitor_results_project_deployment", "project", "deployment", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column()
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(300))
    model_version: Mapped[str] = mapped_column(String(300))
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime] = mapped_column(UTCDateTime())
    run_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(32))
    breaches: Mapped[str] = mapped_column(Text)
    predictions: Mapped[int] = mapped_column(BigInteger)
    requests: Mapped[int] = mapped_column(BigInteger)
    drifted_features: Mapped[str] = mapped_column(Text)
    report: Mapped[str] = mapped_column(Text)
    performance: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[int] = mapped_column(BigInteger)
    labels_watermark: Mapped[int] = mapped_column(BigInteger)
    alerts: Mapped[str] = mapped_column(Text)
    seconds: Mapped[float] = mapped_column(Float)
    note: Mapped[str] = mapped_column(Text)
