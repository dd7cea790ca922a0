"""Tracking's service layer: governed writes (runs, batches, artifacts, inputs) and reads."""

from __future__ import annotations

import dataclasses
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Float,
    Text,
    bindparam,
    cast,
    delete,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from ghaf.cost.base import Usage
from ghaf.cost.store import write_usage
from ghaf.errors import InvalidInputError, NotFoundError, name_taken
from ghaf.lineage import link
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed
from ghaf.tracking.base import RUN_STATUSES, MetricPoint, Run
from ghaf.tracking.chunks import Chunk, pack_metrics, unpack_chunk
from ghaf.tracking.tables import (
    ExperimentRow,
    LatestMetricRow,
    MetricChunkRow,
    RunArtifactRow,
    RunInputRow,
    RunParamRow,
    RunRow,
    RunTagRow,
)

MetricTuple = tuple[str, float, int, float]
"""(key, value, step, timestamp) as buffered by a run."""

_KEY = re.compile(r"^[\w./ :-]{1,250}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def check_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidInputError(
            f"{kind} key {key!r} is invalid",
            hint="use 1-250 letters, digits, '_', '-', '.', '/', ':' or spaces",
        )
    return key


def check_run_id(run_id: str) -> str:
    if not _RUN_ID.match(run_id):
        raise InvalidInputError(
            f"run id {run_id!r} is not a 32-character hex id", hint="copy it from ghaf runs list"
        )
    return run_id


def _upsert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


@governed("experiment.create", resource="experiment:{name}")
def create_experiment(
    platform: Platform, actor: Actor, name: str, *, project: str | None = None
) -> str:
    """Create experiment ``name`` unless it exists; returns the name."""
    check_key("experiment", name)
    session = current_session()
    values = {
        "name": name,
        "project": project or platform.default_project,
        "created_by": actor.name,
        "created_at": utcnow(),
    }
    stmt = _upsert(session)(ExperimentRow).values(**values)
    session.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
    owner = session.execute(
        select(ExperimentRow.project).where(ExperimentRow.name == name)
    ).scalar_one()
    if owner != values["project"]:  # authorized in this project: never write into another's
        raise name_taken("experiment", name)
    return name


@governed("run.create", resource="experiment:{experiment}")
def create_run(
    platform: Platform,
    actor: Actor,
    experiment: str,
    *,
    name: str | None = None,
    parent_run_id: str | None = None,
    env: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    project: str | None = None,
) -> str:
    """Create a running run in ``experiment`` (created when missing); returns the run id."""
    session = current_session()
    create_experiment(platform, actor, experiment, project=project)
    experiment_id = session.execute(
        select(ExperimentRow.id).where(ExperimentRow.name == experiment)
    ).scalar_one()
    if parent_run_id is not None:
        _run_row(session, check_run_id(parent_run_id))
    run_id = uuid.uuid4().hex
    session.add(
        RunRow(
            id=run_id,
            experiment_id=experiment_id,
            parent_run_id=parent_run_id,
            name=name or run_id[:8],
            status="running",
            user=actor.name,
            project=project or platform.default_project,
            start_time=utcnow(),
            end_time=None,
            env=json.dumps(dict(env or {})),
        )
    )
    for key, value in (tags or {}).items():
        session.add(RunTagRow(run_id=run_id, key=check_key("tag", key), value=str(value)))
    session.flush()
    current_operation().details["run_id"] = run_id
    return run_id


def _run_row(session: Session, run_id: str) -> RunRow:
    row = session.get(RunRow, run_id)
    if row is None:
        raise NotFoundError(f"run {run_id} does not exist", hint="ghaf runs list")
    return row


