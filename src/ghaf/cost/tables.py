"""The table of resource usage: one row per run, step attempt, batch job or serving segment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class ResourceUsageRow(Base):
    """What one piece of work held and used; keyed by kind and ref (recording it again
    replaces it: a step attempt's retry of its own record, a server's last segment)."""

    __tablename__ = "resource_usage"
    __table_args__ = (
        UniqueConstraint("kind", "ref"),
        Index("ix_resource_usage_ended_at", "ended_at"),
        Index("ix_resource_usage_project_ended_at", "project", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(String(128))
    user: Mapped[str] = mapped_column(String(256))
    model: Mapped[str | None] = mapped_column(String(256))
    deployment: Mapped[str | None] = mapped_column(String(300))
    parent: Mapped[str | None] = mapped_column(String(200))
    within: Mapped[str | None] = mapped_column(String(240))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
    wall_s: Mapped[float] = mapped_column(Float)
    cpu_s: Mapped[float] = mapped_column(Float)
    cpu_request: Mapped[float] = mapped_column(Float)
    memory_peak_gb: Mapped[float] = mapped_column(Float)
    memory_gb_hours: Mapped[float] = mapped_column(Float)
    memory_request_gb: Mapped[float] = mapped_column(Float)
    gpu_class: Mapped[str | None] = mapped_column(String(64))
    gpu_s: Mapped[float] = mapped_column(Float)
    gpu_request: Mapped[float] = mapped_column(Float)
    replicas: Mapped[int] = mapped_column(Integer)
    predictions: Mapped[int] = mapped_column(BigInteger)
    labels: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
