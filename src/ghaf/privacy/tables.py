"""Tables of the privacy concern: erasure certificates and retention runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class ErasureCertificateRow(Base):
    """One signed erasure certificate: what was destroyed, rewritten and left for review."""

    __tablename__ = "erasure_certificates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    issued_by: Mapped[str] = mapped_column(String(256))
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[str] = mapped_column(Text)


class ErasedArtifactRow(Base):
    """An artifact digest that erasure or retention destroyed, and by which record."""

    __tablename__ = "erased_artifacts"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    node: Mapped[str] = mapped_column(String(300))
    reason: Mapped[str] = mapped_column(String(64))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RetentionRunRow(Base):
    """One retention run (or dry run): the rules it applied and what it removed."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(256))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    rules: Mapped[str] = mapped_column(Text)
    removed: Mapped[str] = mapped_column(Text)
