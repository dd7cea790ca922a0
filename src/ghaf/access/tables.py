"""Tables of the access concern: one-time login links for the web UI (hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class LoginLinkRow(Base):
    """A one-time UI login link for the home's owner: only the SHA-256 of its secret is
    kept; ``used_at`` is set when a browser opens it (it never opens twice)."""

    __tablename__ = "ui_login_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    principal: Mapped[str] = mapped_column(String(256))
    credential: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    used_from: Mapped[str | None] = mapped_column(String(256), nullable=True)
