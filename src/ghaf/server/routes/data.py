"""Data: datasets and their versions, validation, diffs, previews, lineage and OpenLineage;
the governed writes (ingest from an upload or a URL, write, stream records).

A dataset version belongs to the project its write was governed in: a caller reads the
versions of projects where it may ``dataset.read``, and another project's version reads
as missing (404). Lineage shows only nodes of projects the caller may ``lineage.read``.

Files reach an ingest through the artifact upload route (``POST
/projects/{project}/artifacts``): the ingest names the digest, and only a file uploaded
to that same project is used. A URL is fetched by the server within what its settings
allow (:mod:`ghaf.server.fetch`). SQL transforms run here: their DuckDB reads the
inputs and no other file (:mod:`ghaf.data.transforms`); a Python transform is the
caller's code, so it never runs on the server.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import orjson
import pyarrow as pa
import yaml
from fastapi import Depends, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, Response, StreamingResponse

from ghaf.access.authorize import audit_denied, authorize_read
from ghaf.artifacts.scratch import scratch_dir
from ghaf.data.base import DatasetVersion, Source
from ghaf.data.catalog import MAX_PREVIEW_ROWS, preview, project_of, version_document
from ghaf.data.contracts import Contract, contract_from_dict
from ghaf.data.diff import diff_versions
from ghaf.data.ingest import ingest, validate
from ghaf.data.residency import object_tags
from ghaf.data.sources import ParquetSource, open_source
from ghaf.data.store import (
    check_dataset_project,
    dataset_projects,
    get_dataset,
    list_versions,
    version_projects,
    write_dataset,
)
from ghaf.data.stream import write_micro_batch
from ghaf.data.transforms import run_transform
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.lineage.graph import NODE_KINDS, check_node
from ghaf.platform import Platform
from ghaf.projects.service import project_names
from ghaf.provenance import dataset_missing, node_project, visible_graph
from ghaf.registry.uploads import require_uploaded
from ghaf.security.rbac import read_action
from ghaf.server.auth import Caller, caller
from ghaf.server.fetch import UrlPolicy, UrlRefusedError, check_url, fetch, file_name
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["data"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_SHA256 = r"^[0-9a-f]{64}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_REF = r"^(dataset:)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(:[A-Za-z0-9]{1,20})?$"
_ENCODING = r"^[A-Za-z0-9_.-]{1,40}$"
MAX_CONTRACT = 1024 * 1024
"""Characters of a contract sent with an ingest."""
MAX_QUERY_CONTRACT = 8192
"""Characters of a contract sent in a validation's query string."""
MAX_RECORDS = 10_000
"""Records one stream request may carry."""
MAX_SQL = 1024 * 1024
"""Characters of a transform's SQL."""
_ALIAS = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
NameParam = Annotated[str, PathParam(pattern=_NAME)]
RefParam = Annotated[str, PathParam(pattern=_REF)]
MAX_PREVIEW_COLUMNS = 100
"""Columns a preview may name: the request line stays far below the 80 KiB the HTTP
parser takes (a longer one is refused by uvicorn as plain text, before the API can answer)."""
ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ContractText(BaseModel):
    """A data contract as its YAML (or JSON) text, and the name errors call it by."""

    text: str = Field(max_length=MAX_CONTRACT)
    name: str = Field(default="contract", min_length=1, max_length=1024)


class Upload(BaseModel):
    """A file uploaded to the project (``POST /projects/{project}/artifacts``)."""

    digest: str = Field(pattern=_SHA256)
    filename: str = Field(
        min_length=1,
        max_length=4096,
        description="The file's name (its suffix tells the format: .csv, .tsv, .parquet, "
        ".jsonl); errors and the version's source name the file by it.",
    )


class NewIngest(BaseModel):
    """Ingest an uploaded file or a URL (fetched by the server) as a new version."""

    project: str = Field(pattern=_PROJECT)
    upload: Upload | None = None
    url: str | None = Field(default=None, min_length=1, max_length=4096)
    contract: ContractText | None = None
    encoding: str = Field(default="utf-8", pattern=_ENCODING)

    @model_validator(mode="after")
    def _one_source(self) -> NewIngest:
        if (self.upload is None) == (self.url is None):
            raise ValueError("give exactly one of upload and url")
        return self


class NewVersion(BaseModel):
    """Write an uploaded Parquet file as a new version, with its lineage and tags."""

    project: str = Field(pattern=_PROJECT)
    upload: Upload
    source: str = Field(min_length=1, max_length=2000)
    inputs: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=1000
    )
    column_tags: dict[
        Annotated[str, Field(min_length=1, max_length=256)],
        Literal["pii", "sensitive", "public"],
    ] = Field(default_factory=dict, max_length=10_000)
    residency: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,64}$")


