"""The home's identity row: which home this database is, who owns it, when it was made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class HomeInfo(Base):
    """One row written by ``ghaf init``: the home's id, its owner and its creation time.

    ``owner`` is the operating-system account that ran ``ghaf init``: in embedded mode
    the only person who acts without a credential. ``ghaf admin transfer`` changes it.
    """

    __tablename__ = "home_info"

    id: Mapped[int] = mapped_column(primary_key=True)
    home_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(256), nullable=True)
