"""Deployments, monitoring profiles and drift checks.

The control plane records and governs deployments (which versions a name serves, with
what weights, shadow and status); ``ghaf serve`` serves them. Reference profiles are
saved from a readable dataset of their project or from a Parquet batch in the request
body; a drift check compares a profile or dataset with another or with an uploaded
batch. Windows are named, never given as server paths: a client never makes the server
read or write a file it chooses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from fastapi import Depends, Path, Query, Request
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from ghaf.artifacts.scratch import process_scratch_dir, release
from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.platform import Platform
from ghaf.provenance import dataset_missing
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routes.registry import readable_version
from ghaf.server.routing import ActionRouter
from ghaf.server.streams import receive_to_file

if TYPE_CHECKING:
    from ghaf.monitoring.store import StoredProfile

_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_MODEL_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}(:[0-9]{1,9}|@[A-Za-z_][A-Za-z0-9_-]{0,127})?$"
_PROFILE_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(@[0-9]{1,9})?$"
_DATASET_REF = r"^(dataset:)?[A-Za-z0-9][A-Za-z0-9_.-]{0,255}(:([0-9]{1,9}|latest))?$"
_WINDOW = rf"^(profile:{_PROFILE_REF[1:-1]}|{_DATASET_REF[1:-1]})$"
MAX_MODELS = 64
"""Versions one deployment may split its traffic over."""
MAX_COLUMNS = 10_000
MAX_QUERY_COLUMNS = 100
_PARQUET_BODY = {
    "requestBody": {
        "required": True,
        "description": "A Parquet file's bytes (chunked transfer allowed), up to the "
        "server's request-body limit.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}

F = TypeVar("F", bound=Callable[..., Any])


class OperationsRouter(ActionRouter):
    """An :class:`ActionRouter` with reads that carry a body (a drift check's window)."""

    def query(self, path: str, *, action: str, **kw: Any) -> Callable[[F], F]:
        """A POST route that changes nothing and answers a caller allowed ``action``."""
        return self._declare("POST", path, action, False, **kw)


router = OperationsRouter(tags=["operations"])
CallerDep = Annotated[Caller, Depends(caller)]
Weight = Annotated[float, Field(ge=0, le=1e9)]
ModelRef = Annotated[str, Field(pattern=_MODEL_REF)]


class NewDeployment(BaseModel):
    name: str = Field(pattern=_NAME)
    project: str = Field(pattern=_PROJECT)
    models: dict[ModelRef, Weight] = Field(
        min_length=1,
        max_length=MAX_MODELS,
        description="Model reference (NAME:V, NAME@ALIAS) -> traffic weight.",
    )
    shadow: str | None = Field(default=None, pattern=_MODEL_REF)


class DeploymentChange(BaseModel):
    models: dict[ModelRef, Weight] | None = Field(default=None, min_length=1, max_length=MAX_MODELS)
    shadow: str | None = Field(
        default=None,
        pattern=rf"^$|{_MODEL_REF}",
        description='A version that also scores each request; "" removes the shadow.',
    )
    status: Literal["active", "stopped"] | None = None

    @model_validator(mode="after")
    def _something(self) -> DeploymentChange:
        if self.models is None and self.shadow is None and self.status is None:
            raise ValueError("give models, shadow or status")
        return self


Columns = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=1024)]] | None,
    Field(max_length=MAX_COLUMNS),
]


QueryColumns = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=256)]] | None,
    Query(max_length=MAX_QUERY_COLUMNS),
]
"""Columns named in a query string: fewer and shorter, so the URL stays within what an
HTTP server takes (a few tens of KiB)."""


class NewProfile(BaseModel):
    name: str = Field(pattern=_NAME)
    dataset: str = Field(pattern=_DATASET_REF, description="The dataset profiled: NAME:V.")
    columns: Columns = None


class DriftCheck(BaseModel):
    reference: str = Field(pattern=_WINDOW, description="profile:NAME[@V] or a dataset NAME:V.")
    current: str = Field(pattern=_WINDOW, description="profile:NAME[@V] or a dataset NAME:V.")
    columns: Columns = None
    alpha: float = Field(default=0.05, gt=0, lt=1)
    domain_classifier: bool = True
    histograms: bool = False


# Deployments


async def _readable_deployment(who: Caller, name: str) -> Any:
    from ghaf.serving.deployments import get_deployment

    deployment = await run_in_threadpool(get_deployment, who.platform, name)
    # Word for word what the service says of a deployment that does not exist.
    missing, hint = f"deployment {name!r} does not exist", "ghaf serve MODEL@ALIAS"
    await who.authorize_hidden(
        "deployment.read", deployment.node, deployment.project, missing=missing, hint=hint
    )
    return deployment


async def _check_models(who: Caller, refs: list[str]) -> None:
    """Each reference names a version the caller may read (the service refuses one of
    another project than the deployment's)."""
    for ref in refs:
        await readable_version(who, ref)


