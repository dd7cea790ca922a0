"""Tables of the closed loop: each deployment's retraining policy, and each time an
alert set the loop going (a retraining run and where it stands)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class RetrainPolicyRow(Base):
    """What a drift or model-quality alert on a deployment sets going: the pipeline that
    retrains it (one the operator declared in ``settings.pipelines``), its parameters, the
    trigger's cooldown and maximum frequency, and the candidate's canary plan (JSON)."""

    __tablename__ = "retrain_policies"
    __table_args__ = (UniqueConstraint("project", "deployment"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(300))
    pipeline: Mapped[str] = mapped_column(String(512))
    params: Mapped[str] = mapped_column(Text)
    plan: Mapped[str] = mapped_column(Text)
    alerts: Mapped[str] = mapped_column(Text)
    cooldown_s: Mapped[float] = mapped_column(Float)
    max_runs: Mapped[int | None] = mapped_column(Integer)
    window_s: Mapped[float] = mapped_column(Float)
    enabled: Mapped[bool] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RetrainRunRow(Base):
    """One alert the loop acted on: skipped (and why), or retrained -> registered ->
    awaiting approval -> canary -> promoted or rolled back. ``event`` (the bus message id)
    is unique: an event delivered twice is acted on once."""

    __tablename__ = "retrain_runs"
    __table_args__ = (
        UniqueConstraint("event"),
        Index("ix_retrain_runs_project_deployment", "project", "deployment", "id"),
        Index("ix_retrain_runs_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128))
    deployment: Mapped[str] = mapped_column(String(300))
    event: Mapped[str] = mapped_column(String(256))
    subject: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str | None] = mapped_column(String(300))
    incident: Mapped[str | None] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pipeline_run: Mapped[str | None] = mapped_column(String(32))
    candidate: Mapped[str | None] = mapped_column(String(300))
    champion: Mapped[str | None] = mapped_column(String(300))
    canary: Mapped[str | None] = mapped_column(String(128))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
