"""Tables of experiment tracking: experiments, runs, params, tags, metric points, artifacts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime

_ID = BigInteger().with_variant(Integer, "sqlite")


class ExperimentRow(Base):
    """A named group of runs."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunRow(Base):
    """One run: who, when, status, the environment it ran in; nested under a parent."""

    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_experiment_start", "experiment_id", "start_time"),
        Index("ix_runs_start_time", "start_time"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    parent_run_id: Mapped[str | None] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16))
    user: Mapped[str] = mapped_column(String(256))
    project: Mapped[str] = mapped_column(String(128))
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime())
    env: Mapped[str] = mapped_column(Text)


class RunParamRow(Base):
    """A parameter; set once per run."""

    __tablename__ = "run_params"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTagRow(Base):
    """A tag; the last value set wins."""

    __tablename__ = "run_tags"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricChunkRow(Base):
    """The points of one metric that one flush wrote, packed column-wise.

    ``steps``, ``values`` and ``timestamps`` are little-endian int64 / float64 / float64
    arrays of ``count`` entries (timestamps in epoch seconds). One row per key per
    flush keeps a flush of 10,000 points to a handful of inserts.
    """

    __tablename__ = "run_metrics"
    __table_args__ = (Index("ix_run_metrics_run_key", "run_id", "key"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(250))
    count: Mapped[int] = mapped_column(Integer)
    min_step: Mapped[int] = mapped_column(BigInteger)
    max_step: Mapped[int] = mapped_column(BigInteger)
    steps: Mapped[bytes] = mapped_column(LargeBinary)
    values: Mapped[bytes] = mapped_column(LargeBinary)
    timestamps: Mapped[bytes] = mapped_column(LargeBinary)


class LatestMetricRow(Base):
    """Per run and key: the latest point (highest step, then time), the min and the max."""

    __tablename__ = "run_latest_metrics"
    __table_args__ = (Index("ix_run_latest_metrics_key_value", "key", "value"),)

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    step: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[float] = mapped_column(Float)
    min_value: Mapped[float] = mapped_column(Float)
    max_value: Mapped[float] = mapped_column(Float)


class RunArtifactRow(Base):
    """A file logged by a run, stored content-addressed."""

    __tablename__ = "run_artifacts"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)


class RunInputRow(Base):
    """A dataset or feature version a run used (also a lineage edge)."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node: Mapped[str] = mapped_column(String(512), primary_key=True)
