"""Registering model versions and reading them back."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import InvalidInputError, NotFoundError, name_taken
from ghaf.lineage import link
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.registry.base import Approval, ModelRef, ModelVersion, check_name, parse_ref
from ghaf.registry.card import generate_card
from ghaf.registry.code_policy import model_code_policy
from ghaf.registry.files import release_digests, seal_dir, upload_dir
from ghaf.registry.listing import list_models as list_models
from ghaf.registry.tables import (
    ModelAliasRow,
    ModelApprovalRow,
    ModelVersionRow,
    RegisteredModelRow,
)
from ghaf.security.identity import Actor
from ghaf.security.release_manifest import Release
from ghaf.spine import current_session, governed

if TYPE_CHECKING:
    import pyarrow as pa

    from ghaf.models.custom_code import CodePolicy


def link_lineage(src: str, dst: str, relation: str) -> None:
    """Record a lineage edge inside the current operation."""
    link(src, dst, relation)


def _check_residency_first(
    platform: Platform,
    actor: Actor,
    name: str,
    source: Path | str,
    run_id: str | None,
    lineage: Sequence[str],
) -> None:
    """Refuse, before any file is copied, signed or stored, a model whose lineage (given
    and its run's inputs) may not live in the artifact store's region; audited as a
    denied ``model.register``. The operation checks again with the version's node."""
    from ghaf.features.residency import check_lineage_residency  # DuckDB, ghaf.data

    if isinstance(source, str) and source.startswith("run:"):
        run_id = source.removeprefix("run:").partition("/")[0] or run_id
    run_inputs = (_run_info(platform, run_id) or {}).get("inputs", [])
    check_lineage_residency(
        platform,
        [*([f"run:{run_id}"] if run_id else []), *lineage, *run_inputs],
        platform.artifacts.region,
        actor=actor,
        resource=f"model:{name}",
        action="model.register",
    )


def register_model(
    platform: Platform,
    actor: Actor,
    name: str,
    source: Path | str,
    *,
    run_id: str | None = None,
    example: Any = None,
    signature: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    lineage: Sequence[str] = (),
    description: str = "",
    project: str | None = None,
    source_label: str | None = None,
) -> ModelVersion:
    """Register a new version of ``name`` from a model directory, a model file or a run.

    ``source`` is a directory saved by a flavor, a single model file (``.skops``,
    ``.onnx``, ``.ubj``, ``.lgb.txt``) or ``run:<run_id>/<artifact path>``. The files
    are copied, stored content-addressed, signed with the home's key for the model,
    version and project they will be recorded as (``ghaf-release.json``), then recorded
    in one governed operation that assigns the next version number. The version records
    where it came from as ``source_label`` when given (a server's scratch copy of
    uploaded files means nothing to its readers), else the source's resolved path.
    """
    # The flavors, NumPy and pyarrow: paid by a registration, not by every registry read.
    from ghaf.models.base import ModelMeta
    from ghaf.registry.staging import stage_source

    check_name(name)
    _check_residency_first(platform, actor, name, source, run_id, lineage)
    with scratch_dir(platform.settings.home, "model-") as workdir:
        if isinstance(source, str) and source.startswith("run:"):
            run_id, local = _fetch_run_model(platform, source, workdir / "src")
            source_text = source
        else:
            local = Path(source)
            source_text = source_label or str(local.resolve())
        code_policy = model_code_policy(platform, name, project)
        staged = stage_source(local, workdir, code_policy=code_policy)
        meta = ModelMeta.read(staged)
        if signature is None and example is not None:
            signature = _infer_signature(staged, example, code_policy)
        example_digest = _store_example(platform, example)
        files = upload_dir(platform, staged)
        # Signed before the transaction for the number it will most likely get, so the
        # hashing does not hold the registry's write lock; re-signed inside if it did not.
        release = Release(name, *_next_version(platform, name, project), release_digests(files))
        files |= seal_dir(platform, staged, release)
        run_info = _run_info(platform, run_id)
        if metrics is None and run_info is not None:
            metrics = dict(run_info.get("metrics", {}))
        inputs = list(lineage) + [i for i in (run_info or {}).get("inputs", []) if i not in lineage]
        return create_model_version(
            platform,
            actor,
            name,
            flavor=meta.flavor,
            files=files,
            sealed=staged,
            source=source_text,
            run_id=run_id,
            signature=signature or {},
            example_digest=example_digest,
            metrics=metrics or {},
            lineage=inputs,
            description=description,
            run_info=run_info,
            project=project,
        )


def _next_version(platform: Platform, name: str, project: str | None) -> tuple[int, str]:
    """The number and project a new version of ``name`` would get now (not reserved)."""
    with platform.read_session() as session:
        model = session.execute(
            select(RegisteredModelRow).where(RegisteredModelRow.name == name)
        ).scalar_one_or_none()
        if model is None:
            return 1, project or platform.default_project
        latest = session.execute(
            select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id)
        ).scalar_one()
        return (latest or 0) + 1, model.project


