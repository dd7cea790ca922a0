"""Tables of the feature store: versioned definitions and materialization runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class FeatureDefinitionRow(Base):
    """One version of an entity, feature view, on-demand view or feature service.

    Names are the home's (the online store, lineage and materializations key on them);
    a name belongs to the project of its first version, and every version keeps it.
    """

    __tablename__ = "feature_definitions"
    __table_args__ = (UniqueConstraint("kind", "name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128), index=True)
    project: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MaterializationRow(Base):
    """A materialization of one feature view into the online store, with its statistics."""

    __tablename__ = "feature_materializations"

    id: Mapped[int] = mapped_column(primary_key=True)
    view: Mapped[str] = mapped_column(String(128), index=True)
    view_version: Mapped[int] = mapped_column(Integer)
    store_url: Mapped[str] = mapped_column(String(512))
    mode: Mapped[str] = mapped_column(String(16))
    start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    watermark: Mapped[datetime] = mapped_column(UTCDateTime())
    rows: Mapped[int] = mapped_column(BigInteger)
    stats: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SealingKeyRow(Base):
    """The data key that seals one pii view's values in one online store.

    The key itself is an artifact in the encrypted artifact store (wrapped by the home's
    KEK, so key rotation and shredding cover it); this row names it. A row's presence
    says the view is stored sealed in that store.
    """

    __tablename__ = "feature_sealing_keys"
    __table_args__ = (UniqueConstraint("store_url", "view"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    store_url: Mapped[str] = mapped_column(String(512))
    view: Mapped[str] = mapped_column(String(128))
    key_digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