@router.read("/deployments", action="deployment.read")
async def deployments(
    who: CallerDep, project: Annotated[str | None, Query(pattern=_PROJECT)] = None
) -> JsonResponse:
    """The deployments of the projects the caller may read (of ``project`` only, if given)."""
    from ghaf.serving.deployments import list_deployments

    every = await run_in_threadpool(list_deployments, who.platform)
    allowed = set(who.readable("deployment.read", [d.project for d in every]))
    shown = [d for d in every if d.project in allowed and project in (None, d.project)]
    return JsonResponse({"deployments": shown})


@router.read("/deployments/{name}", action="deployment.read")
async def deployment(name: str, who: CallerDep) -> JsonResponse:
    """One deployment record: versions and weights, shadow, status, revision."""
    return JsonResponse(await _readable_deployment(who, name))


@router.write("POST", "/deployments", action="deployment.create", status_code=201)
async def new_deployment(body: NewDeployment, who: CallerDep) -> JsonResponse:
    """Record a deployment of the project's versions (each must meet the release policy)."""
    from ghaf.serving.deployments import create_deployment

    await who.authorize("deployment.create", f"deployment:{body.name}", body.project)
    shadow = [body.shadow] if body.shadow else []
    await _check_models(who, [*body.models, *shadow])
    made = await run_in_threadpool(
        functools.partial(
            create_deployment,
            who.in_project(body.project),
            who.actor,
            body.name,
            body.models,
            shadow=body.shadow,
            project=body.project,
        )
    )
    return JsonResponse(made, status_code=201)


@router.write("PATCH", "/deployments/{name}", action="deployment.update")
async def change_deployment(name: str, body: DeploymentChange, who: CallerDep) -> JsonResponse:
    """Change a deployment's versions and weights, shadow (``""`` removes it) or status."""
    from ghaf.serving.deployments import update_deployment

    current = await _readable_deployment(who, name)
    refs = [*(body.models or {}), *([body.shadow] if body.shadow else [])]
    await _check_models(who, refs)
    changed = await run_in_threadpool(
        functools.partial(
            update_deployment,
            who.in_project(current.project),
            who.actor,
            name,
            models=body.models,
            shadow=body.shadow,
            status=body.status,
        )
    )
    return JsonResponse(changed)


# Windows: datasets and stored profiles, each read in its own project


def _dataset_project(platform: Platform, ref: str) -> tuple[str, str]:
    """(lineage node, project) of the dataset version ``ref`` names."""
    from ghaf.data import get_dataset
    from ghaf.data.catalog import project_of

    version = get_dataset(platform, ref)
    return version.node, project_of(platform, version)


async def _readable_dataset(who: Caller, ref: str) -> tuple[FilePath, str]:
    """The verified Parquet file of a dataset the caller may read, and its project.

    A dataset with pii or sensitive columns needs ``dataset.read_pii`` (audited when allowed).
    """
    from ghaf.data import dataset_parquet_path
    from ghaf.features.residency import lineage_tags
    from ghaf.security.rbac import read_action

    missing = dataset_missing(ref)
    try:
        node, project = await run_in_threadpool(_dataset_project, who.platform, ref)
    except NotFoundError as exc:
        raise missing from exc
    await who.authorize_hidden(
        "dataset.read", node, project, missing=missing.headline, hint=str(missing.hint)
    )
    action = read_action("dataset", await run_in_threadpool(lineage_tags, who.platform, node))
    if action != "dataset.read":
        await who.guard.aauthorize(
            who.key, who.actor, action, node, project, audit_allowed=True, source=who.source
        )
    path = await run_in_threadpool(dataset_parquet_path, who.platform, ref)
    return path, project


async def _readable_profile(who: Caller, ref: str) -> StoredProfile:
    """A stored profile the caller may read (``monitoring.read`` in its project)."""
    from ghaf.monitoring.store import get_profile

    missing = f"no stored profile {ref!r}"
    hint = "GET /api/v1/profiles lists the profiles you may read"
    try:
        stored = await run_in_threadpool(get_profile, who.platform, ref)
    except NotFoundError:
        raise NotFoundError(missing, hint=hint) from None
    await who.authorize_hidden(
        "monitoring.read", f"profile:{stored.name}", stored.project, missing=missing, hint=hint
    )
    return stored


async def _window(who: Caller, window: str, columns: list[str] | None) -> Any:
    """The profile of a named window: a stored profile, or a readable dataset profiled."""
    from ghaf.monitoring import profile_window
    from ghaf.monitoring.inputs import PROFILE_PREFIX
    from ghaf.monitoring.store import load_profile

    if window.startswith(PROFILE_PREFIX):
        stored = await _readable_profile(who, window.removeprefix(PROFILE_PREFIX))
        ref = f"{stored.name}@{stored.version}"
        return await run_in_threadpool(load_profile, who.platform, ref)
    path, _ = await _readable_dataset(who, window)
    return await run_in_threadpool(functools.partial(profile_window, path, columns=columns))


async def _uploaded_profile(request: Request, who: Caller, columns: list[str] | None) -> Any:
    """The profile of the Parquet file in the request body (kept only while profiled)."""
    from ghaf.monitoring import profile_window

    directory = await run_in_threadpool(process_scratch_dir, who.platform.settings.home, "window-")
    try:
        body = directory / "window.parquet"
        await receive_to_file(request, body)
        return await run_in_threadpool(functools.partial(profile_window, body, columns=columns))
    finally:
        await run_in_threadpool(release, directory)


