"""Features: definitions, materialization, historical retrieval (training sets).

Each feature definition belongs to the project it was first applied in (a name stays
with that project): reads are authorized there, and a caller with no role there sees no
definition, view or job of it. Applies and materializations name their project in the
body (default: the home's default project; a materialization of named views: theirs).
Materializations and retrievals run as jobs (:mod:`ghaf.server.jobs`): the request
answers 202 with a job id at once, the job calls the same governed service as embedded
mode, and its state outlives the client's connection.

Definitions sent over HTTP read only datasets: a source that is a file path (a file of
the server) or a SQL transform (DuckDB SQL reads and writes the server's files) is
applied on the home, not through here.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import Depends, Query
from fastapi import Path as PathParam
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ghaf.artifacts.base import CHUNK_SIZE
from ghaf.artifacts.scratch import scratch_dir
from ghaf.data import DatasetVersion, dataset_parquet_path, get_dataset
from ghaf.data.base import parse_ref as parse_dataset_ref
from ghaf.data.tables import DatasetVersionRow
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.features.classification import view_read_action
from ghaf.features.definitions import Definition, definitions_from_yaml
from ghaf.features.materialize import MaterializationResult, materialization_history, materialize
from ghaf.features.registry import (
    StoredDefinition,
    apply_definitions,
    definition_projects,
    get_definition,
    get_feature_view,
    list_definitions,
    plan_apply,
    resolve,
)
from ghaf.features.retrieval import get_historical_features, save_training_set
from ghaf.platform import Platform
from ghaf.registry.uploads import uploaded_to
from ghaf.security.identity import Actor
from ghaf.security.rbac import read_action
from ghaf.server.auth import Caller, caller
from ghaf.server.jobs import JOB_ID, JOBS_DIR, Job, JobBoard
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["features"])
CallerDep = Annotated[Caller, Depends(caller)]
READ = "features.read"
JOB_WORKERS = 1
"""Feature jobs a server process runs at once: a job holds up to two metadata
connections, and the request threads keep eight of the pool's ten."""
MAX_WAITING = 16
"""Feature jobs that may wait for a worker in one server process."""
_NAME = r"^[a-z_][a-z0-9_]{0,127}$"
_REF = r"^[a-z_][a-z0-9_]{0,127}(:[a-z_][a-z0-9_]{0,127})?$"
_DATASET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(:([1-9][0-9]{0,8}|latest))?$"
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_COLUMN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
Dtype = Literal["float64", "float32", "int64", "int32", "bool", "string", "timestamp"]
"""The feature types a definition may name (``ghaf.features.definitions.DTYPES``)."""
_DATASET_SOURCE = re.compile(r"^dataset:" + _DATASET[1:])
Text = Annotated[str, Field(max_length=4096)]
Label = Annotated[str, Field(max_length=256)]
_JOB_RESPONSE = {"description": "The job, as GET /features/jobs/{job_id} shows it."}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EntityDefinition(_Strict):
    name: str = Field(pattern=_NAME)
    join_keys: list[Annotated[str, Field(pattern=_NAME)]] = Field(min_length=1, max_length=16)
    description: Text = ""
    key_dtype: Dtype = "int64"


class FeatureField(_Strict):
    name: str = Field(pattern=_NAME)
    dtype: Dtype = "float64"


class ViewDefinition(_Strict):
    name: str = Field(pattern=_NAME)
    entities: list[Annotated[str, Field(pattern=_NAME)]] = Field(min_length=1, max_length=16)
    source: str | dict[str, Any] = Field(
        description="dataset:NAME or dataset:NAME:V (file paths and SQL transforms are "
        "applied on the home)"
    )
    features: list[FeatureField] = Field(min_length=1, max_length=1000)
    timestamp_field: str = Field(default="event_ts", pattern=_NAME)
    created_timestamp_field: str | None = Field(default=None, pattern=_NAME)
    ttl_seconds: float | None = Field(default=None, gt=0, le=100 * 365 * 86_400)
    owner: Label = ""
    tags: dict[Annotated[str, Field(max_length=128)], Label] = Field(
        default_factory=dict, max_length=64
    )
    classification: str | None = Field(default=None, max_length=64)
    description: Text = ""

    @field_validator("source")
    @classmethod
    def _dataset_only(cls, value: str | dict[str, Any]) -> str:
        if isinstance(value, str) and _DATASET_SOURCE.match(value):
            return value
        raise ValueError(
            "a feature view applied through the server reads a dataset (dataset:NAME or "
            "dataset:NAME:V); file paths and SQL transforms read the server's files, so they "
            "are applied on the home"
        )


