"""Records and interfaces of the data concern: dataset versions, references and sources."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from ghaf.errors import InvalidInputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset: a Parquet artifact and what is known about it."""

    name: str
    version: int
    digest: str
    num_rows: int
    schema: pa.Schema
    profile: dict[str, Any]
    column_tags: dict[str, str]
    residency: str | None
    created_at: datetime
    source: str = ""
    inputs: tuple[str, ...] = ()
    size: int = 0
    created_by: str = ""
    validation: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"

    @property
    def node(self) -> str:
        """The lineage node id, ``dataset:name:version``."""
        return f"dataset:{self.name}:{self.version}"


@dataclass(frozen=True)
class Part:
    """One encrypted Parquet artifact of a dataset version (a version reads its parts in
    order; a version written in one piece is one part, its own digest)."""

    digest: str
    size: int
    num_rows: int


class Source(Protocol):
    """Something that yields Arrow record batches: a file, a query, a table format, a stream.

    ``describe()`` is the source description stored with the version; ``batches()``
    streams the data so nothing needs to fit in memory.
    """

    def describe(self) -> str: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...


def check_name(name: str) -> str:
    """Validate a dataset name (letters, digits, '_', '-', '.'; no ':')."""
    if not _NAME.match(name):
        raise InvalidInputError(
            f"dataset name {name!r} is invalid",
            hint="use letters, digits, '_', '-' or '.' (up to 128), first a letter or digit",
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split ``name``, ``name:latest``, ``name:3`` or ``dataset:name:3`` into (name, version)."""
    text = ref.removeprefix("dataset:")
    name, _, version = text.partition(":")
    check_name(name)
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidInputError(
            f"dataset reference {ref!r} has an invalid version {version!r}",
            hint="use NAME, NAME:latest or NAME:N with N a positive integer",
        )
    return name, int(version)


def schema_to_text(schema: pa.Schema) -> str:
    """Serialize an Arrow schema (with metadata) to base64 IPC bytes."""
    return base64.b64encode(schema.serialize().to_pybytes()).decode("ascii")


def schema_from_text(text: str) -> pa.Schema:
    """Inverse of :func:`schema_to_text`."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text)))