@governed("model.register", resource="model:{name}")
def create_model_version(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    flavor: str,
    files: dict[str, dict[str, Any]],
    sealed: Path,
    source: str,
    run_id: str | None,
    signature: dict[str, Any],
    example_digest: str | None,
    metrics: dict[str, float],
    lineage: list[str],
    description: str,
    run_info: dict[str, Any] | None,
    project: str | None = None,
) -> ModelVersion:
    """Record a version whose files are already stored (use :func:`register_model`).

    ``sealed`` is the directory of ``files``, signed for the version it expected to become;
    when another registration took that number first, it is signed again here for the
    number assigned under the model's lock, so a version's signature always names it.
    """
    from ghaf.features.residency import check_lineage_residency  # DuckDB, ghaf.data

    session = current_session()
    wanted = project or platform.default_project
    model = _lock_model(session, name, wanted, actor.name)
    if model.project != wanted:  # authorized in `wanted`: adding to another project's model
        raise name_taken("model", name)  # would let one project write into another
    latest = session.execute(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_id == model.id)
    ).scalar_one()
    number = (latest or 0) + 1
    release = Release(name, number, model.project, release_digests(files))
    if Release.read(sealed) != release:
        files = files | seal_dir(platform, sealed, release)
    now = utcnow()
    row = ModelVersionRow(
        model_id=model.id,
        version=number,
        flavor=flavor,
        stage="candidate",
        source=source,
        run_id=run_id,
        description=description,
        signature=json.dumps(signature),
        example_digest=example_digest,
        metrics=json.dumps(metrics),
        files=json.dumps(files),
        signed=True,
        lineage=json.dumps(lineage),
        card="",
        created_by=actor.name,
        created_at=now,
        updated_at=now,
        author_credential=actor.credential.describe() if actor.credential else None,
        author_minted_by=actor.credential.minted_by if actor.credential else None,
    )
    session.add(row)
    session.flush()
    version = to_version(model, row)
    row.card = generate_card(version, run_info)
    session.flush()
    node = version.node
    sources = ([f"run:{run_id}"] if run_id is not None else []) + list(lineage)
    check_lineage_residency(platform, sources, platform.artifacts.region, resource=node)
    if run_id is not None:
        link_lineage(f"run:{run_id}", node, "produced")
    for upstream in lineage:
        link_lineage(upstream, node, "trained_on")
    return to_version(model, row)


def _lock_model(session: Session, name: str, project: str, creator: str) -> RegisteredModelRow:
    """Create the model row if missing, then lock it so version numbers never collide."""
    values = {
        "name": name,
        "project": project,
        "description": "",
        "created_by": creator,
        "created_at": utcnow(),
    }
    # Each dialect module is imported only on its own database (PostgreSQL's costs ~30 ms).
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(RegisteredModelRow)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(RegisteredModelRow)
    session.execute(statement.values(**values).on_conflict_do_nothing(index_elements=["name"]))
    return session.execute(
        select(RegisteredModelRow).where(RegisteredModelRow.name == name).with_for_update()
    ).scalar_one()


def _fetch_run_model(platform: Platform, source: str, dest: Path) -> tuple[str, Path]:
    from ghaf.tracking import download_artifacts

    run_id, _, path = source.removeprefix("run:").partition("/")
    if not run_id:
        raise InvalidInputError(
            f"model source {source!r} names no run", hint="use run:<run_id>/<artifact path>"
        )
    return run_id, download_artifacts(platform, run_id, path or "model", dest)


def _run_info(platform: Platform, run_id: str | None) -> dict[str, Any] | None:
    if run_id is None:
        return None
    from ghaf.tracking import get_run

    run = get_run(platform, run_id)
    return {
        "run_id": run.run_id,
        "experiment": run.experiment,
        "params": run.params,
        "metrics": run.metrics,
        "tags": run.tags,
        "inputs": list(run.inputs),
        "user": run.user,
    }


def _infer_signature(
    model_dir: Path, example: Any, code_policy: CodePolicy | None = None
) -> dict[str, Any]:
    from ghaf.models.base import infer_schema, schema_to_json
    from ghaf.models.flavors import load_model_dir

    outputs = load_model_dir(model_dir, code_policy=code_policy).predict(example)
    return {
        "inputs": schema_to_json(infer_schema(example)),
        "outputs": schema_to_json(infer_schema(outputs, "output")),
    }