# Reference profiles


async def _save(who: Caller, project: str, name: str, summary: Any, source: str) -> JsonResponse:
    from ghaf.monitoring.store import save_profile

    stored = await run_in_threadpool(
        functools.partial(
            save_profile,
            who.in_project(project),
            who.actor,
            name,
            summary,
            source=source,
            project=project,
        )
    )
    return JsonResponse(stored, status_code=201)


@router.write(
    "POST", "/projects/{project}/profiles", action="monitoring.profile.save", status_code=201
)
async def profile_dataset(
    project: Annotated[str, Path(pattern=_PROJECT)], body: NewProfile, who: CallerDep
) -> JsonResponse:
    """Profile a dataset of the project once and store it as the next version of ``name``."""
    await who.authorize("monitoring.profile.save", f"profile:{body.name}", project)
    path, owner = await _readable_dataset(who, body.dataset)
    if owner != project:
        raise InvalidInputError(
            f"dataset: {body.dataset} is a dataset of project {owner!r}, not {project!r}",
            hint="profile a dataset in its own project",
        )
    from ghaf.monitoring import profile_window

    summary = await run_in_threadpool(functools.partial(profile_window, path, columns=body.columns))
    return await _save(who, project, body.name, summary, body.dataset)


@router.write(
    "POST",
    "/projects/{project}/profiles/{name}/data",
    action="monitoring.profile.save",
    status_code=201,
    openapi_extra=_PARQUET_BODY,
)
async def profile_upload(
    project: Annotated[str, Path(pattern=_PROJECT)],
    name: Annotated[str, Path(pattern=_NAME)],
    request: Request,
    who: CallerDep,
    columns: QueryColumns = None,
    source: Annotated[str, Query(max_length=512)] = "upload",
) -> JsonResponse:
    """Profile the Parquet batch in the body and store it as the next version of ``name``."""
    await who.authorize("monitoring.profile.save", f"profile:{name}", project)
    summary = await _uploaded_profile(request, who, columns)
    return await _save(who, project, name, summary, source)


@router.read("/profiles", action="monitoring.read")
async def profiles(
    who: CallerDep, name: Annotated[str | None, Query(pattern=_NAME)] = None
) -> JsonResponse:
    """Stored profile versions of the projects the caller may read (of ``name`` only, if given)."""
    from ghaf.monitoring.store import list_profiles, profile_projects

    held = await run_in_threadpool(profile_projects, who.platform)
    allowed = who.readable("monitoring.read", held)
    shown = await run_in_threadpool(
        functools.partial(list_profiles, who.platform, name, projects=allowed)
    )
    return JsonResponse({"profiles": shown})


@router.read("/profiles/{ref}", action="monitoring.read")
async def profile(ref: Annotated[str, Path(pattern=_PROFILE_REF)], who: CallerDep) -> JsonResponse:
    """One stored profile: ``NAME`` (the latest version) or ``NAME@V``."""
    return JsonResponse(await _readable_profile(who, ref))


# Drift


@dataclass(frozen=True)
class _Comparison:
    """How two windows are compared, and what the report names them."""

    alpha: float
    domain_classifier: bool
    histograms: bool
    names: tuple[str, str]


def _report(reference: Any, current: Any, how: _Comparison) -> dict[str, Any]:
    from ghaf.monitoring import DriftOptions, compare_profiles

    report = compare_profiles(
        reference,
        current,
        DriftOptions(alpha=how.alpha, domain_classifier=how.domain_classifier),
        reference_name=how.names[0],
        current_name=how.names[1],
    )
    return report.to_dict(histograms=how.histograms)


@router.query("/drift", action="monitoring.read")
async def drift(body: DriftCheck, who: CallerDep) -> JsonResponse:
    """Compare two named windows (stored profiles or datasets): the drift report."""
    reference = await _window(who, body.reference, body.columns)
    current = await _window(who, body.current, body.columns)
    how = _Comparison(
        body.alpha, body.domain_classifier, body.histograms, (body.reference, body.current)
    )
    return JsonResponse(await run_in_threadpool(_report, reference, current, how))


@router.query("/drift/batch", action="monitoring.read", openapi_extra=_PARQUET_BODY)
async def drift_batch(
    request: Request,
    who: CallerDep,
    reference: Annotated[str, Query(pattern=_WINDOW)],
    columns: QueryColumns = None,
    alpha: Annotated[float, Query(gt=0, lt=1)] = 0.05,
    domain_classifier: bool = True,
    histograms: bool = False,
    current_name: Annotated[str, Query(max_length=512)] = "upload",
) -> JsonResponse:
    """Compare the Parquet batch in the body with a named reference: the drift report."""
    profiled = await _window(who, reference, columns)
    current = await _uploaded_profile(request, who, columns)
    how = _Comparison(alpha, domain_classifier, histograms, (reference, current_name))
    return JsonResponse(await run_in_threadpool(_report, profiled, current, how))
