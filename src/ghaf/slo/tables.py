"""The table of SLO definitions, one row per SLO name in a project."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, UniqueConstraint
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
