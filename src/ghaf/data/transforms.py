"""Transforms: DuckDB SQL or a Python function over Arrow, from dataset versions to a new one.

Each run records its inputs (exact versions), the code and its SHA-256, and the
parameters; lineage links inputs → ``transform:ID`` → output.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ghaf.data.base import DatasetVersion, check_name
from ghaf.data.checks import ident, literal
from ghaf.data.store import (
    Staged,
    check_version_residency,
    dataset_parquet_path,
    get_dataset,
    read_dataset,
    record_version,
    stage,
    staging_dir,
)
from ghaf.data.tables import TransformRow
from ghaf.errors import InvalidInputError, UserCodeError
from ghaf.lineage.graph import link
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

if TYPE_CHECKING:
    import duckdb

TransformFn = Callable[..., pa.Table]
"""``fn(tables: dict[str, pa.Table], **params) -> pa.Table``."""


def code_of(fn: TransformFn) -> str:
    """The source of ``fn`` (or its bytecode's repr when the source is unavailable)."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return repr(fn.__code__.co_code)


@governed("transform.run", resource="dataset:{output}")
def run_transform(
    platform: Platform,
    actor: Actor,
    output: str,
    inputs: Mapping[str, str],
    *,
    sql: str | None = None,
    fn: TransformFn | None = None,
    params: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Produce a new version of ``output`` from the dataset versions in ``inputs``.

    Args:
        output: the dataset to write.
        inputs: alias → dataset ref; refs are pinned to exact versions first. In SQL
            each alias is a view; a Python ``fn`` gets ``{alias: pa.Table}``.
        sql: a DuckDB query; ``params`` are bound as ``$name`` parameters. It reads
            only its inputs: no file, URL or extension (DuckDB's external access is off).
        fn: a Python function over Arrow tables, called with ``**params``.

    Raises:
        InvalidInputError: neither or both of ``sql``/``fn``, a bad alias or a failing query.
        UserCodeError: ``fn`` raised or did not return a table.
    """
    check_name(output)
    if (sql is None) == (fn is None):
        raise InvalidInputError("a transform needs exactly one of sql or fn", hint="pass one")
    versions = {alias: get_dataset(platform, ref) for alias, ref in inputs.items()}
    values = dict(params or {})
    code = sql if sql is not None else code_of(fn)  # type: ignore[arg-type]
    kind = "sql" if sql is not None else "python"
    digest = hashlib.sha256(code.encode()).hexdigest()
    transform_id = uuid.uuid4().hex
    check_version_residency(platform, actor, output, inputs=[v.node for v in versions.values()])
    with staging_dir(platform) as directory:
        if sql is not None:
            staged = _run_sql(platform, sql, versions, values, directory)
        else:
            assert fn is not None  # nosec B101 - type narrowing
            tables = {alias: read_dataset(platform, v.ref) for alias, v in versions.items()}
            try:
                result = fn(tables, **values)
            except Exception as exc:
                raise UserCodeError(
                    f"transform function {getattr(fn, '__name__', fn)!r} raised "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(result, pa.Table):
                raise UserCodeError(
                    f"transform function returned {type(result).__name__}, not a pyarrow.Table"
                )
            staged = stage(result, directory, where=f"transform output {output!r}")
        node = f"transform:{transform_id}"
        version = record_version(
            platform,
            actor,
            output,
            staged,
            source=f"transform:{transform_id} ({kind})",
            inputs=[v.node for v in versions.values()],
            job=f"transform.{kind}",
            code=code,
        )
    session = current_session()
    session.add(
        TransformRow(
            id=transform_id,
            kind=kind,
            code=code,
            code_digest=digest,
            params=json.dumps(values, sort_keys=True, default=str),
            inputs=json.dumps({a: v.ref for a, v in versions.items()}, sort_keys=True),
            output=version.ref,
            created_by=actor.name,
            created_at=utcnow(),
        )
    )
    for v in versions.values():
        link(v.node, node, "input")
    link(node, version.node, "output")
    current_operation().details.update(transform=transform_id, code_digest=digest)
    return version


def _sandboxed(directory: Path, inputs: Mapping[str, Path]) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection whose SQL reads ``inputs`` (alias -> verified Parquet file, one
    view each) and no other file, URL or extension, and writes no file.

    External access is off and the configuration locked, so a query cannot turn it back
    on; only the input files are allowed paths (DuckDB's own Parquet reader stays, 2-3x
    faster on aggregates and joins than scanning Arrow datasets). The database is a
    named in-memory one of its own (the plain ``:memory:`` allows a file of that name in
    the working directory); it spills into the transform's scratch space.
    """
    import duckdb  # on use: importing this module must not load DuckDB

    sandbox = directory / "duckdb"
    sandbox.mkdir(mode=0o700)
    con = duckdb.connect(
        f":memory:transform_{uuid.uuid4().hex}",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "temp_directory": str(sandbox / "spill"),
        },
    )
    try:
        con.execute("SET allowed_paths = $paths", {"paths": [str(p) for p in inputs.values()]})
        for alias, path in inputs.items():
            con.execute(
                f"CREATE VIEW {ident(alias)} AS SELECT * FROM read_parquet({literal(str(path))})"  # noqa: S608  # nosec B608
            )
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _run_sql(
    platform: Platform,
    sql: str,
    versions: Mapping[str, DatasetVersion],
    params: Mapping[str, Any],
    directory: Path,
) -> Staged:
    import duckdb  # on use: importing this module must not load DuckDB

    for alias in versions:
        if not alias.isidentifier():
            raise InvalidInputError(
                f"transform input alias {alias!r} is not an identifier", hint="use e.g. tx"
            )
    files = {alias: dataset_parquet_path(platform, v.ref) for alias, v in versions.items()}
    with _sandboxed(directory, files) as con:
        try:
            relation = con.sql(sql, params=dict(params) if params else None)
            return stage(relation.to_arrow_reader(65_536), directory, where="transform output")
        except duckdb.Error as exc:
            raise InvalidInputError(f"transform SQL failed: {exc}", hint="fix the query") from exc


def get_transform(platform: Platform, transform_id: str) -> dict[str, Any]:
    """What a transform run recorded: kind, code, code digest, params, inputs, output."""
    with platform.read_session() as session:
        row = session.get(TransformRow, transform_id)
        if row is None:
            from ghaf.errors import NotFoundError

            raise NotFoundError(f"transform {transform_id!r} does not exist")
        return {
            "id": row.id,
            "kind": row.kind,
            "code": row.code,
            "code_digest": row.code_digest,
            "params": json.loads(row.params),
            "inputs": json.loads(row.inputs),
            "output": row.output,
            "created_by": row.created_by,
        }
