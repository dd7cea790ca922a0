"""Tables of the pipelines concern: pipeline runs and their step runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class PipelineRunRow(Base):
    """One run of a pipeline: status, executor, what triggered it, params, timing."""

    __tablename__ = "pipeline_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    pipeline: Mapped[str] = mapped_column(String(128), index=True)
    project: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    executor: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(200), index=True)
    params: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)


class StepRunRow(Base):
    """One step of a pipeline run: attempts, cache key, output artifact, log, resources used."""

    __tablename__ = "pipeline_step_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("pipeline_runs.id"), index=True)
    step: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[str] = mapped_column(Text)
    output_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    output_kind: Mapped[str | None] = mapped_column(String(16), nullable=True)
    log_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    resources: Mapped[str] = mapped_column(Text)
    cpu_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_rss_mb: Mapped[float | None] = mapped_column(Float, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