class Records(BaseModel):
    """Records appended exactly once: a record whose key the dataset holds is skipped."""

    project: str = Field(pattern=_PROJECT)
    records: list[dict[Annotated[str, Field(max_length=256)], Any]] = Field(
        min_length=1, max_length=MAX_RECORDS
    )
    keys: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        min_length=1, max_length=MAX_RECORDS
    )
    source: str = Field(default="http", min_length=1, max_length=500)

    @model_validator(mode="after")
    def _aligned(self) -> Records:
        if len(self.keys) != len(self.records):
            raise ValueError(f"keys has {len(self.keys)} items, records {len(self.records)}")
        return self


class NewTransform(BaseModel):
    """A SQL transform the server runs: its inputs, the query and its parameters."""

    project: str = Field(pattern=_PROJECT)
    inputs: dict[Annotated[str, Field(pattern=_ALIAS)], Annotated[str, Field(pattern=_REF)]] = (
        Field(
            min_length=1,
            max_length=64,
            description="alias -> dataset ref (NAME or NAME:V); each alias is a view in the SQL.",
        )
    )
    fn: None = Field(
        default=None,
        description="Never accepted: a Python transform is the caller's code, run on a home.",
    )
    sql: str = Field(
        min_length=1,
        max_length=MAX_SQL,
        description="A DuckDB query over the inputs' views; it reads no other file.",
    )
    params: dict[
        Annotated[str, Field(pattern=_ALIAS)],
        Annotated[str, Field(max_length=10_000)] | int | float | bool | None,
    ] = Field(default_factory=dict, max_length=256, description="Bound as $name in the SQL.")

    @field_validator("fn", mode="before")
    @classmethod
    def _no_code(cls, value: Any) -> None:
        if value is not None:
            raise ValueError(
                "a Python transform is the caller's code and never runs on the server: send "
                "sql, or run the function on a home (unset GHAF_URL)"
            )


# Reading ---------------------------------------------------------------------------


async def _readable(who: Caller, ref: str, action: str = "dataset.read") -> DatasetVersion:
    """The version ``ref`` names once the caller may read its project; else 404 (the
    same answer as for a version that does not exist)."""
    try:
        version = await run_in_threadpool(get_dataset, who.platform, ref)
        project = await run_in_threadpool(project_of, who.platform, version)
    except NotFoundError as exc:
        raise dataset_missing(ref) from exc
    missing = dataset_missing(ref)
    await who.authorize_hidden(
        action,
        f"dataset:{version.name}",
        project,
        missing=missing.headline,
        hint=str(missing.hint),
    )
    return version


def _documents(platform: Platform, versions: list[DatasetVersion]) -> list[dict[str, Any]]:
    projects = version_projects(platform, versions[0].name) if versions else {}
    return [version_document(v, projects[v.version]) for v in versions]


@router.read("/datasets", action="dataset.read")
async def datasets(who: CallerDep) -> dict[str, Any]:
    """The datasets of the caller's projects: name, latest version, project."""
    every = await run_in_threadpool(dataset_projects, who.platform)
    allowed = set(who.readable("dataset.read", [d["project"] for d in every]))
    return {"datasets": [d for d in every if d["project"] in allowed]}


@router.read("/datasets/{name}/versions", action="dataset.read")
async def versions(name: NameParam, who: CallerDep) -> JsonResponse:
    """Every version of a dataset the caller may read, oldest first."""
    found = await run_in_threadpool(list_versions, who.platform, name)
    projects = await run_in_threadpool(version_projects, who.platform, name)
    allowed = set(who.readable("dataset.read", projects.values()))
    readable = [v for v in found if projects.get(v.version) in allowed]
    if not readable:
        raise dataset_missing(name)
    return JsonResponse({"versions": _documents(who.platform, readable)})


@router.read("/datasets/{ref}", action="dataset.read")
async def version(ref: RefParam, who: CallerDep) -> JsonResponse:
    """One version (``NAME`` for the latest, ``NAME:3``): schema, tags, profile, contract."""
    found = await _readable(who, ref)
    return JsonResponse(_documents(who.platform, [found])[0])


@router.read("/datasets/{ref}/diff/{other}", action="dataset.read")
async def diff(ref: RefParam, other: RefParam, who: CallerDep) -> JsonResponse:
    """Schema and profile changes from version ``ref`` to version ``other``."""
    a = await _readable(who, ref)
    b = await _readable(who, other)
    changes = await run_in_threadpool(diff_versions, who.platform, a.ref, b.ref)
    return JsonResponse(changes.to_dict())


