"""Tables of the lineage concern: directed edges between node ids."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class LineageEdgeRow(Base):
    """``src`` fed ``dst`` (``relation`` says how: input, output, trained_on, serves...)."""

    __tablename__ = "lineage_edges"
    __table_args__ = (UniqueConstraint("src", "dst", "relation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    src: Mapped[str] = mapped_column(String(300), index=True)
    dst: Mapped[str] = mapped_column(String(300), index=True)
    relation: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
