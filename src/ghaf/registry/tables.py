"""Tables of the model registry: registered models, versions, aliases and approvals."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class RegisteredModelRow(Base):
    """A model name; its versions are numbered 1, 2, ... in registration order."""

    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    project: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelVersionRow(Base):
    """One registered version: its files (path -> digest, size), flavor, stage, card..."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    flavor: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(1024))
    run_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text)
    example_digest: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[str] = mapped_column(Text)
    files: Mapped[str] = mapped_column(Text)
    signed: Mapped[bool] = mapped_column(Boolean)
    lineage: Mapped[str] = mapped_column(Text)
    card: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelAliasRow(Base):
    """An alias names exactly one version of a model (the primary key makes it so)."""

    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class ModelApprovalRow(Base):
    """An approval of a version by someone other than its author."""

    __tablename__ = "model_approvals"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    approver: Mapped[str] = mapped_column(String(256))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