@router.read("/datasets/{ref}/rows", action="dataset.read")
async def rows(
    ref: RefParam,
    who: CallerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW_ROWS)] = 20,
    column: Annotated[list[ColumnName] | None, Query(max_length=MAX_PREVIEW_COLUMNS)] = None,
) -> Response:
    """The first rows of a version (at most 1,000), all columns or the named ones (at most
    100; name none for all); a version with a pii or sensitive column (or upstream of one)
    needs ``dataset.read_pii``, and each such read is audited."""
    found = await _readable(who, ref)
    await _authorize_rows(who, found)
    shown = await run_in_threadpool(
        functools.partial(preview, who.platform, found.ref, limit=limit, columns=column)
    )
    return Response(orjson.dumps(shown), media_type="application/json")


async def _authorize_rows(who: Caller, found: DatasetVersion) -> None:
    """Allow reading the rows of ``found``: a version with a pii or sensitive column (or
    upstream of one) needs ``dataset.read_pii``, and each such read is audited."""
    project = await run_in_threadpool(project_of, who.platform, found)
    tags = await run_in_threadpool(object_tags, who.platform, found.node)
    action = read_action("dataset", tags)
    if action != "dataset.read":
        await run_in_threadpool(
            functools.partial(
                authorize_read,
                who.platform,
                who.actor,
                action,
                found.node,
                project,
                audit_allowed=True,
            )
        )


def _contract(text: ContractText | None) -> Contract | None:
    """The contract ``text`` holds, its errors naming it as the caller does."""
    if text is None:
        return None
    try:
        body = yaml.safe_load(text.text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"contract {text.name} is not valid YAML: {exc}") from exc
    return contract_from_dict(body or {}, where=text.name)


@router.read(
    "/datasets/{ref}/validation",
    action="dataset.read",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def validation(
    ref: RefParam,
    who: CallerDep,
    contract: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CONTRACT)],
    contract_name: Annotated[str, Query(min_length=1, max_length=1024)] = "contract",
    format: Annotated[Literal["json", "html"], Query()] = "json",
) -> Response:
    """Check a stored version against a contract (YAML or JSON text); stores nothing.

    A failed error-severity check is in the report (``ok`` false), not a refusal."""
    found = await _readable(who, ref)
    spec = _contract(ContractText(text=contract, name=contract_name))
    report = await run_in_threadpool(validate, who.platform, found.ref, spec)
    if format == "html":
        return HTMLResponse(report.to_html())
    return Response(orjson.dumps(report.to_dict()), media_type="application/json")


# Lineage ---------------------------------------------------------------------------


@router.read("/lineage/{node}", action="lineage.read")
async def lineage(
    node: Annotated[str, PathParam(min_length=3, max_length=300)], who: CallerDep
) -> dict[str, Any]:
    """The nodes upstream and downstream of ``node`` (e.g. ``dataset:tx:1``,
    ``model:fraud:2``, ``run:ID``) and its direct edges, within the caller's projects."""
    check_node(node)
    project = await run_in_threadpool(node_project, who.platform, node)
    missing = f"lineage node {node!r} has no edges"
    if project is None:
        raise NotFoundError(missing, hint="check the node id")
    await who.authorize_hidden(
        "lineage.read", node, project, missing=missing, hint="check the node id"
    )
    graph = await run_in_threadpool(visible_graph, who, node)
    return {
        "node": node,
        "upstream": graph.upstream,
        "downstream": graph.downstream,
        "edges": graph.edges,
    }


def _dataset_part(ref: dict[str, Any]) -> str:
    return str(ref.get("name", "")).partition(":")[0]


def _events(
    path: Path, namespaces: set[str], visible: set[str], dataset: str | None
) -> Iterator[bytes]:
    """The sink file's events whose job is in ``namespaces`` (and that read or wrote
    ``dataset``), one JSON line each; a Ghaf dataset not in ``visible`` (another
    project's, read by one of these jobs) is left out of its inputs and outputs."""
    with path.open("rb") as handle:
        for line in handle:
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by a crash while it was appended
            if event.get("job", {}).get("namespace") not in namespaces:
                continue
            for side in ("inputs", "outputs"):
                event[side] = [
                    d
                    for d in event.get(side, ())
                    if not str(d.get("namespace", "")).startswith("ghaf://")
                    or _dataset_part(d) in visible
                ]
            if dataset is not None and not any(
                _dataset_part(d) == dataset for d in (*event["inputs"], *event["outputs"])
            ):
                continue
            yield orjson.dumps(event) + b"\n"


