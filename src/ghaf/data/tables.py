"""Tables of the data concern: dataset versions and their parts, stream keys, transforms."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ghaf.metadata.base import Base, UTCDateTime


class DatasetVersionRow(Base):
    """One immutable dataset version: a Parquet artifact plus its schema and profile."""

    __tablename__ = "data_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    project: Mapped[str] = mapped_column(String(128))
    digest: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    num_rows: Mapped[int] = mapped_column(BigInteger)
    schema_b64: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(Text)
    column_tags: Mapped[str] = mapped_column(Text)
    residency: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    inputs: Mapped[str] = mapped_column(Text)
    validation: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetPartRow(Base):
    """A Parquet part a version adds after the parts of its ``base`` version (an append).

    A version with no part rows is one file, its own ``digest``; one with part rows reads
    as the parts of ``base`` followed by its own, in ``position`` order.
    """

    __tablename__ = "data_version_parts"
    __table_args__ = (UniqueConstraint("name", "version", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int] = mapped_column(Integer)
    base: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    num_rows: Mapped[int] = mapped_column(BigInteger)


class StreamKeyRow(Base):
    """An idempotency key already written by a stream ingest (exactly-once in the dataset)."""

    __tablename__ = "data_stream_keys"
    __table_args__ = (UniqueConstraint("dataset", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    dataset: Mapped[str] = mapped_column(String(128))
    key: Mapped[str] = mapped_column(String(256))
    version: Mapped[int] = mapped_column(Integer)


class TransformRow(Base):
    """A transform run: its code, code digest, parameters, inputs and output."""

    __tablename__ = "data_transforms"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(Text)
    code_digest: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    inputs: Mapped[str] = mapped_column(Text)
    output: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