@governed("run.log_batch", resource="run:{run_id}")
def log_batch(
    platform: Platform,
    actor: Actor,
    run_id: str,
    *,
    metrics: Sequence[MetricTuple] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> int:
    """Write a batch of metric points, params and tags in one transaction; returns points.

    Params are write-once: logging a different value for a key raises.
    """
    session = current_session()
    connection = session.connection()
    _run_row(session, run_id)
    if params:
        _write_params(session, run_id, params)
    if tags:
        keys = [check_key("tag", k) for k in tags]
        connection.execute(
            delete(RunTagRow).where(RunTagRow.run_id == run_id, RunTagRow.key.in_(keys))
        )
        connection.execute(
            insert(RunTagRow),
            [{"run_id": run_id, "key": k, "value": str(v)} for k, v in tags.items()],
        )
    if metrics:
        chunks = pack_metrics(metrics)
        connection.execute(
            insert(MetricChunkRow),
            [{"run_id": run_id, **chunk.row()} for chunk in chunks],
        )
        _update_latest(session, run_id, chunks)
    current_operation().details.update(
        {"metrics": len(metrics), "params": len(params or {}), "tags": len(tags or {})}
    )
    return len(metrics)


def _write_params(session: Session, run_id: str, params: Mapping[str, str]) -> None:
    existing = dict(
        session.execute(
            select(RunParamRow.key, RunParamRow.value).where(
                RunParamRow.run_id == run_id, RunParamRow.key.in_(list(params))
            )
        ).all()
    )
    fresh = []
    for key, value in params.items():
        if key in existing:
            if existing[key] != str(value):
                raise InvalidInputError(
                    f"param {key!r} of run {run_id} is already {existing[key]!r}",
                    hint="params are set once per run; log a metric or a tag to vary a value",
                )
            continue
        fresh.append({"run_id": run_id, "key": check_key("param", key), "value": str(value)})
    if fresh:
        session.connection().execute(insert(RunParamRow), fresh)


def _update_latest(session: Session, run_id: str, chunks: Sequence[Chunk]) -> None:
    summary: dict[str, list[float]] = {c.key: c.summary() for c in chunks}
    connection = session.connection()
    rows = list(
        connection.execute(
            select(LatestMetricRow.__table__).where(
                LatestMetricRow.run_id == run_id, LatestMetricRow.key.in_(list(summary))
            )
        ).mappings()
    )
    for old in rows:
        new = summary.pop(old["key"])
        if (old["step"], old["ts"]) > (new[1], new[2]):
            new[0], new[1], new[2] = old["value"], old["step"], old["ts"]
        connection.execute(
            update(LatestMetricRow)
            .where(LatestMetricRow.run_id == run_id, LatestMetricRow.key == old["key"])
            .values(
                value=new[0],
                step=int(new[1]),
                ts=new[2],
                min_value=min(new[3], old["min_value"]),
                max_value=max(new[4], old["max_value"]),
            )
        )
    if summary:
        connection.execute(
            insert(LatestMetricRow),
            [
                {
                    "run_id": run_id,
                    "key": key,
                    "value": v[0],
                    "step": int(v[1]),
                    "ts": v[2],
                    "min_value": v[3],
                    "max_value": v[4],
                }
                for key, v in summary.items()
            ],
        )


@governed("run.end", resource="run:{run_id}")
def end_run(
    platform: Platform,
    actor: Actor,
    run_id: str,
    status: str = "finished",
    *,
    usage: Usage | None = None,
) -> None:
    """Mark a run finished, failed or killed; with ``usage``, record what it held and
    used in the same transaction (its cost record, in the run's project)."""
    if status not in RUN_STATUSES or status == "running":
        raise InvalidInputError(
            f"run status {status!r} is not an end status", hint="use finished, failed or killed"
        )
    row = _run_row(current_session(), run_id)
    row.status = status
    row.end_time = utcnow()
    current_operation().details["status"] = status
    if usage is not None:
        write_usage(usage, project=row.project)


@governed("run.log_artifacts", resource="run:{run_id}")
def record_artifacts(
    platform: Platform, actor: Actor, run_id: str, entries: Mapping[str, tuple[str, int]]
) -> None:
    """Record files already stored in the artifact store: path -> (digest, size)."""
    session = current_session()
    _run_row(session, run_id)
    session.execute(
        delete(RunArtifactRow).where(
            RunArtifactRow.run_id == run_id, RunArtifactRow.path.in_(list(entries))
        )
    )
    for path, (digest, size) in entries.items():
        session.add(RunArtifactRow(run_id=run_id, path=path, digest=digest, size=size))
    current_operation().details["files"] = len(entries)


@governed("run.log_inputs", resource="run:{run_id}")
def log_inputs(platform: Platform, actor: Actor, run_id: str, nodes: Sequence[str]) -> None:
    """Record the dataset / feature versions a run used, as rows and lineage edges."""
    session = current_session()
    _run_row(session, run_id)
    known = set(
        session.execute(select(RunInputRow.node).where(RunInputRow.run_id == run_id)).scalars()
    )
    for node in nodes:
        if ":" not in node:
            raise InvalidInputError(
                f"input {node!r} is not a lineage node id", hint="e.g. dataset:transactions:3"
            )
        if node not in known:
            session.add(RunInputRow(run_id=run_id, node=node))
            known.add(node)
        _link(node, f"run:{run_id}")
    session.flush()


def _link(src: str, dst: str) -> None:
    link(src, dst, "input_to")


# Reads ------------------------------------------------------------------------------


RUN_COLUMNS = (
    RunRow.id,
    RunRow.name,
    RunRow.status,
    RunRow.user,
    RunRow.project,
    RunRow.start_time,
    RunRow.end_time,
    RunRow.parent_run_id,
    ExperimentRow.name.label("experiment"),
)
"""What a run listing selects (not the environment, which is large)."""


def run_query() -> Any:
    """``SELECT RUN_COLUMNS FROM runs JOIN experiments``."""
    return select(*RUN_COLUMNS).join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)