@router.read(
    "/openlineage/events",
    action="lineage.read",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def openlineage(
    who: CallerDep,
    project: Annotated[str | None, Query(pattern=_PROJECT)] = None,
    dataset: Annotated[str | None, Query(pattern=_NAME)] = None,
) -> StreamingResponse:
    """The OpenLineage RunEvents (2-0-2) of ingests and transforms in the caller's
    projects (or ``project``), oldest first, as JSON lines: what a lineage server
    (Marquez, DataHub...) takes."""
    settings = who.platform.settings
    url = settings.lineage_url
    if url is not None and (url == "off" or url.startswith(("http://", "https://"))):
        raise NotFoundError(
            "this server keeps no OpenLineage events: they are sent to its lineage_url",
            hint="read them where the server's lineage_url sends them",
        )
    path = (
        Path(url.removeprefix("file://"))
        if url
        else settings.home / "lineage" / "openlineage.jsonl"
    )
    if project is not None:
        await who.authorize_hidden(
            "lineage.read",
            f"project:{project}",
            project,
            missing=f"project {project!r} does not exist",
            hint="GET /api/v1/projects lists yours",
        )
        projects = [project]
    else:
        projects = who.readable("lineage.read", await run_in_threadpool(_project_names, who))
    namespaces = {f"ghaf://{p}" for p in projects}
    every = await run_in_threadpool(dataset_projects, who.platform)
    readable = set(who.readable("dataset.read", [d["project"] for d in every]))
    visible = {d["name"] for d in every if d["project"] in readable}
    if not path.is_file():
        return StreamingResponse(iter(()), media_type="application/x-ndjson")
    return StreamingResponse(
        _events(path, namespaces, visible, dataset), media_type="application/x-ndjson"
    )


def _project_names(who: Caller) -> list[str]:
    return project_names(who.platform)


# Writing ---------------------------------------------------------------------------


@dataclass
class _Named:
    """A source read from a scratch file, described (and its errors worded) by the
    name the caller knows it by."""

    inner: Source
    scratch: str
    shown: str

    def describe(self) -> str:
        return self.inner.describe().replace(self.scratch, self.shown)

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self.inner.batches()
        except InvalidInputError as exc:
            _raise_renamed(exc, self.scratch, self.shown)


def _raise_renamed(error: InvalidInputError, scratch: str, shown: str) -> NoReturn:
    """Raise ``error`` naming the file as the caller knows it, not by its scratch path."""
    if scratch not in error.headline:
        raise error
    raise InvalidInputError(error.headline.replace(scratch, shown), hint=error.hint) from error


def _ingest_file(
    who: Caller,
    name: str,
    project: str,
    path: Path,
    shown: str,
    spec: Contract | None,
    encoding: str,
) -> DatasetVersion:
    types = spec.arrow_types() if spec else None
    try:
        source = open_source(path, column_types=types, encoding=encoding)
    except InvalidInputError as exc:
        _raise_renamed(exc, str(path), shown)
    named = _Named(source, str(path), shown)
    return ingest(who.in_project(project), who.actor, named, name, contract=spec)


def _ingest_upload(
    who: Caller, name: str, body: NewIngest, upload: Upload, spec: Contract | None
) -> DatasetVersion:
    platform = who.platform
    require_uploaded(platform, body.project, {upload.filename: upload.digest})
    with scratch_dir(platform.settings.home, "ingest-") as directory:
        path = directory / file_name(upload.filename)
        platform.artifacts.get(upload.digest, path)  # verified against its digest
        return _ingest_file(who, name, body.project, path, upload.filename, spec, body.encoding)


def _ingest_url(who: Caller, name: str, body: NewIngest, url: str, spec: Contract | None) -> Any:
    platform = who.platform
    policy = UrlPolicy.of(platform.settings.ingest)
    try:
        local = check_url(url, policy)
        if local is not None:
            return _ingest_file(who, name, body.project, local, str(local), spec, body.encoding)
        with scratch_dir(platform.settings.home, "fetch-") as directory:
            path = directory / file_name(url)
            fetch(url, path, policy)
            return _ingest_file(who, name, body.project, path, url, spec, body.encoding)
    except UrlRefusedError as exc:
        audit_denied(
            platform, who.actor, "dataset.ingest", f"dataset:{name}", body.project, exc.headline
        )
        raise


@router.write("POST", "/datasets/{name}/ingest", action="dataset.ingest", status_code=201)
async def new_ingest(name: NameParam, body: NewIngest, who: CallerDep) -> JsonResponse:
    """Ingest an uploaded file, or a URL the server may fetch, as a new version of
    ``name`` checked against the contract (a failed error-severity check stores nothing)."""
    await who.authorize("dataset.ingest", f"dataset:{name}", body.project)
    spec = _contract(body.contract)
    # Refused before a URL is fetched or a file staged (the service refuses it anyway).
    await run_in_threadpool(check_dataset_project, who.in_project(body.project), name)
    if body.upload is not None:
        made = await run_in_threadpool(_ingest_upload, who, name, body, body.upload, spec)
    else:
        assert body.url is not None  # nosec B101 - type narrowing
        made = await run_in_threadpool(_ingest_url, who, name, body, body.url, spec)
    return JsonResponse(version_document(made, body.project), status_code=201)


def _write_upload(who: Caller, name: str, body: NewVersion) -> DatasetVersion:
    platform = who.platform
    require_uploaded(platform, body.project, {body.upload.filename: body.upload.digest})
    with scratch_dir(platform.settings.home, "write-") as directory:
        path = directory / "data.parquet"
        platform.artifacts.get(body.upload.digest, path)
        source = _Named(ParquetSource(path), str(path), body.upload.filename)
        return write_dataset(
            who.in_project(body.project),
            who.actor,
            name,
            source.batches(),
            source=body.source,
            inputs=body.inputs,
            column_tags=body.column_tags,
            residency=body.residency,
        )


@router.write("POST", "/datasets/{name}/versions", action="dataset.write", status_code=201)
async def new_version(name: NameParam, body: NewVersion, who: CallerDep) -> JsonResponse:
    """Write an uploaded Parquet file as a new version of ``name``, with its lineage
    (dataset refs or node ids it derives from), column tags and residency."""
    await who.authorize("dataset.write", f"dataset:{name}", body.project)
    for ref in body.inputs:
        await _readable_input(who, ref)
    made = await run_in_threadpool(_write_upload, who, name, body)
    return JsonResponse(version_document(made, body.project), status_code=201)


async def _readable_input(who: Caller, ref: str) -> None:
    """Refuse a lineage input the caller may not read, as if it did not exist."""
    node = ref if ref.partition(":")[0] in NODE_KINDS else f"dataset:{ref}"
    check_node(node)
    project = await run_in_threadpool(node_project, who.platform, node)
    missing = f"lineage input {ref!r} does not exist"
    if project is None:
        raise NotFoundError(
            missing, hint="name a dataset version (NAME:V) or a node id you can read"
        )
    await who.authorize_hidden("lineage.read", node, project, missing=missing, hint="check it")


@router.write("POST", "/datasets/{name}/records", action="dataset.ingest_stream")
async def new_records(name: NameParam, body: Records, who: CallerDep) -> JsonResponse:
    """Append records exactly once, as a producer retrying after a timeout needs: those
    whose key the dataset already holds are skipped; a new version holds the rest
    (``version`` is null when every key was known)."""
    await who.authorize("dataset.ingest_stream", f"dataset:{name}", body.project)
    # Before the keys are read: that every key is known must not tell of another project's.
    await run_in_threadpool(check_dataset_project, who.in_project(body.project), name)
    made = await run_in_threadpool(
        functools.partial(
            write_micro_batch,
            who.in_project(body.project),
            who.actor,
            name,
            body.records,
            body.keys,
            source=body.source,
        )
    )
    return JsonResponse({"version": None if made is None else version_document(made, body.project)})


@router.write("POST", "/datasets/{name}/transform", action="transform.run", status_code=201)
async def new_transform(name: NameParam, body: NewTransform, who: CallerDep) -> JsonResponse:
    """Run a SQL transform over dataset versions the caller may read (their rows: pii
    ones need ``dataset.read_pii``) into a new version of ``name``; the inputs are pinned
    to exact versions, and the code, its digest and parameters are recorded."""
    await who.authorize("transform.run", f"dataset:{name}", body.project)
    pinned = {}
    for alias, ref in body.inputs.items():
        found = await _readable(who, ref)
        await _authorize_rows(who, found)
        pinned[alias] = found.ref
    platform = who.in_project(body.project)
    await run_in_threadpool(check_dataset_project, platform, name)
    made = await run_in_threadpool(
        functools.partial(
            run_transform, platform, who.actor, name, pinned, sql=body.sql, params=body.params
        )
    )
    return JsonResponse(version_document(made, body.project), status_code=201)
