"""The table of SLO definitions, one row per SLO name in a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class SLODefinitionRow(Base):
    """An SLO of a deployment; redefining a name replaces its objective and rule."""

    __tablename__ = "slo_definitions"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    deployment: Mapped[str] = mapped_column(String(300))
    sli: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float] = mapped_column(Float)
    window_days: Mapped[int] = mapped_column(Integer)
    threshold_ms: Mapped[float | None] = mapped_column(Float)
    min_requests_per_hour: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SLOScrapeRow(Base):
    """Where a scheduled SLO reads its counters: the ``ghaf serve`` base URLs of its
    deployment, read every ``every_s`` seconds by the live loop."""

    __tablename__ = "slo_scrapes"
    __table_args__ = (UniqueConstraint("project", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    targets: Mapped[str] = mapped_column(Text)
    every_s: Mapped[int] = mapped_column(Integer)
    next_due: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(Text, default="")
    firing: Mapped[str] = mapped_column(Text, default="[]")
    created_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SLOSampleRow(Base):
    """One read of one target's cumulative counters for one SLO (a Prometheus sample)."""

    __tablename__ = "slo_samples"
    __table_args__ = (Index("ix_slo_samples_project_name_ts", "project", "name", "ts"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(512))
    ts: Mapped[float] = mapped_column(Float)
    good: Mapped[float] = mapped_column(Float)
    total: Mapped[float] = mapped_column(Float)