class ServiceDefinition(_Strict):
    name: str = Field(pattern=_NAME)
    features: list[Annotated[str, Field(pattern=_REF)]] = Field(min_length=1, max_length=1000)
    owner: Label = ""
    description: Text = ""


class Definitions(_Strict):
    """What a definitions YAML file holds: entities, feature views, feature services."""

    entities: list[EntityDefinition] = Field(default_factory=list, max_length=1000)
    feature_views: list[ViewDefinition] = Field(default_factory=list, max_length=1000)
    feature_services: list[ServiceDefinition] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _entities_sent(self) -> Definitions:
        known = {e.name for e in self.entities}
        for i, view in enumerate(self.feature_views):
            for entity in view.entities:
                if entity not in known:
                    raise ValueError(
                        f"feature_views.{i} ({view.name}) names entity {entity!r}, which is "
                        "not among the entities sent: send each entity with its views"
                    )
        return self


class Apply(_Strict):
    definitions: Definitions
    project: str | None = Field(
        default=None,
        pattern=_PROJECT,
        description="The project they are applied in (default: the home's default project).",
    )
    force: bool = Field(default=False, description="Allow incompatible changes (audited).")
    dry_run: bool = Field(default=False, description="Only answer the diff.")
    source: str = Field(
        default="http", pattern=r"^[^\x00-\x1f]{1,1024}$", description="Where they came from."
    )


class Materialization(_Strict):
    project: str | None = Field(
        default=None,
        pattern=_PROJECT,
        description="The project whose views are materialized (default: the named views' "
        "project, else the home's default project).",
    )
    views: list[Annotated[str, Field(pattern=_NAME)]] | None = Field(
        default=None, max_length=1000, description="Views of the project (default: all)."
    )
    until: AwareDatetime | None = Field(default=None, description="Default: now.")
    full: bool = Field(default=False, description="Rebuild instead of incremental.")


class EntityRows(_Strict):
    """Where the entity rows (join keys, timestamps, carried columns) come from: one of."""

    upload: str | None = Field(
        default=None,
        pattern=_SHA256,
        description="SHA-256 of a Parquet file uploaded to the retrieval's project.",
    )
    dataset: str | None = Field(default=None, pattern=_DATASET, description="NAME or NAME:V.")

    @model_validator(mode="after")
    def _one(self) -> EntityRows:
        if (self.upload is None) == (self.dataset is None):
            raise ValueError("name exactly one of upload (a file's SHA-256) and dataset")
        return self


class Retrieval(_Strict):
    name: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$", description="Training set to save."
    )
    project: str | None = Field(
        default=None, pattern=_PROJECT, description="Where it is saved (default: the features')."
    )
    features: list[Annotated[str, Field(pattern=_REF)]] | None = Field(
        default=None, min_length=1, max_length=1000
    )
    feature_service: str | None = Field(default=None, pattern=_NAME)
    entities: EntityRows
    timestamp_column: str = Field(default="event_ts", pattern=_COLUMN)
    full_feature_names: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> Retrieval:
        if (self.features is None) == (self.feature_service is None):
            raise ValueError("name exactly one of features and feature_service")
        return self

    @property
    def wanted(self) -> list[str] | str:
        return self.features if self.features is not None else str(self.feature_service)


_BOARDS: dict[Path, JobBoard] = {}
_BOARDS_LOCK = threading.Lock()


def board(platform: Platform) -> JobBoard:
    """The job board of this process for ``platform``'s home."""
    root = platform.settings.home / JOBS_DIR
    with _BOARDS_LOCK:
        found = _BOARDS.get(root)
        if found is None:
            found = _BOARDS[root] = JobBoard(root, workers=JOB_WORKERS, max_waiting=MAX_WAITING)
        return found


def _definition(d: StoredDefinition) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "name": d.name,
        "version": d.version,
        "spec": d.spec,
        "project": d.project,
    }


