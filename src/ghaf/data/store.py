"""Dataset versions: stream batches to Parquet (zstd) with a profile, store, record, read back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import func, select

from ghaf.artifacts.scratch import scratch_dir
from ghaf.data.base import (
    DatasetVersion,
    check_name,
    parse_ref,
    schema_from_text,
    schema_to_text,
)
from ghaf.data.profile import ProfileBuilder, redact_profile
from ghaf.data.residency import check_derived_residency
from ghaf.data.tables import DatasetVersionRow
from ghaf.errors import (
    AlreadyExistsError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    name_taken,
)
from ghaf.lineage.graph import NODE_KINDS, link
from ghaf.lineage.openlineage import DatasetRef, LineageSink, build_run_event
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

_FLUSH_ROWS = 1 << 20
_FLUSH_BYTES = 32 << 20


@dataclass
class Staged:
    """A dataset written to a local temporary Parquet file, not yet stored or recorded."""

    path: Path
    schema: pa.Schema
    num_rows: int
    profile: dict[str, Any]


def _conform(batch: pa.RecordBatch, schema: pa.Schema, where: str) -> pa.RecordBatch:
    if batch.schema.equals(schema):
        return batch
    missing = [name for name in schema.names if name not in batch.schema.names]
    if missing:
        raise InvalidInputError(
            f"{where}: column {missing[0]!r} is missing from a later batch",
            hint="every batch of a dataset must have the same columns",
        )
    columns = []
    for field in schema:
        column = batch.column(field.name)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InvalidInputError(
                    f"{where}: column {field.name!r} has type {column.type}, expected {field.type}",
                    hint="make every batch use the same types",
                ) from exc
        columns.append(column)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _batches_of(data: pa.Table | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=65_536)
    else:
        yield from data


def stage(
    data: pa.Table | Iterable[pa.RecordBatch],
    directory: Path,
    *,
    schema: pa.Schema | None = None,
    where: str = "data",
) -> Staged:
    """Stream ``data`` into a zstd Parquet file in ``directory``, profiling in the same pass.

    Memory stays bounded: batches are buffered up to ~32 MiB per row group.
    """
    path = directory / "data.parquet"
    writer: pq.ParquetWriter | None = None
    builder: ProfileBuilder | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = pending_bytes = rows = 0

    def flush() -> None:
        nonlocal pending, pending_rows, pending_bytes
        if writer is not None and pending:
            writer.write_table(pa.Table.from_batches(pending), row_group_size=_FLUSH_ROWS)
        pending, pending_rows, pending_bytes = [], 0, 0
        # The allocator keeps freed blocks; hand them back so RSS tracks what is live.
        pa.default_memory_pool().release_unused()

    try:
        for raw in _batches_of(data):
            if schema is None:
                schema = raw.schema
            batch = _conform(raw, schema, where)
            if writer is None:
                writer = pq.ParquetWriter(path, schema, compression="zstd")
                builder = ProfileBuilder(schema)
            assert builder is not None  # nosec B101 - type narrowing
            builder.update(batch)
            pending.append(batch)
            rows += batch.num_rows
            pending_rows += batch.num_rows
            pending_bytes += batch.nbytes
            if pending_rows >= _FLUSH_ROWS or pending_bytes >= _FLUSH_BYTES:
                flush()
        if schema is None:
            raise InvalidInputError(
                f"{where}: no data and no schema", hint="give at least one batch or a schema"
            )
        if writer is None:
            writer = pq.ParquetWriter(path, schema, compression="zstd")
            builder = ProfileBuilder(schema)
        flush()
    finally:
        if writer is not None:
            writer.close()
    assert builder is not None  # nosec B101 - type narrowing
    return Staged(path, schema, rows, builder.result())


@contextmanager
def staging_dir(platform: Platform) -> Iterator[Path]:
    """A private scratch directory in the home, marked with this process and removed
    afterwards (nothing partial stays; a crash's leftover is found by ``ghaf doctor``)."""
    with scratch_dir(platform.settings.home, "stage-") as directory:
        yield directory


def _to_version(row: DatasetVersionRow) -> DatasetVersion:
    return DatasetVersion(
        name=row.name,
        version=row.version,
        digest=row.digest,
        num_rows=row.num_rows,
        schema=schema_from_text(row.schema_b64),
        profile=json.loads(row.profile),
        column_tags=json.loads(row.column_tags),
        residency=row.residency,
        created_at=row.created_at,
        source=row.source,
        inputs=tuple(json.loads(row.inputs)),
        size=row.size,
        created_by=row.created_by,
        validation=json.loads(row.validation) if row.validation else None,
    )


def _input_node(platform: Platform, ref: str) -> str:
    kind = ref.partition(":")[0]
    if kind in NODE_KINDS:
        return ref
    return get_dataset(platform, ref).node


def check_version_residency(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    inputs: Sequence[str] = (),
    column_tags: Mapping[str, str] | None = None,
    residency: str | None = None,
    own_tags: Mapping[str, list[str]] | None = None,
    action: str = "dataset.write",
) -> list[str]:
    """Refuse a new version of ``name`` whose tags (its own and its inputs') may not be
    stored in the artifact store's region; returns the inputs as lineage nodes.

    Called before the data is staged or stored, so a refused write leaves no byte.
    ``own_tags`` are further tags of the data (a classified input file); ``action``
    names the refused write in the audit record when no operation is running yet.

    Raises:
        PolicyViolationError: naming the tag and the region (audited).
    """
    nodes = [_input_node(platform, ref) for ref in inputs]
    own: dict[str, list[str]] = {k: list(v) for k, v in (own_tags or {}).items()}
    for column, tag in sorted((column_tags or {}).items()):
        own.setdefault(tag, []).append(f"column {column}")
    if residency:
        own.setdefault(f"resident:{residency}", []).append("dataset residency")
    check_derived_residency(
        platform,
        nodes,
        platform.artifacts.region,
        own_tags=own,
        actor=actor,
        resource=f"dataset:{name}",
        action=action,
    )
    return nodes


def _check_tagged_columns(name: str, tags: Mapping[str, str], schema: pa.Schema) -> None:
    unknown = sorted(set(tags) - set(schema.names))
    if unknown:
        raise InvalidInputError(
            f"column tag for {unknown[0]!r}: no such column in dataset {name!r}",
            hint=f"columns are {', '.join(schema.names)}",
        )


def dataset_projects(platform: Platform) -> list[dict[str, Any]]:
    """Every dataset with its project and latest version there, by name then project."""
    with platform.read_session() as session:
        rows = session.execute(
            select(
                DatasetVersionRow.name,
                DatasetVersionRow.project,
                func.max(DatasetVersionRow.version),
            )
            .group_by(DatasetVersionRow.name, DatasetVersionRow.project)
            .order_by(DatasetVersionRow.name, DatasetVersionRow.project)
        ).all()
    return [{"name": name, "latest": latest, "project": project} for name, project, latest in rows]


def version_projects(platform: Platform, name: str) -> dict[int, str]:
    """Version -> project, for every version of dataset ``name`` (empty when none)."""
    dataset, _ = parse_ref(name)
    with platform.read_session() as session:
        rows = session.execute(
            select(DatasetVersionRow.version, DatasetVersionRow.project).where(
                DatasetVersionRow.name == dataset
            )
        ).all()
    return {int(version): str(project) for version, project in rows}


def _owned_elsewhere(name: str, project: str) -> AlreadyExistsError:
    return name_taken("dataset", name)


def check_dataset_project(platform: Platform, name: str) -> None:
    """Refuse a version of ``name`` in ``platform``'s project when ``name`` is another
    project's (before any data is read or staged; :func:`record_version` checks again).

    Raises:
        AlreadyExistsError: ``name`` has versions in another project.
    """
    project = platform.default_project
    if set(version_projects(platform, name).values()) - {project}:
        raise _owned_elsewhere(name, project)


def record_version(
    platform: Platform,
    actor: Actor,
    name: str,
    staged: Staged,
    *,
    source: str,
    inputs: Sequence[str] = (),
    column_tags: Mapping[str, str] | None = None,
    residency: str | None = None,
    validation: dict[str, Any] | None = None,
    job: str = "dataset.write",
    code: str | None = None,
) -> DatasetVersion:
    """Store the staged file and record a version (inside the current governed operation).

    Identical content with identical tags as the latest version returns that version:
    no new blob, no new version. A dataset name stays the project of its first version.

    Raises:
        AlreadyExistsError: ``name`` is another project's dataset (nothing is stored).
    """
    tags = dict(column_tags or {})
    _check_tagged_columns(name, tags, staged.schema)
    project = current_operation().project
    session = current_session()
    elsewhere = session.execute(
        select(DatasetVersionRow.id)
        .where(DatasetVersionRow.name == name, DatasetVersionRow.project != project)
        .limit(1)
    ).first()
    if elsewhere is not None:
        raise _owned_elsewhere(name, project)
    nodes = check_version_residency(
        platform, actor, name, inputs=inputs, column_tags=tags, residency=residency
    )
    info = platform.artifacts.put(staged.path)
    latest = session.execute(
        select(DatasetVersionRow)
        .where(DatasetVersionRow.name == name)
        .order_by(DatasetVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if (
        latest is not None
        and latest.digest == info.digest
        and json.loads(latest.column_tags) == tags
        and latest.residency == residency
    ):
        current_operation().details["unchanged"] = latest.version
        return _to_version(latest)
    row = DatasetVersionRow(
        name=name,
        version=(latest.version if latest else 0) + 1,
        project=project,
        digest=info.digest,
        size=info.size,
        num_rows=staged.num_rows,
        schema_b64=schema_to_text(staged.schema),
        profile=json.dumps(redact_profile(staged.profile, tags)),
        column_tags=json.dumps(tags, sort_keys=True),
        residency=residency,
        source=source,
        inputs=json.dumps(nodes),
        validation=json.dumps(validation) if validation is not None else None,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    version = _to_version(row)
    for node in nodes:
        link(node, version.node, "input")
    current_operation().details.update(version=version.version, digest=info.digest)
    _emit(platform, job, version, nodes, source, code)
    return version


def _emit(
    platform: Platform,
    job: str,
    version: DatasetVersion,
    nodes: Sequence[str],
    source: str,
    code: str | None,
) -> None:
    namespace = f"ghaf://{platform.default_project}"
    inputs = [DatasetRef(namespace, n.removeprefix("dataset:")) for n in nodes]
    if not nodes and source:
        inputs = [DatasetRef("external", source[:500])]
    fields = tuple((f.name, str(f.type)) for f in version.schema)
    output = DatasetRef(namespace, version.ref, fields)
    event = build_run_event(
        f"{job}.{version.name}", namespace=namespace, inputs=inputs, outputs=[output], code=code
    )
    LineageSink(platform.settings).send(event)


@governed("dataset.write", resource="dataset:{name}")
def write_dataset(
    platform: Platform,
    actor: Actor,
    name: str,
    data: pa.Table | Iterable[pa.RecordBatch],
    *,
    source: str,
    inputs: Sequence[str] = (),
    column_tags: Mapping[str, str] | None = None,
    residency: str | None = None,
) -> DatasetVersion:
    """Write ``data`` as a new immutable version of dataset ``name``.

    Args:
        data: a table or an iterable of record batches (streamed, never all in memory).
        source: a description of where the data came from.
        inputs: lineage: dataset refs (``name:3``) or node ids (``run:ID``) it derives from.
        column_tags: classification per column (``pii``, ``sensitive``, ``public``).
        residency: the region the dataset must stay in.

    Raises:
        InvalidInputError: bad name, inconsistent batches, unknown tagged column.
        AlreadyExistsError: ``name`` is another project's dataset.
    """
    check_name(name)
    check_dataset_project(platform, name)
    schema = getattr(data, "schema", None)
    if isinstance(schema, pa.Schema):  # bad input is named before residency is judged
        _check_tagged_columns(name, column_tags or {}, schema)
    check_version_residency(
        platform, actor, name, inputs=inputs, column_tags=column_tags, residency=residency
    )
    with staging_dir(platform) as directory:
        staged = stage(data, directory, where=f"dataset {name!r}")
        return record_version(
            platform,
            actor,
            name,
            staged,
            source=source,
            inputs=inputs,
            column_tags=column_tags,
            residency=residency,
        )


def get_dataset(platform: Platform, ref: str) -> DatasetVersion:
    """The version ``ref`` names: ``name``/``name:latest`` (newest) or ``name:3``.

    Raises:
        NotFoundError: no such dataset or version.
    """
    name, version = parse_ref(ref)
    with platform.read_session() as session:
        query = select(DatasetVersionRow).where(DatasetVersionRow.name == name)
        if version is None:
            query = query.order_by(DatasetVersionRow.version.desc()).limit(1)
        else:
            query = query.where(DatasetVersionRow.version == version)
        row = session.execute(query).scalar_one_or_none()
        if row is None:
            what = f"dataset {name!r}" if version is None else f"dataset version {name}:{version}"
            raise NotFoundError(f"{what} does not exist", hint=f"ghaf data versions {name}")
        return _to_version(row)


def list_versions(platform: Platform, name: str) -> list[DatasetVersion]:
    """Every version of ``name``, oldest first (empty when none)."""
    check_name(name)
    with platform.read_session() as session:
        rows = session.execute(
            select(DatasetVersionRow)
            .where(DatasetVersionRow.name == name)
            .order_by(DatasetVersionRow.version)
        ).scalars()
        return [_to_version(row) for row in rows]


def list_datasets(platform: Platform) -> list[str]:
    """Names of all datasets."""
    with platform.read_session() as session:
        rows = session.execute(
            select(DatasetVersionRow.name, func.max(DatasetVersionRow.version)).group_by(
                DatasetVersionRow.name
            )
        )
        return sorted(name for name, _ in rows)


def _cache_dir(platform: Platform) -> Path:
    path = platform.settings.home / "cache" / "datasets"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"


def dataset_parquet_path(platform: Platform, ref: str) -> Path:
    """A local, verified, decrypted Parquet file of the version (cached by digest).

    The file is fetched through the artifact store, which verifies its digest; a
    stamp beside it (inode, size, mtime) says the cached copy is the verified one,
    so a changed or replaced cache file is fetched again. Treat the file as read-only.
    """
    version = get_dataset(platform, ref)
    directory = _cache_dir(platform)
    path = directory / f"{version.digest}.parquet"
    stamp = directory / f"{version.digest}.verified"
    if path.exists() and stamp.exists() and stamp.read_text() == _stamp(path):
        return path
    info = platform.artifacts.get(version.digest, path)
    if info.size != version.size:
        path.unlink(missing_ok=True)
        raise IntegrityError(
            f"dataset {version.ref}: stored size {info.size} != recorded {version.size}",
            hint="the artifact store and metadata disagree; restore the artifact",
        )
    path.chmod(0o400)
    stamp.write_text(_stamp(path))
    return path


def read_dataset(platform: Platform, ref: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The version ``ref`` as an Arrow table (optionally only ``columns``)."""
    return pq.read_table(dataset_parquet_path(platform, ref), columns=columns)
