"""Tables of audit shipping: one cursor per sink, advanced only after the sink acknowledged."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class SinkCursorRow(Base):
    """Where one sink stands in the audit trail, and how its deliveries go.

    ``seq``/``record_hash`` are the last record the sink acknowledged (0 and the genesis
    hash before the first); ``attempts`` counts failed deliveries since the last success,
    and ``next_attempt_at`` is when the backoff lets the next one go.
    """

    __tablename__ = "audit_sink_cursors"

    sink: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(512))
    seq: Mapped[int] = mapped_column(BigInteger)
    record_hash: Mapped[str] = mapped_column(String(64))
    shipped: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