def materialization_json(result: MaterializationResult) -> dict[str, Any]:
    """A materialization as the API answers it: a sealed (pii) view's statistics stay out,
    they would show its values' range in clear."""
    return {
        "view": result.view,
        "version": result.version,
        "mode": result.mode,
        "start": result.start,
        "watermark": result.watermark,
        "rows": result.rows,
        "stats": None if result.sealed else result.stats,
        "sealed": result.sealed,
    }


def training_set_json(version: DatasetVersion) -> dict[str, Any]:
    """A saved training set as the API answers it."""
    return {
        "name": version.name,
        "version": version.version,
        "rows": version.num_rows,
        "digest": version.digest,
        "size": version.size,
        "columns": version.schema.names,
        "column_tags": version.column_tags,
    }


async def _may_read_features(who: Caller, resource: str) -> StoredDefinition:
    """The definition ``resource`` (``KIND:NAME``, latest version) once the caller may
    read features in its project; else the same 404 as for one that does not exist (the
    refusal is audited)."""
    kind, _, name = resource.partition(":")
    missing = f"{kind.replace('_', ' ')} {name!r} does not exist"
    hint = "GET /api/v1/features/definitions lists the definitions you may read"
    try:
        found = await run_in_threadpool(get_definition, who.platform, kind, name)
    except NotFoundError:
        raise NotFoundError(missing, hint=hint) from None
    await who.authorize_hidden(READ, resource, found.project, missing=missing, hint=hint)
    return found


def _dataset_project(platform: Platform, version: DatasetVersion) -> str:
    with platform.read_session() as session:
        return str(
            session.execute(
                select(DatasetVersionRow.project).where(
                    DatasetVersionRow.name == version.name,
                    DatasetVersionRow.version == version.version,
                )
            ).scalar_one()
        )


async def _readable_dataset(who: Caller, ref: str) -> DatasetVersion:
    """The dataset version ``ref`` names once the caller may read it (``dataset.read_pii``
    when a column is tagged sensitive); else the 404 of one that does not exist."""
    name, number = parse_dataset_ref(ref)
    version = await run_in_threadpool(get_dataset, who.platform, ref)
    project = await run_in_threadpool(_dataset_project, who.platform, version)
    await who.authorize_hidden(
        read_action("dataset", version.column_tags.values()),
        f"dataset:{version.name}",
        project,
        # as get_dataset words a missing one
        missing=f"dataset {name!r} does not exist"
        if number is None
        else f"dataset version {name}:{number} does not exist",
        hint=f"ghaf data versions {name}",
    )
    return version


async def _authorize_read(who: Caller, action: str, resource: str, project: str) -> None:
    """Authorize a read; a read of pii is audited even when allowed."""
    await who.guard.aauthorize(
        who.key,
        who.actor,
        action,
        resource,
        project,
        audit_allowed=action.endswith("_pii"),
        source=who.source,
    )


async def _submit(
    who: Caller, kind: str, project: str, request: dict[str, Any], work: Callable[[], Any]
) -> JsonResponse:
    jobs = board(who.platform)
    job = await run_in_threadpool(jobs.submit, kind, project, who.actor.name, request, work)
    return JsonResponse(job, status_code=202, headers={"location": f"jobs/{job.id}"})


@router.read("/features/definitions", action=READ)
async def definitions(
    who: CallerDep,
    kind: Annotated[
        Literal["entity", "feature_view", "feature_service", "on_demand_feature_view"] | None,
        Query(),
    ] = None,
    project: Annotated[str | None, Query(pattern=_PROJECT)] = None,
) -> JsonResponse:
    """The latest version of every definition (of ``kind``, of ``project``) the caller
    may read."""
    held = await run_in_threadpool(definition_projects, who.platform)
    allowed = who.readable(READ, [p for p in held if project in (None, p)])
    stored = await run_in_threadpool(
        functools.partial(list_definitions, who.platform, projects=allowed)
    )
    return JsonResponse({"definitions": [_definition(d) for d in stored if kind in (None, d.kind)]})


def _view_answer(platform: Platform, name: str, version: int | None, project: str) -> Any:
    view, number = get_feature_view(platform, name, version)
    history = [
        {k: v for k, v in materialization_json(m).items() if k not in ("stats", "sealed")}
        for m in materialization_history(platform, name)[:20]
    ]
    stored = StoredDefinition("feature_view", name, number, view.spec(), project)
    return {**_definition(stored), "materializations": history}


