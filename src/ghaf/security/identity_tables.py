"""Tables of identity: principals, group membership, API tokens (hashed) and role bindings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class PrincipalRow(Base):
    """A user, group or service account known to Ghaf."""

    __tablename__ = "identity_principals"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GroupMemberRow(Base):
    """``member`` belongs to the group principal ``group``."""

    __tablename__ = "identity_group_members"
    __table_args__ = (UniqueConstraint("group_name", "member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    group_name: Mapped[str] = mapped_column(String(256))
    member: Mapped[str] = mapped_column(String(256), index=True)


class ApiTokenRow(Base):
    """An API token: only the SHA-256 of its secret is kept; ``token_id`` is public."""

    __tablename__ = "identity_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(256), index=True)
    project: Mapped[str] = mapped_column(String(128))
    roles: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RoleBindingRow(Base):
    """``subject`` (a principal or ``group:NAME``) has ``role`` in ``project`` ('*': all)."""

    __tablename__ = "identity_role_bindings"
    __table_args__ = (
        UniqueConstraint("subject", "role", "project", "effect"),
        Index("ix_identity_role_bindings_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(64))
    project: Mapped[str] = mapped_column(String(128))
    effect: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
