"""The model registry: models and versions, aliases, approvals, stages, cards."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import NotFoundError
from ghaf.platform import Platform
from ghaf.registry.base import SUMMARY_FIELDS, ModelVersion, parse_ref
from ghaf.registry.lifecycle import (
    approve_model_version,
    delete_alias,
    set_alias,
    transition_model_version,
    update_model_card,
)
from ghaf.registry.service import get_model_version, list_models, list_versions
from ghaf.server.auth import Caller, caller
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["registry"])
CallerDep = Annotated[Caller, Depends(caller)]


class AliasTarget(BaseModel):
    version: int = Field(ge=1)


class Approval(BaseModel):
    comment: str = Field(default="", max_length=4096)


class StageChange(BaseModel):
    stage: str = Field(pattern=r"^(candidate|staging|production|archived)$")


class Card(BaseModel):
    markdown: str = Field(min_length=1, max_length=1_000_000)


async def readable_version(who: Caller, ref: str) -> ModelVersion:
    """The version ``ref`` names, when the caller may read its project; else 404."""
    name = parse_ref(ref).name
    # The registry's own words for a name it does not hold: another project's model must
    # read word for word as one that does not exist.
    missing, hint = f"model {name!r} is not registered", "ghaf models list"
    try:
        version = await run_in_threadpool(get_model_version, who.platform, ref)
    except NotFoundError:
        # A missing version or alias of another project's model reads as a missing model.
        owner = await run_in_threadpool(_model_project, who.platform, name)
        if owner is not None:
            await who.authorize_hidden(
                "model.read", f"model:{name}", owner, missing=missing, hint=hint
            )
        raise
    await who.authorize_hidden(
        "model.read", f"model:{version.name}", version.project, missing=missing, hint=hint
    )
    return version


def _model_project(platform: Platform, name: str) -> str | None:
    return {model: project for model, _, project in list_models(platform)}.get(name)


def _summary(version: ModelVersion) -> dict[str, Any]:
    return {field: getattr(version, field) for field in SUMMARY_FIELDS}


@router.read("/models", action="model.read")
async def models(who: CallerDep) -> dict[str, Any]:
    """Registered models of the caller's projects: name, latest version, project."""
    every = await run_in_threadpool(list_models, who.platform)
    allowed = set(who.readable("model.read", [project for _, _, project in every]))
    return {
        "models": [
            {"name": name, "latest": latest, "project": project}
            for name, latest, project in every
            if project in allowed
        ]
    }


@router.read("/models/{name}/versions", action="model.read")
async def versions(name: str, who: CallerDep) -> dict[str, Any]:
    """Every version of a model, oldest first."""
    await readable_version(who, name)
    found = await run_in_threadpool(list_versions, who.platform, name)
    return {"versions": [_summary(v) for v in found]}


@router.read("/models/{ref}", action="model.read")
async def version(ref: str, who: CallerDep) -> Any:
    """One version (``name:3``, ``name@alias`` or ``name`` for the latest), in full."""
    return await readable_version(who, ref)


@router.write("PUT", "/models/{name}/aliases/{alias}", action="model.alias")
async def put_alias(name: str, alias: str, body: AliasTarget, who: CallerDep) -> Any:
    """Point an alias at a version (a protected alias needs what the release policy asks)."""
    current = await readable_version(who, name)
    moved = await run_in_threadpool(
        set_alias, who.in_project(current.project), who.actor, name, alias, body.version
    )
    return _summary(moved)


@router.write("DELETE", "/models/{name}/aliases/{alias}", action="model.alias_delete")
async def remove_alias(name: str, alias: str, who: CallerDep) -> dict[str, Any]:
    """Remove an alias."""
    current = await readable_version(who, name)
    await run_in_threadpool(delete_alias, who.in_project(current.project), who.actor, name, alias)
    return {"name": name, "alias": alias, "deleted": True}


@router.write("POST", "/models/{ref}/approvals", action="model.approve", status_code=201)
async def approve(ref: str, body: Approval, who: CallerDep) -> Any:
    """Approve a version: by a second person, never its author or trainer."""
    current = await readable_version(who, ref)
    approved = await run_in_threadpool(
        functools.partial(
            approve_model_version,
            who.in_project(current.project),
            who.actor,
            ref,
            comment=body.comment,
        )
    )
    return _summary(approved)


@router.write("POST", "/models/{ref}/stage", action="model.promote")
async def stage(ref: str, body: StageChange, who: CallerDep) -> Any:
    """Move a version along the lifecycle (a protected stage needs the release policy)."""
    current = await readable_version(who, ref)
    moved = await run_in_threadpool(
        transition_model_version, who.in_project(current.project), who.actor, ref, body.stage
    )
    return _summary(moved)


@router.write("PUT", "/models/{ref}/card", action="model.card_update")
async def card(ref: str, body: Card, who: CallerDep) -> Any:
    """Replace a version's model card."""
    current = await readable_version(who, ref)
    updated = await run_in_threadpool(
        update_model_card, who.in_project(current.project), who.actor, ref, body.markdown
    )
    return _summary(updated)
