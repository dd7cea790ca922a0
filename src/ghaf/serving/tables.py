"""Tables of serving: deployment records (what is served under a name, by whom, how split)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class DeploymentRow(Base):
    """A named deployment: model versions with traffic weights, a shadow, a status.

    ``models`` is JSON ``[{"ref": "fraud:3", "weight": 90.0}, ...]`` with concrete
    versions (aliases resolved when the record was written); each change bumps
    ``revision`` and is audited by the spine.
    """

    __tablename__ = "serving_deployments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    models: Mapped[str] = mapped_column(Text)
    shadow: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