@router.read("/features/views/{name}", action=READ)
async def feature_view(
    name: Annotated[str, PathParam(pattern=_NAME)],
    who: CallerDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> JsonResponse:
    """A feature view (latest or ``version``) and its last materializations."""
    project = (await _may_read_features(who, f"feature_view:{name}")).project
    return JsonResponse(await run_in_threadpool(_view_answer, who.platform, name, version, project))


@router.read("/features/entities/{name}", action=READ)
async def entity(name: Annotated[str, PathParam(pattern=_NAME)], who: CallerDep) -> JsonResponse:
    """An entity (latest version)."""
    return JsonResponse(_definition(await _may_read_features(who, f"entity:{name}")))


@router.read("/features/services/{name}", action=READ)
async def service(name: Annotated[str, PathParam(pattern=_NAME)], who: CallerDep) -> JsonResponse:
    """A feature service (latest version)."""
    return JsonResponse(_definition(await _may_read_features(who, f"feature_service:{name}")))


@router.write("POST", "/features/definitions", action="features.apply")
async def apply(body: Apply, who: CallerDep) -> JsonResponse:
    """Apply definitions (a definitions YAML file's content): new versions of what changed.

    An incompatible change (keys, types, a removed feature) needs ``force`` (audited);
    ``dry_run`` answers the diff without applying it. A name of another project's is
    refused (409): it stays with the project of its first version.
    """
    project = body.project or who.platform.default_project
    # Checked here too (the spine checks again), so a refused caller learns nothing of
    # the datasets named below.
    await who.authorize("features.apply", f"feature_definitions:{body.source}", project)
    items: list[Definition] = await run_in_threadpool(
        definitions_from_yaml, body.definitions.model_dump()
    )
    for view in body.definitions.feature_views:
        await _readable_dataset(who, str(view.source).removeprefix("dataset:"))
    if body.dry_run:
        changes = await run_in_threadpool(plan_apply, who.in_project(project), items)
    else:
        changes = await run_in_threadpool(
            functools.partial(
                apply_definitions,
                who.in_project(project),
                who.actor,
                items,
                source=body.source,
                force=body.force,
            )
        )
    applied = 0 if body.dry_run else sum(c.action != "unchanged" for c in changes)
    return JsonResponse(
        {"project": project, "dry_run": body.dry_run, "changes": changes, "applied": applied}
    )


@router.write(
    "POST",
    "/features/materializations",
    action="features.materialize",
    status_code=202,
    responses={202: _JOB_RESPONSE},
)
async def materialize_views(body: Materialization, who: CallerDep) -> JsonResponse:
    """Write the latest feature values into the online store, as a job (pii sealed or
    refused per ``security.online_pii``, as in embedded mode)."""
    owners = [
        (await _may_read_features(who, f"feature_view:{name}")).project for name in body.views or ()
    ]
    project = body.project or (owners[0] if owners else who.platform.default_project)
    await who.authorize("features.materialize", f"online_store:{project}", project)
    for name, owner in zip(body.views or (), owners, strict=True):
        if owner != project:
            raise InvalidInputError(
                f"views: {name!r} is a feature view of project {owner!r}, not {project!r}",
                hint="materialize each project's views in their project",
            )
    platform, actor = who.in_project(project), who.actor

    def work() -> dict[str, Any]:
        results = materialize(platform, actor, body.views, until=body.until, full=body.full)
        return {"materializations": [materialization_json(r) for r in results]}

    return await _submit(who, "materialize", project, body.model_dump(mode="json"), work)


def _retrieve(
    platform: Platform, actor: Actor, project: str, body: Retrieval, entities: str
) -> dict[str, Any]:
    """The retrieval job: entity rows, point-in-time join, saved as a training set."""
    with scratch_dir(platform.settings.home, "retrieval-") as workdir:
        if body.entities.upload is not None:
            path = workdir / "entities.parquet"
            platform.artifacts.get(body.entities.upload, path)
        else:
            path = dataset_parquet_path(platform, entities)
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InvalidInputError(
                f"the entity rows are not a readable Parquet file: {exc}",
                hint="upload a Parquet file with the join keys and the timestamp column",
            ) from exc
        rows = get_historical_features(
            platform,
            table,
            body.wanted,
            timestamp_column=body.timestamp_column,
            full_feature_names=body.full_feature_names,
        )
        saved = save_training_set(platform.in_project(project), actor, body.name, rows, body.wanted)
    return {"training_set": training_set_json(saved)}


@router.write(
    "POST",
    "/features/retrievals",
    action="features.save_training_set",
    status_code=202,
    responses={202: _JOB_RESPONSE},
)
async def retrieve(body: Retrieval, who: CallerDep) -> JsonResponse:
    """Point-in-time features for entity rows (an uploaded Parquet file or a dataset),
    saved as a training set (a dataset version), as a job; GET its result to download."""
    wanted = body.wanted
    first = wanted if isinstance(wanted, str) else wanted[0].partition(":")[0]
    resource = f"feature_service:{first}" if isinstance(wanted, str) else f"feature_view:{first}"
    features_in = (await _may_read_features(who, resource)).project
    selections, _ = await run_in_threadpool(resolve, who.platform, wanted)
    for s in selections:
        view = f"feature_view:{s.view.name}"
        owner = (await _may_read_features(who, view)).project
        action = await run_in_threadpool(view_read_action, who.platform, s.view, s.version)
        if action != READ:
            await _authorize_read(who, action, view, owner)
    project = body.project or features_in
    await who.authorize("features.save_training_set", f"dataset:{body.name}", project)
    request = body.model_dump(mode="json")
    entities = ""
    if body.entities.upload is not None:
        digest = body.entities.upload
        if digest not in await run_in_threadpool(uploaded_to, who.platform, project, [digest]):
            raise NotFoundError(
                f"entity file sha256 {digest} was not uploaded to project {project!r}",
                hint=f"upload it first: POST /api/v1/projects/{project}/artifacts",
            )
    else:
        source = await _readable_dataset(who, str(body.entities.dataset))
        entities = source.ref  # pinned: the version authorized is the version read
        request["entity_tags"] = sorted(set(source.column_tags.values()))
    platform, actor = who.platform, who.actor
    work = functools.partial(_retrieve, platform, actor, project, body, entities)
    return await _submit(who, "retrieval", project, request, work)


async def _readable_job(who: Caller, job_id: str) -> Job:
    missing = f"job {job_id} does not exist"
    hint = "check the id the job was submitted under"  # the board's own words for a miss
    job = await run_in_threadpool(board(who.platform).get, job_id)
    await who.authorize_hidden(
        READ, f"feature_job:{job_id}", job.project, missing=missing, hint=hint
    )
    return job


@router.read("/features/jobs", action=READ)
async def jobs(who: CallerDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> JsonResponse:
    """The newest feature jobs of the caller's projects, newest first."""

    def may_read(project: str) -> bool:
        return bool(who.readable(READ, [project]))

    found = await run_in_threadpool(board(who.platform).list, may_read, limit)
    return JsonResponse({"jobs": found})


@router.read("/features/jobs/{job_id}", action=READ)
async def job(job_id: Annotated[str, PathParam(pattern=JOB_ID)], who: CallerDep) -> JsonResponse:
    """A job: queued, running, succeeded (with its result), failed (with the problem) or
    interrupted (the server stopped before it finished: submit it again)."""
    return JsonResponse(await _readable_job(who, job_id))


def _file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


@router.read(
    "/features/jobs/{job_id}/result",
    action="dataset.read",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The training set as Parquet; its SHA-256 in X-Ghaf-SHA256.",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def job_result(
    job_id: Annotated[str, PathParam(pattern=JOB_ID)], who: CallerDep
) -> StreamingResponse:
    """A retrieval job's training set, as Parquet (``dataset.read_pii`` when a column of it
    or of its entity rows is tagged sensitive)."""
    job = await _readable_job(who, job_id)
    if job.kind != "retrieval" or job.status != "succeeded" or job.result is None:
        raise InvalidInputError(
            f"job {job_id} has no training set to download ({job.kind}, {job.status})",
            hint=f"GET /api/v1/features/jobs/{job_id} until it has succeeded",
        )
    saved = job.result["training_set"]
    tags = [*saved["column_tags"].values(), *job.request.get("entity_tags", [])]
    action = read_action("dataset", tags)
    await _authorize_read(who, action, f"dataset:{saved['name']}", job.project)
    ref = f"{saved['name']}:{saved['version']}"
    path = await run_in_threadpool(dataset_parquet_path, who.platform, ref)
    return StreamingResponse(
        _file(path),
        media_type="application/octet-stream",
        headers={"x-ghaf-sha256": saved["digest"], "content-length": str(saved["size"])},
    )
