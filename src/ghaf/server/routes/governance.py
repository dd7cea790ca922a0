"""Governance: the home's keys, a project's release and code policies, gate policies,
break glass.

Key actions are home-wide (the spine authorizes them in project ``'*'``, for the home's
owner or a role bound on ``'*'``: key custodians; auditors read the versions); a policy is
changed in its project, and a principal of another project reads none of it (404).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from ghaf.access.keyring import describe_keys
from ghaf.access.rotation import destroy_key_version, rotate_keys, trust_key
from ghaf.errors import ConfigError, NotFoundError
from ghaf.evaluation.policy import parse_policy
from ghaf.registry.base import SUMMARY_FIELDS, ModelVersion
from ghaf.registry.break_glass import (
    BreakGlassRequest,
    confirm_break_glass,
    list_break_glass,
    request_break_glass,
)
from ghaf.registry.code_policy import change_code_policy, get_code_policy
from ghaf.registry.gate_policies import (
    StoredGatePolicy,
    add_gate_policy,
    attach_gate_policy,
    get_gate_policy,
    list_gate_policies,
)
from ghaf.registry.policy_documents import code_document, release_document
from ghaf.registry.release import get_release_policy, parse_release_policy, set_release_policy
from ghaf.registry.service import list_models
from ghaf.security.rbac import ALL_PROJECTS
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routes.registry import readable_version
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["governance"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_MODULE = r"^[A-Za-z_][A-Za-z0-9_.]{0,199}$"
ProjectPath = Annotated[str, PathParam(pattern=_PROJECT)]


class ReleasePolicyText(BaseModel):
    text: str = Field(min_length=1, max_length=65_536, description="The policy's YAML.")


class CodePolicyChange(BaseModel):
    allow: list[Annotated[str, Field(pattern=_MODULE)]] = Field(default=[], max_length=256)
    revoke: list[Annotated[str, Field(pattern=_MODULE)]] = Field(default=[], max_length=256)
    revoke_all: bool = False
    reason: str = Field(default="", max_length=4096)

    @model_validator(mode="after")
    def _some(self) -> CodePolicyChange:
        if not (self.allow or self.revoke or self.revoke_all):
            raise ValueError("name the modules to allow or revoke (or revoke_all)")
        return self


class NewGatePolicy(BaseModel):
    text: str = Field(min_length=1, max_length=65_536, description="The policy's YAML.")
    project: str = Field(pattern=_PROJECT, description="The project it is added in.")
    name: str | None = Field(default=None, pattern=_NAME, description="Default: its name:.")
    model: str | None = Field(default=None, max_length=256, description="Attach to this model.")
    attach_project: bool = Field(default=False, description="Attach to every model of project.")


class GateTarget(BaseModel):
    model: str | None = Field(default=None, max_length=256)
    project: str | None = Field(default=None, pattern=_PROJECT)

    @model_validator(mode="after")
    def _one(self) -> GateTarget:
        if (self.model is None) == (self.project is None):
            raise ValueError("give a model or a project, not both or neither")
        return self


class BreakGlassAsk(BaseModel):
    version: int = Field(ge=1)
    alias: str | None = Field(default=None, max_length=128)
    stage: str | None = Field(default=None, pattern=r"^(candidate|staging|production|archived)$")
    reason: str = Field(min_length=1, max_length=4096)

    @model_validator(mode="after")
    def _one(self) -> BreakGlassAsk:
        if (self.alias is None) == (self.stage is None):
            raise ValueError("give an alias or a stage, not both or neither")
        return self


class PublicKey(BaseModel):
    pem: str = Field(
        min_length=64,
        max_length=16_384,
        pattern=r"^\s*-----BEGIN PUBLIC KEY-----",
        description="A PEM SubjectPublicKeyInfo (ECDSA P-256/384/521).",
    )


def _checked(parse: Callable[[str, str], object], text: str, field: str) -> None:
    """Refuse ``text`` as a 400 naming ``field`` when ``parse`` finds it invalid (the
    service checks again; a server's ConfigError would otherwise read as its own fault)."""
    try:
        parse(text, field)
    except ConfigError as exc:
        loc = ("body", field)
        raise RequestValidationError(
            [{"loc": loc, "msg": exc.headline, "type": "value_error"}]
        ) from exc


async def _readable_project(who: Caller, action: str, project: str) -> None:
    await who.authorize_hidden(
        action,
        f"project:{project}",
        project,
        missing=f"project {project!r} does not exist",
        hint="GET /api/v1/projects lists yours",
    )


async def _readable_gate_policy(who: Caller, ref: str) -> StoredGatePolicy:
    stored = await run_in_threadpool(get_gate_policy, who.platform, ref)
    # Word for word what the registry says of a policy that does not exist.
    missing, hint = f"gate policy {ref} does not exist", "ghaf gate policies list"
    await who.authorize_hidden(
        "model.read", f"gate_policy:{stored.name}", stored.project, missing=missing, hint=hint
    )
    return stored


# Keys --------------------------------------------------------------------------------


@router.read("/keys", action="keys.read")
async def keys(who: CallerDep) -> Any:
    """The KEK's versions and the trusted public keys, never key material (home-wide key
    custodians and auditors: key rotations are evidence)."""
    await who.authorize("keys.read", "keys:home", ALL_PROJECTS)
    return await run_in_threadpool(describe_keys, who.platform)


@router.write("POST", "/keys/rotate", action="keys.rotate")
async def rotate(who: CallerDep) -> Any:
    """Make a new KEK version current and re-wrap every artifact header (resumes an
    unfinished rotation)."""
    return await run_in_threadpool(rotate_keys, who.in_project(ALL_PROJECTS), who.actor)


@router.write("DELETE", "/keys/versions/{version}", action="keys.destroy_version")
async def destroy(version: Annotated[int, PathParam(ge=1)], who: CallerDep) -> dict[str, Any]:
    """Delete a KEK version's material: artifacts never re-wrapped since are shredded."""
    shredded = await run_in_threadpool(
        destroy_key_version, who.in_project(ALL_PROJECTS), who.actor, version
    )
    return {"version": version, "shredded": shredded}


@router.write("POST", "/keys/trusted", action="keys.trust", status_code=201)
async def trust(body: PublicKey, who: CallerDep) -> dict[str, Any]:
    """Accept model signatures made with a public key sent in the body (never a path on
    the server)."""
    trusted = await run_in_threadpool(
        trust_key, who.in_project(ALL_PROJECTS), who.actor, body.pem.encode()
    )
    return {"fingerprint": trusted}


# Release and code policies -----------------------------------------------------------


@router.read("/projects/{project}/release-policy", action="project.read")
async def release_policy(project: ProjectPath, who: CallerDep) -> dict[str, Any]:
    """The release policy in force in a project (version 0: the built-in default)."""
    await _readable_project(who, "project.read", project)
    return release_document(await run_in_threadpool(get_release_policy, who.platform, project))


@router.write("PUT", "/projects/{project}/release-policy", action="release_policy.set")
async def put_release_policy(
    project: ProjectPath, body: ReleasePolicyText, who: CallerDep
) -> dict[str, Any]:
    """Store a new version of a project's release policy (checked first)."""
    _checked(parse_release_policy, body.text, "text")
    stored = await run_in_threadpool(
        set_release_policy, who.in_project(project), who.actor, project, body.text
    )
    return release_document(stored)


@router.read("/projects/{project}/code-policy", action="project.read")
async def code_policy(project: ProjectPath, who: CallerDep) -> dict[str, Any]:
    """The modules a project's custom model code may import (none: custom code is off)."""
    await _readable_project(who, "project.read", project)
    return code_document(await run_in_threadpool(get_code_policy, who.platform, project))


@router.write("PATCH", "/projects/{project}/code-policy", action="code_policy.set")
async def patch_code_policy(
    project: ProjectPath, body: CodePolicyChange, who: CallerDep
) -> dict[str, Any]:
    """Allow or revoke modules for a project's custom model code (model approvers)."""
    policy = await run_in_threadpool(
        functools.partial(
            change_code_policy,
            who.in_project(project),
            who.actor,
            project,
            allow=body.allow,
            revoke=body.revoke,
            revoke_all=body.revoke_all,
            reason=body.reason,
        )
    )
    return code_document(policy)


# Gate policies -----------------------------------------------------------------------


@router.read("/gate-policies", action="model.read")
async def gate_policies(who: CallerDep) -> dict[str, Any]:
    """The newest version of each gate policy of the caller's projects."""
    every = await run_in_threadpool(list_gate_policies, who.platform)
    allowed = set(who.readable("model.read", [p.project for p in every]))
    return {"policies": [p.to_dict() for p in every if p.project in allowed]}


@router.read("/gate-policies/{ref}", action="model.read")
async def gate_policy(ref: str, who: CallerDep) -> dict[str, Any]:
    """One version of a gate policy (``NAME`` for the newest, ``NAME:VERSION``)."""
    return (await _readable_gate_policy(who, ref)).to_dict()


@router.write("POST", "/gate-policies", action="gate_policy.add", status_code=201)
async def add_policy(body: NewGatePolicy, who: CallerDep) -> dict[str, Any]:
    """Store a policy's YAML as its next version (attached to a model or the project too,
    in the same transaction, when asked)."""
    _checked(parse_policy, body.text, "text")
    if body.model is not None:
        await readable_version(who, body.model)
    stored = await run_in_threadpool(
        functools.partial(
            add_gate_policy,
            who.in_project(body.project),
            who.actor,
            body.text,
            name=body.name,
            source="text",
            model=body.model,
            project=body.project if body.attach_project else None,
        )
    )
    return stored.to_dict()


@router.write("POST", "/gate-policies/{ref}/attachments", action="gate_policy.attach")
async def attach(ref: str, body: GateTarget, who: CallerDep) -> dict[str, Any]:
    """Require a model (or every model of a project) to pass the policy to be promoted;
    the version is pinned, and attaching again moves the pin."""
    await _readable_gate_policy(who, ref)
    if body.model is not None:
        where = (await readable_version(who, body.model)).project
    else:
        where = str(body.project)
        await _readable_project(who, "project.read", where)
    attached = await run_in_threadpool(
        functools.partial(
            attach_gate_policy,
            who.in_project(where),
            who.actor,
            ref,
            model=body.model,
            project=body.project,
        )
    )
    return attached.to_dict()


# Break glass -------------------------------------------------------------------------


def _summary(version: ModelVersion) -> dict[str, Any]:
    return {field: getattr(version, field) for field in SUMMARY_FIELDS}


@router.write(
    "POST", "/models/{name}/break-glass", action="model.break_glass_request", status_code=201
)
async def ask_break_glass(name: str, body: BreakGlassAsk, who: CallerDep) -> JsonResponse:
    """Ask to put a version on a protected alias or stage past the release policy; it
    takes effect when a second person confirms it."""
    model = await readable_version(who, name)
    made = await run_in_threadpool(
        functools.partial(
            request_break_glass,
            who.in_project(model.project),
            who.actor,
            model.name,
            body.version,
            reason=body.reason,
            alias=body.alias,
            stage=body.stage,
        )
    )
    return JsonResponse(made, 201)


async def _requests(who: Caller, pending_only: bool) -> list[tuple[BreakGlassRequest, str]]:
    """Break-glass requests of models the caller may read, with each model's project."""
    found = await run_in_threadpool(
        functools.partial(list_break_glass, who.platform, pending_only=pending_only)
    )
    projects = {name: project for name, _, project in await run_in_threadpool(
        list_models, who.platform
    )}  # fmt: skip
    allowed = set(who.readable("model.read", projects.values()))
    return [(r, projects[r.model]) for r in found if projects.get(r.model) in allowed]


@router.read("/break-glass", action="model.read")
async def break_glass(
    who: CallerDep, pending: Annotated[bool, Query(description="Only pending ones.")] = False
) -> JsonResponse:
    """Break-glass requests of the caller's projects, newest first."""
    return JsonResponse({"requests": [r for r, _ in await _requests(who, pending)]})


@router.write("POST", "/break-glass/{request_id}/confirm", action="model.break_glass")
async def confirm(request_id: Annotated[int, PathParam(ge=1)], who: CallerDep) -> dict[str, Any]:
    """Carry out a pending request as the second person (never its requester)."""
    if not any(r.id == request_id for r, _ in await _requests(who, pending_only=False)):
        raise NotFoundError(
            f"no break-glass request {request_id}", hint="GET /api/v1/break-glass lists yours"
        )
    version = await run_in_threadpool(confirm_break_glass, who.platform, who.actor, request_id)
    return _summary(version)
