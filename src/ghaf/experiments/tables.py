"""A/B experiment and canary tables (``ab_``: ``experiments`` is tracking's)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String, Text, UniqueConstraint
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


class CanaryRow(Base):
    """A canary: a candidate version ramped against the champion on a deployment by a
    rollout plan (JSON), its state, step and the serving counters at the step's start.

    Every change is a governed ``traffic.canary_*`` operation; each evaluation's verdict
    is a :class:`CanaryDecisionRow`.
    """

    __tablename__ = "canaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(256), index=True)
    champion: Mapped[str] = mapped_column(String(300))
    candidate: Mapped[str] = mapped_column(String(300))
    plan: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(Text)
    baseline: Mapped[str | None] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    step_started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class CanaryDecisionRow(Base):
    """One verdict on a canary (an evaluation's, or a person's move): the action, the
    step and weights, the window it looked at, and every value, threshold and sample
    size it used (``evidence``, JSON). Written once, never changed."""

    __tablename__ = "canary_decisions"
    __table_args__ = (UniqueConstraint("canary_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    canary_id: Mapped[int] = mapped_column(Integer, index=True)
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32))
    step: Mapped[int] = mapped_column(Integer)
    weight: Mapped[float] = mapped_column(Float)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reasons: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(256))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