def _store_example(platform: Platform, example: Any) -> str | None:
    if example is None:
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ghaf.models.base import infer_schema

    schema = infer_schema(example)
    if isinstance(example, pa.Table | pa.RecordBatch):
        table = pa.table(example)
    elif hasattr(example, "columns"):
        table = pa.Table.from_pandas(example, preserve_index=False)
    else:
        import numpy as np

        array = np.asarray(example)
        matrix = array.reshape(-1, 1) if array.ndim == 1 else array
        table = pa.table([matrix[:, i] for i in range(matrix.shape[1])], schema=schema)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return platform.artifacts.put_bytes(buffer.getvalue()).digest


def to_version(
    model: RegisteredModelRow,
    row: ModelVersionRow,
    aliases: Sequence[str] = (),
    approvals: Sequence[Approval] = (),
) -> ModelVersion:
    return ModelVersion(
        name=model.name,
        version=row.version,
        flavor=row.flavor,
        stage=row.stage,
        project=model.project,
        source=row.source,
        run_id=row.run_id,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        description=row.description,
        signature=json.loads(row.signature),
        example_digest=row.example_digest,
        metrics=json.loads(row.metrics),
        files=json.loads(row.files),
        signed=row.signed,
        lineage=json.loads(row.lineage),
        card=row.card,
        aliases=tuple(sorted(aliases)),
        approvals=tuple(a.approver for a in approvals),
        approval_records=tuple(approvals),
        author_credential=row.author_credential,
        author_minted_by=row.author_minted_by,
    )


def resolve_rows(session: Session, ref: ModelRef) -> tuple[RegisteredModelRow, ModelVersionRow]:
    """The model and version rows a reference points at."""
    model = session.execute(
        select(RegisteredModelRow).where(RegisteredModelRow.name == ref.name)
    ).scalar_one_or_none()
    if model is None:
        raise NotFoundError(f"model {ref.name!r} is not registered", hint="ghaf models list")
    number = ref.version
    if ref.alias is not None:
        number = session.execute(
            select(ModelAliasRow.version).where(
                ModelAliasRow.model_id == model.id, ModelAliasRow.alias == ref.alias
            )
        ).scalar_one_or_none()
        if number is None:
            raise NotFoundError(
                f"model {ref.name!r} has no alias {ref.alias!r}",
                hint=f"ghaf models alias {ref.name} {ref.alias} VERSION",
            )
    query = select(ModelVersionRow).where(ModelVersionRow.model_id == model.id)
    if number is None:
        query = query.order_by(ModelVersionRow.version.desc()).limit(1)
    else:
        query = query.where(ModelVersionRow.version == number)
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFoundError(
            f"model version {ref} does not exist", hint=f"ghaf models show {ref.name}"
        )
    return model, row


def load_version(session: Session, model: RegisteredModelRow, row: ModelVersionRow) -> ModelVersion:
    aliases = session.execute(
        select(ModelAliasRow.alias).where(
            ModelAliasRow.model_id == model.id, ModelAliasRow.version == row.version
        )
    ).scalars()
    approvals = [
        Approval(a.approver, a.credential, tuple(json.loads(a.flags or "[]")), a.comment)
        for a in session.execute(
            select(ModelApprovalRow)
            .where(ModelApprovalRow.version_id == row.id)
            .order_by(ModelApprovalRow.id)
        ).scalars()
    ]
    return to_version(model, row, list(aliases), approvals)


def get_model_version(platform: Platform, ref: str) -> ModelVersion:
    """The version ``ref`` names: ``name:3``, ``name@champion`` or ``name`` (latest).

    Raises:
        NotFoundError: no such model, version or alias.
    """
    parsed = parse_ref(ref)
    with platform.read_session() as session:
        model, row = resolve_rows(session, parsed)
        return load_version(session, model, row)


def list_versions(platform: Platform, name: str) -> list[ModelVersion]:
    """Every version of ``name``, oldest first."""
    with platform.read_session() as session:
        model = session.execute(
            select(RegisteredModelRow).where(RegisteredModelRow.name == check_name(name))
        ).scalar_one_or_none()
        if model is None:
            raise NotFoundError(f"model {name!r} is not registered", hint="ghaf models list")
        rows = session.execute(
            select(ModelVersionRow)
            .where(ModelVersionRow.model_id == model.id)
            .order_by(ModelVersionRow.version)
        ).scalars()
        return [load_version(session, model, row) for row in rows]


def load_example(platform: Platform, version: ModelVersion) -> pa.Table | None:
    """The example input stored with ``version`` (verified), or None."""
    if version.example_digest is None:
        return None
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(platform.artifacts.read_bytes(version.example_digest)))
