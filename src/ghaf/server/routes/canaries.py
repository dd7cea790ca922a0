"""Canaries: start one on a deployment, read its state and decisions, evaluate, pause,
resume, roll back.

Reads need ``traffic.read`` in the canary's project (another project's canary reads as
missing); each write names its governed action. An evaluation reads the server's own
prediction log (``HOME/predictions``) and the metrics targets of the canary's plan; a
client never names a server path, and no credential is sent to a target.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import NotFoundError
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}:[0-9]{1,9}$"

router = ActionRouter(tags=["canaries"])
CallerDep = Annotated[Caller, Depends(caller)]


class NewCanary(BaseModel):
    name: str = Field(pattern=_NAME)
    project: str = Field(pattern=_PROJECT)
    deployment: str = Field(pattern=_NAME)
    candidate: str = Field(pattern=_REF, description="The version ramped (NAME:V).")
    champion: str | None = Field(
        default=None, pattern=_REF, description="Default: the one version given traffic."
    )
    plan: dict[str, Any] = Field(
        default_factory=dict,
        description="The rollout plan (steps, min_samples, min_time_s, interval_s, "
        "max_error_rate, max_p99_ms, quality, metrics, confidence, promote_alias).",
    )


class Reason(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


async def _readable(who: Caller, name: str) -> Any:
    """The canary ``name`` if the caller may read it; else 404 (another project's canary
    reads as missing, as on the other routes)."""
    from ghaf.experiments.canary import canary_project, get_canary

    missing = f"canary {name!r} does not exist"
    hint = "GET /api/v1/traffic/canaries lists the canaries you may read"
    project = await run_in_threadpool(canary_project, who.platform, name)
    if project is None:
        raise NotFoundError(missing, hint=hint)
    await who.authorize_hidden(
        "traffic.read", f"canary:{name}", project, missing=missing, hint=hint
    )
    return await run_in_threadpool(get_canary, who.in_project(project), name)


@router.read("/traffic/canaries", action="traffic.read")
async def canaries(
    who: CallerDep, project: Annotated[str | None, Query(pattern=_PROJECT)] = None
) -> JsonResponse:
    """The canaries of the projects the caller may read (of ``project`` only, if given)."""
    from ghaf.experiments.canary import list_canaries

    every = await run_in_threadpool(list_canaries, who.platform)
    allowed = set(who.readable("traffic.read", [c.project for c in every]))
    shown = [c for c in every if c.project in allowed and project in (None, c.project)]
    return JsonResponse({"canaries": shown})


@router.read("/traffic/canaries/{name}", action="traffic.read")
async def canary(
    name: str, who: CallerDep, decisions: Annotated[int, Query(ge=1, le=1000)] = 20
) -> JsonResponse:
    """The canary, its deployment's weights now, and its latest decisions (each with
    every value, threshold and sample size it used)."""
    from ghaf.experiments.canary import canary_status

    found = await _readable(who, name)
    doc = await run_in_threadpool(
        functools.partial(canary_status, who.in_project(found.project), name, limit=decisions)
    )
    return JsonResponse(doc)


@router.write("POST", "/traffic/canaries", action="traffic.canary_start", status_code=201)
async def new_canary(body: NewCanary, who: CallerDep) -> JsonResponse:
    """Start a canary: the candidate takes the plan's first share of the traffic."""
    from ghaf.experiments.canary import start_canary

    made = await run_in_threadpool(
        functools.partial(
            start_canary,
            who.in_project(body.project),
            who.actor,
            body.name,
            body.deployment,
            body.candidate,
            body.plan,
            champion=body.champion,
            project=body.project,
        )
    )
    return JsonResponse(made, status_code=201)


@router.write("POST", "/traffic/canaries/{name}/evaluate", action="traffic.canary_evaluate")
async def evaluate(name: str, who: CallerDep) -> JsonResponse:
    """Judge one window of evidence and act: advance, hold, pause, roll back or promote."""
    from ghaf.experiments.canary import evaluate_canary

    found = await _readable(who, name)
    decided = await run_in_threadpool(
        evaluate_canary, who.in_project(found.project), who.actor, name
    )
    return JsonResponse(decided)


@router.write("POST", "/traffic/canaries/{name}/pause", action="traffic.canary_pause")
async def pause(name: str, body: Reason, who: CallerDep) -> JsonResponse:
    """Stop the ramp where it is until a person resumes it."""
    from ghaf.experiments.canary import pause_canary

    found = await _readable(who, name)
    decided = await run_in_threadpool(
        pause_canary, who.in_project(found.project), who.actor, name, body.reason
    )
    return JsonResponse(decided)


@router.write("POST", "/traffic/canaries/{name}/resume", action="traffic.canary_resume")
async def resume(name: str, who: CallerDep) -> JsonResponse:
    """Resume a paused canary (its step's evidence starts again now)."""
    from ghaf.experiments.canary import resume_canary

    found = await _readable(who, name)
    decided = await run_in_threadpool(resume_canary, who.in_project(found.project), who.actor, name)
    return JsonResponse(decided)


@router.write("POST", "/traffic/canaries/{name}/rollback", action="traffic.canary_rollback")
async def rollback(name: str, body: Reason, who: CallerDep) -> JsonResponse:
    """Give every request back to the champion now."""
    from ghaf.experiments.canary import rollback_canary

    found = await _readable(who, name)
    decided = await run_in_threadpool(
        rollback_canary, who.in_project(found.project), who.actor, name, body.reason
    )
    return JsonResponse(decided)
