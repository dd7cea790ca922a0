"""Tables of the monitoring concern: stored reference profiles, by name and version."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class ReferenceProfileRow(Base):
    """A reference profile: the artifact holding it, where it came from, its project.

    A name belongs to the project of its first version (``save_profile`` refuses a save
    in another), so ``profile:NAME`` means one thing to every drift check.
    """

    __tablename__ = "monitoring_profiles"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    project: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column()
    digest: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(512))
    num_rows: Mapped[int] = mapped_column(BigInteger)
    num_columns: Mapped[int] = mapped_column()
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
