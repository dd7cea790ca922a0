"""Tables of the release path: release policies (versioned per project) and break-glass requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class ReleasePolicyRow(Base):
    """One version of a project's release policy (the YAML as given); the newest is in force."""

    __tablename__ = "release_policies"
    __table_args__ = (UniqueConstraint("project", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BreakGlassRow(Base):
    """An emergency request to put a version on a protected alias or stage past the policy.

    It takes effect only when a second authenticated person confirms it.
    """

    __tablename__ = "release_break_glass"

    id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)
    target_kind: Mapped[str] = mapped_column(String(8))  # alias | stage
    target: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(256))
    requested_via: Mapped[str] = mapped_column(String(256))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))  # pending | done
    confirmed_by: Mapped[str | None] = mapped_column(String(256), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
