"""Tables of the model registry: models, versions, aliases, approvals and gate policies."""

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
    author_credential: Mapped[str | None] = mapped_column(String(256), nullable=True)
    author_minted_by: Mapped[str | None] = mapped_column(String(256), nullable=True)


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
    credential: Mapped[str | None] = mapped_column(String(256), nullable=True)
    flags: Mapped[str | None] = mapped_column(Text, nullable=True)


class GatePolicyRow(Base):
    """One version of a stored gate policy (its YAML text as given); versions 1, 2, ...

    ``project`` owns the name: every later version is added under that project's roles.
    """

    __tablename__ = "gate_policies"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    project: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GateAttachmentRow(Base):
    """A policy version a model (``kind`` "model") or a whole project must pass at promotion.

    The version is pinned: a new version of the policy changes no attached gate until it is
    attached again, by someone allowed to in the target's project.
    """

    __tablename__ = "gate_attachments"
    __table_args__ = (UniqueConstraint("policy", "kind", "target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy: Mapped[str] = mapped_column(String(128))
    policy_version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(256), index=True)
    project: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GateVerdictRow(Base):
    """A policy's verdict on a version: pass/fail and each rule's threshold and measured value."""

    __tablename__ = "gate_verdicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    policy: Mapped[str] = mapped_column(String(128))
    policy_version: Mapped[int] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean)
    rules: Mapped[str] = mapped_column(Text)
    """JSON list of ``{rule, passed, threshold, measured, reason}``."""
    purpose: Mapped[str] = mapped_column(String(128))
    """What the verdict was for, e.g. ``stage production`` or ``alias champion``."""
    evaluated_by: Mapped[str] = mapped_column(String(256))
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime())
