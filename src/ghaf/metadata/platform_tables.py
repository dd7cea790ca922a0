"""The home's identity row: which home this database belongs to and when it was made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class HomeInfo(Base):
    """One row: the home's id and creation time, written by ``ghaf init``."""

    __tablename__ = "home_info"

    id: Mapped[int] = mapped_column(primary_key=True)
    home_id: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
