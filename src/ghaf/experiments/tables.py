"""Tables of A/B experiments over deployments (``ab_``: ``experiments`` is tracking's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class AbExperimentRow(Base):
    """An experiment on a deployment: variants (refs -> weights, JSON), its sticky
    assignment (salt, holdout, unit source), metrics, state, and the recorded decision.

    ``decision`` is the JSON of the statistics engine's Decision, written once by
    ``decide``; every change is audited by the spine.
    """

    __tablename__ = "ab_experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(256), index=True)
    variants: Mapped[str] = mapped_column(Text)
    control: Mapped[str] = mapped_column(String(300))
    shadows: Mapped[str] = mapped_column(Text)
    holdout: Mapped[float] = mapped_column(Float)
    salt: Mapped[str] = mapped_column(String(128))
    unit_kind: Mapped[str] = mapped_column(String(16))
    unit_name: Mapped[str] = mapped_column(String(128))
    goal: Mapped[str] = mapped_column(String(128))
    guardrails: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
