"""Which datasets exist and in which project, and a version as one JSON document.

The CLI and the control plane print the same documents (``ghaf data ... --output json``
is the HTTP API's shape), so both build them here. A dataset version belongs to the
project its write was governed in (``dataset_projects`` and ``version_projects`` live
in :mod:`ghaf.data.store`, which holds a dataset name to its first project).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow.parquet as pq

from ghaf.data.base import DatasetVersion
from ghaf.data.store import dataset_parquet_path, get_dataset
from ghaf.data.store import dataset_projects as dataset_projects
from ghaf.data.store import version_projects as version_projects
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.platform import Platform

MAX_PREVIEW_ROWS = 1000
"""Rows one preview may show."""


def project_of(platform: Platform, version: DatasetVersion) -> str:
    """The project ``version`` belongs to.

    Raises:
        NotFoundError: the version is not recorded (it vanished meanwhile).
    """
    project = version_projects(platform, version.name).get(version.version)
    if project is None:
        raise NotFoundError(f"dataset version {version.ref} does not exist")
    return project


def version_document(version: DatasetVersion, project: str) -> dict[str, Any]:
    """A version as ``ghaf data show --output json`` and ``GET /datasets/REF`` write it:
    schema, tags, the (redacted) profile and the contract result of its ingest."""
    return {
        "name": version.name,
        "version": version.version,
        "ref": version.ref,
        "project": project,
        "digest": version.digest,
        "size": version.size,
        "rows": version.num_rows,
        "schema": {f.name: str(f.type) for f in version.schema},
        "column_tags": version.column_tags,
        "residency": version.residency,
        "source": version.source,
        "inputs": list(version.inputs),
        "created_at": version.created_at,
        "created_by": version.created_by,
        "profile": version.profile,
        "validation": version.validation,
    }


def _cell(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)  # Decimal, timedelta...


def preview(
    platform: Platform, ref: str, *, limit: int = 20, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    """The first ``limit`` rows of a version (only ``columns`` when given), as JSON values.

    Reads one batch from the verified Parquet file; never more than
    :data:`MAX_PREVIEW_ROWS` rows. Authorize the read (``dataset.read_pii`` for a
    sensitive version) before calling this.

    Raises:
        InvalidInputError: ``limit`` out of range, or a column the version lacks.
        NotFoundError: no such version.
    """
    if not 1 <= limit <= MAX_PREVIEW_ROWS:
        raise InvalidInputError(
            f"limit {limit} is out of range", hint=f"use 1 to {MAX_PREVIEW_ROWS} rows"
        )
    version = get_dataset(platform, ref)
    names = list(columns) if columns else version.schema.names
    unknown = [c for c in names if c not in version.schema.names]
    if unknown:
        raise InvalidInputError(
            f"dataset {version.ref} has no column {unknown[0]!r}",
            hint=f"columns are {', '.join(version.schema.names)}",
        )
    file = pq.ParquetFile(dataset_parquet_path(platform, version.ref))
    rows: list[list[Any]] = []
    for batch in file.iter_batches(batch_size=limit, columns=names):
        rows = [[_cell(v) for v in row.values()] for row in batch.slice(0, limit).to_pylist()]
        break
    return {"ref": version.ref, "columns": names, "rows": rows, "total_rows": version.num_rows}