_NULL_FLOAT = cast(null(), Float)  # PostgreSQL needs typed NULLs in a UNION
_DETAILS = union_all(
    select(
        RunParamRow.run_id,
        literal(0).label("kind"),
        RunParamRow.key,
        RunParamRow.value.label("text"),
        _NULL_FLOAT.label("number"),
        _NULL_FLOAT.label("low"),
        _NULL_FLOAT.label("high"),
    ),
    select(
        RunTagRow.run_id,
        literal(1),
        RunTagRow.key,
        RunTagRow.value,
        _NULL_FLOAT,
        _NULL_FLOAT,
        _NULL_FLOAT,
    ),
    select(
        LatestMetricRow.run_id,
        literal(2),
        LatestMetricRow.key,
        cast(null(), Text),
        LatestMetricRow.value,
        LatestMetricRow.min_value,
        LatestMetricRow.max_value,
    ),
).subquery("details")
_DETAILS_OF = select(_DETAILS).where(_DETAILS.c.run_id.in_(bindparam("ids", expanding=True)))
"""Params, tags and latest metrics of the runs ``ids``, in one statement built once."""


def load_runs(session: Session, rows: Iterable[Any]) -> list[Run]:
    """Assemble :class:`Run` records (params, latest metrics, tags...) from RUN_COLUMNS rows."""
    runs = {
        run_id: Run(run_id, experiment, name, status, user, project, start, end, parent)
        for run_id, name, status, user, project, start, end, parent, experiment, *_ in rows
    }
    if not runs:
        return []
    details = session.connection().execute(_DETAILS_OF, {"ids": list(runs)})
    for run_id, kind, key, text, number, low, high in details:
        run = runs[run_id]
        if kind == 0:
            run.params[key] = text
        elif kind == 1:
            run.tags[key] = text
        else:
            run.metrics[key] = number
            run.metric_min[key] = low
            run.metric_max[key] = high
    return list(runs.values())


def get_run(platform: Platform, run_id: str, *, with_env: bool = True) -> Run:
    """A run with everything recorded about it.

    Raises:
        NotFoundError: no such run.
    """
    check_run_id(run_id)
    with platform.read_session() as session:
        found = session.execute(
            run_query().add_columns(RunRow.env).where(RunRow.id == run_id)
        ).one_or_none()
        if found is None:
            raise NotFoundError(f"run {run_id} does not exist", hint="ghaf runs list")
        (run,) = load_runs(session, [found])
        inputs = tuple(
            session.execute(
                select(RunInputRow.node)
                .where(RunInputRow.run_id == run_id)
                .order_by(RunInputRow.node)
            ).scalars()
        )
        artifacts = dict(
            session.execute(
                select(RunArtifactRow.path, RunArtifactRow.digest).where(
                    RunArtifactRow.run_id == run_id
                )
            ).all()
        )
        env = json.loads(found.env) if with_env else {}
    return dataclasses.replace(run, inputs=inputs, artifacts=artifacts, env=env)


