"""Dataset versions: stream batches to Parquet (zstd) with a profile, store, record, read back.

A version is one or more encrypted Parquet parts. One written whole is one part (its
``digest`` is the artifact's). One that appends (a stream's micro-batch) records only
its new part and the version it extends (``data_version_parts``): it reads as that
version's parts followed by its own, so a stream of N batches writes each row once.
Its ``digest`` chains the parts: SHA-256 of ``ghaf.parts/1``, the base's digest and
the new parts' digests, checked whenever the parts are listed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
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
    Part,
    check_name,
    parse_ref,
    schema_from_text,
    schema_to_text,
)
from ghaf.data.profile import ProfileBuilder, merge_profiles, redact_profile
from ghaf.data.residency import check_derived_residency
from ghaf.data.tables import DatasetPartRow, DatasetVersionRow
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

PARTS_FORMAT = "ghaf.parts/1"
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


def _chain_root(name: str, version: int) -> int:
    """The newest version of ``name`` up to ``version`` written whole (appends always
    extend the latest version, so it is the one every later append reads first)."""
    appended = (
        select(DatasetPartRow.id)
        .where(DatasetPartRow.name == name, DatasetPartRow.version == DatasetVersionRow.version)
        .exists()
    )
    root = (
        current_session()
        .execute(
            select(func.max(DatasetVersionRow.version)).where(
                DatasetVersionRow.name == name, DatasetVersionRow.version <= version, ~appended
            )
        )
        .scalar_one()
    )
    return int(root) if root is not None else version


def chain_digest(base_digest: str, added: Sequence[str]) -> str:
    """The digest of a version that appends parts ``added`` to a version ``base_digest``."""
    text = "\n".join([PARTS_FORMAT, base_digest, *added])
    return hashlib.sha256(text.encode()).hexdigest()


def append_version(
    platform: Platform,
    actor: Actor,
    name: str,
    staged: Staged,
    *,
    source: str,
    validation: dict[str, Any] | None = None,
    job: str = "dataset.write",
) -> DatasetVersion:
    """Record the staged rows as the next version of ``name``: the latest version's parts
    by reference, then the staged file as one new part (inside the current governed
    operation). Only the new rows are stored; the column tags and residency carry over.
    With no version yet, this is :func:`record_version`.

    Raises:
        AlreadyExistsError: ``name`` is another project's dataset (nothing is stored).
        InvalidInputError: the staged rows do not have the dataset's schema.
    """
    session = current_session()
    latest = session.execute(
        select(DatasetVersionRow)
        .where(DatasetVersionRow.name == name)
        .order_by(DatasetVersionRow.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None:
        return record_version(
            platform, actor, name, staged, source=source, validation=validation, job=job
        )
    project = current_operation().project
    if latest.project != project:
        raise _owned_elsewhere(name, project)
    base = _to_version(latest)
    if not staged.schema.equals(base.schema):
        raise InvalidInputError(
            f"dataset {name!r}: the appended rows have columns {staged.schema.names}, "
            f"the dataset {base.schema.names}",
            hint="append rows with the dataset's columns and types",
        )
    tags = dict(base.column_tags)
    # The tags upstream of an appended version are its chain root's: every version since
    # appended with the same tags. Judging the root keeps an append's cost off its history.
    check_version_residency(
        platform,
        actor,
        name,
        inputs=[f"{name}:{_chain_root(name, base.version)}"],
        column_tags=tags,
        residency=base.residency,
    )
    nodes = [base.node]
    info = platform.artifacts.put(staged.path)
    profile = merge_profiles(base.profile, redact_profile(staged.profile, tags))
    row = DatasetVersionRow(
        name=name,
        version=base.version + 1,
        project=project,
        digest=chain_digest(base.digest, [info.digest]),
        size=base.size + info.size,
        num_rows=base.num_rows + staged.num_rows,
        schema_b64=latest.schema_b64,
        profile=json.dumps(redact_profile(profile, tags)),
        column_tags=latest.column_tags,
        residency=base.residency,
        source=source,
        inputs=json.dumps(nodes),
        validation=json.dumps(validation) if validation is not None else None,
        created_by=actor.name,
        created_at=utcnow(),
    )
    session.add(row)
    session.add(
        DatasetPartRow(
            name=name,
            version=row.version,
            base=base.version,
            position=0,
            digest=info.digest,
            size=info.size,
            num_rows=staged.num_rows,
        )
    )
    session.flush()
    version = _to_version(row)
    for node in nodes:
        link(node, version.node, "input")
    current_operation().details.update(
        version=version.version, digest=version.digest, part=info.digest, part_size=info.size
    )
    _emit(platform, job, version, nodes, source, None)
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


def _added_parts(platform: Platform, name: str) -> dict[int, tuple[int, list[Part]]]:
    """Version -> (base, parts it adds) for every appended version of ``name``."""
    with platform.read_session() as session:
        rows = session.execute(
            select(DatasetPartRow)
            .where(DatasetPartRow.name == name)
            .order_by(DatasetPartRow.version, DatasetPartRow.position)
        ).scalars()
        added: dict[int, tuple[int, list[Part]]] = {}
        for row in rows:
            added.setdefault(row.version, (row.base, []))[1].append(
                Part(row.digest, row.size, row.num_rows)
            )
    return added


def dataset_parts(platform: Platform, name: str) -> dict[int, list[Part]]:
    """Version -> its parts in reading order, for every version of ``name``.

    Raises:
        IntegrityError: a version's parts do not chain to its recorded digest.
    """
    versions = {v.version: v for v in list_versions(platform, name)}
    added = _added_parts(platform, name)
    parts: dict[int, list[Part]] = {}
    digests: dict[int, str] = {}
    for number in sorted(versions):  # a base is always older than what appends to it
        version = versions[number]
        if number not in added:
            parts[number] = [Part(version.digest, version.size, version.num_rows)]
            digests[number] = version.digest
            continue
        base, own = added[number]
        if base not in parts:
            raise IntegrityError(
                f"dataset {version.ref} appends to version {base}, which is not recorded",
                hint="the metadata store was altered; restore it from a backup",
            )
        parts[number] = [*parts[base], *own]
        digests[number] = chain_digest(digests[base], [p.digest for p in own])
        _check_chain(version, digests[number], parts[number])
    return parts


def version_parts(platform: Platform, version: DatasetVersion) -> list[Part]:
    """The parts of ``version`` in reading order (one for a version written whole).

    Raises:
        IntegrityError: the parts do not chain to the version's recorded digest.
    """
    added = _added_parts(platform, version.name)
    if version.version not in added:
        return [Part(version.digest, version.size, version.num_rows)]
    chain: list[list[Part]] = []
    number = version.version
    while number in added:
        base, own = added[number]
        chain.append(own)
        number = base
    root = get_dataset(platform, f"{version.name}:{number}")
    parts = [Part(root.digest, root.size, root.num_rows)]
    digest = root.digest
    for own in reversed(chain):
        parts.extend(own)
        digest = chain_digest(digest, [p.digest for p in own])
    _check_chain(version, digest, parts)
    return parts


def _check_chain(version: DatasetVersion, digest: str, parts: Sequence[Part]) -> None:
    size, rows = sum(p.size for p in parts), sum(p.num_rows for p in parts)
    if digest != version.digest or size != version.size or rows != version.num_rows:
        raise IntegrityError(
            f"dataset {version.ref}: its parts do not add up to the version recorded "
            f"(digest {digest[:16]}, {size} bytes, {rows} rows)",
            hint="the metadata store was altered; restore it from a backup",
        )


def _fetch(platform: Platform, ref: str, part: Part) -> Path:
    """A local, verified, decrypted copy of ``part`` (cached by digest)."""
    directory = _cache_dir(platform)
    path = directory / f"{part.digest}.parquet"
    stamp = directory / f"{part.digest}.verified"
    if path.exists() and stamp.exists() and stamp.read_text() == _stamp(path):
        return path
    info = platform.artifacts.get(part.digest, path)
    if info.size != part.size:
        path.unlink(missing_ok=True)
        raise IntegrityError(
            f"dataset {ref}: stored size {info.size} != recorded {part.size}",
            hint="the artifact store and metadata disagree; restore the artifact",
        )
    path.chmod(0o400)
    stamp.write_text(_stamp(path))
    return path


def dataset_parquet_paths(platform: Platform, ref: str) -> list[Path]:
    """Local, verified, decrypted Parquet files of the version's parts, in reading order
    (cached by digest; one for a version written whole). Treat them as read-only.

    Each file is fetched through the artifact store, which verifies its digest; a stamp
    beside it (inode, size, mtime) says the cached copy is the verified one, so a
    changed or replaced cache file is fetched again.
    """
    version = get_dataset(platform, ref)
    return [_fetch(platform, version.ref, part) for part in version_parts(platform, version)]


def dataset_parquet_path(platform: Platform, ref: str) -> Path:
    """A local, verified, decrypted Parquet file of the whole version (cached by digest).

    A version of several parts is joined into one file in the cache the first time it
    is asked for (:func:`dataset_parquet_paths` and :func:`read_dataset` read the parts
    as they are). Treat the file as read-only.
    """
    version = get_dataset(platform, ref)
    parts = version_parts(platform, version)
    if len(parts) == 1:
        return _fetch(platform, version.ref, parts[0])
    paths = [_fetch(platform, version.ref, part) for part in parts]
    directory = _cache_dir(platform)
    path = directory / f"{version.digest}.parquet"
    stamp = directory / f"{version.digest}.verified"
    if path.exists() and stamp.exists() and stamp.read_text() == _stamp(path):
        return path
    handle, name = tempfile.mkstemp(dir=directory, prefix=f".{version.digest}.", suffix=".partial")
    os.close(handle)
    partial = Path(name)
    try:
        with pq.ParquetWriter(partial, version.schema, compression="zstd") as writer:
            for file in paths:
                for batch in pq.ParquetFile(file).iter_batches(batch_size=65_536):
                    writer.write_batch(batch)
        partial.chmod(0o400)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    stamp.write_text(_stamp(path))
    return path


def read_dataset(platform: Platform, ref: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The version ``ref`` as an Arrow table (optionally only ``columns``), its parts in order."""
    paths = dataset_parquet_paths(platform, ref)
    tables = [pq.read_table(path, columns=columns) for path in paths]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)
