"""Tables of the scheduling concern: project quotas, the job queue, fair-share passes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime

VIRTUAL_TIME = ""
"""The fair-share row that holds the scheduler's virtual time (no project is named so)."""


class ProjectQuotaRow(Base):
    """A project's quotas over a rolling period, its concurrent jobs and fair-share weight."""

    __tablename__ = "project_quotas"

    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    cpu_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    gpu_hours: Mapped[float | None] = mapped_column(Float, nullable=True)
    period_s: Mapped[int] = mapped_column(Integer)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class QueuedJobRow(Base):
    """A job submitted to the queue: what to run, what it holds, where it stands."""

    __tablename__ = "queued_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    project: Mapped[str] = mapped_column(String(128), index=True)
    target: Mapped[str] = mapped_column(String(256))
    params: Mapped[str] = mapped_column(Text)
    cpus: Mapped[float] = mapped_column(Float)
    gpus: Mapped[float] = mapped_column(Float)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), index=True)
    submitted_by: Mapped[str] = mapped_column(String(256))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
    run_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    result: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class FairSharePassRow(Base):
    """A project's pass in start-time fair queuing (the row ``""`` is the virtual time)."""

    __tablename__ = "fair_share_passes"

    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    pass_value: Mapped[float] = mapped_column(Float, default=0.0)
