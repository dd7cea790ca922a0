"""Tables of serving: deployment records (what is served under a name, by whom, how split)
and the outcomes (labels) reported for served predictions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class DeploymentRow(Base):
    """A named deployment: model versions with traffic weights, a shadow, a status.

    ``models`` is JSON ``[{"ref": "fraud:3", "weight": 90.0}, ...]`` with concrete
    versions (aliases resolved when the record was written); each change bumps
    ``revision`` and is audited by the spine. ``routing`` is JSON of the running
    experiment's sticky assignment (id, salt, variant weights, holdout, control, unit
    source, shadows), or null: servers poll ``revision`` and apply both.
    """

    __tablename__ = "serving_deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    models: Mapped[str] = mapped_column(Text)
    shadow: Mapped[str | None] = mapped_column(String(300))
    routing: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutcomeRow(Base):
    """An outcome (label) of a served prediction, joined to it by request id or unit id.

    Written by ``POST /v2/feedback`` and by batch imports; a label may arrive days after
    its prediction: the join is by id, not by time.
    """

    __tablename__ = "serving_outcomes"
    __table_args__ = (
        Index("ix_serving_outcomes_model_request", "model", "request_id"),
        Index("ix_serving_outcomes_model_unit", "model", "unit"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    project: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str | None] = mapped_column(String(256))
    unit: Mapped[str | None] = mapped_column(String(256))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[str] = mapped_column(String(300))
    reported_by: Mapped[str] = mapped_column(String(256))