def get_metric_history(platform: Platform, run_id: str, key: str) -> list[MetricPoint]:
    """Every point of metric ``key`` of a run, by step then time."""
    check_run_id(run_id)
    with platform.read_session() as session:
        rows = session.connection().execute(
            select(MetricChunkRow.steps, MetricChunkRow.values, MetricChunkRow.timestamps)
            .where(MetricChunkRow.run_id == run_id, MetricChunkRow.key == key)
            .order_by(MetricChunkRow.id)
        )
        parts = [unpack_chunk(steps, values, stamps) for steps, values, stamps in rows]
    if not parts:
        return []
    steps = np.concatenate([p[0] for p in parts])
    values = np.concatenate([p[1] for p in parts])
    stamps = np.concatenate([p[2] for p in parts])
    order = np.lexsort((stamps, steps))  # stable: equal (step, time) keep logging order
    return [
        MetricPoint(key, float(v), int(s), float(t))
        for s, v, t in zip(
            steps[order].tolist(), values[order].tolist(), stamps[order].tolist(), strict=True
        )
    ]


def experiment_projects(platform: Platform) -> dict[str, str]:
    """Every experiment's project, by experiment name."""
    with platform.read_session() as session:
        return dict(
            session.execute(
                select(ExperimentRow.name, ExperimentRow.project).order_by(ExperimentRow.name)
            ).all()
        )


def run_project(platform: Platform, run_id: str) -> str:
    """The project a run belongs to.

    Raises:
        NotFoundError: no such run.
    """
    check_run_id(run_id)
    with platform.read_session() as session:
        project = session.execute(
            select(RunRow.project).where(RunRow.id == run_id)
        ).scalar_one_or_none()
    if project is None:
        raise NotFoundError(f"run {run_id} does not exist", hint="ghaf runs list")
    return str(project)


def list_experiments(platform: Platform) -> list[str]:
    with platform.read_session() as session:
        return list(
            session.execute(select(ExperimentRow.name).order_by(ExperimentRow.name)).scalars()
        )


def artifact_files(
    platform: Platform, run_id: str, path: str | None = None
) -> list[tuple[str, str, int]]:
    """A run's artifact files as ``(path, digest, size)``, by path (only ``path``'s, when
    given).

    Raises:
        NotFoundError: no such run.
    """
    check_run_id(run_id)
    query = select(RunArtifactRow.path, RunArtifactRow.digest, RunArtifactRow.size).where(
        RunArtifactRow.run_id == run_id
    )
    if path is not None:
        query = query.where(RunArtifactRow.path == path)
    with platform.read_session() as session:
        _run_row(session, run_id)
        rows = session.execute(query.order_by(RunArtifactRow.path)).all()
    return [(found, digest, int(size)) for found, digest, size in rows]


def download_artifacts(platform: Platform, run_id: str, path: str, dest: Path) -> Path:
    """Fetch a run's artifact file, or every file under directory ``path``, into ``dest``.

    Returns the local path of ``path`` (a file or a directory).
    """
    run = get_run(platform, run_id, with_env=False)
    prefix = path.strip("/")
    if prefix in run.artifacts:
        target = dest / Path(prefix).name
        platform.artifacts.get(run.artifacts[prefix], target)
        return target
    chosen = {p: d for p, d in run.artifacts.items() if p.startswith(prefix + "/")}
    if not chosen:
        raise NotFoundError(
            f"run {run_id} has no artifact {path!r}", hint=f"ghaf runs show {run_id}"
        )
    root = dest.resolve()
    for artifact_path, digest in chosen.items():
        target = (root / artifact_path[len(prefix) + 1 :]).resolve()
        if not target.is_relative_to(root):
            raise InvalidInputError(f"artifact path {artifact_path!r} escapes", hint="re-log it")
        platform.artifacts.get(digest, target)
    return root
