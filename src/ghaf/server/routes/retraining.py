"""The closed loop's configuration: each deployment's retraining policy (set and deleted by
``deployment.retrain_set`` / ``deployment.retrain_delete``), read with the loop's runs.

A policy names a pipeline the server's operator declared (``settings.pipelines``): a
client names one of them, never code or a path. The loop itself runs where the monitors
run (``ghaf monitor run --loop``); each hop it makes is on the alert's incident.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["retraining"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$"
Project = Annotated[str, Path(pattern=_PROJECT)]
Deployment = Annotated[str, Path(pattern=_NAME)]
READ = "deployment.read"
Duration = str | float
Alert = Literal["drift.detected", "model.quality"]
ALERTS: tuple[Alert, ...] = ("drift.detected", "model.quality")


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(
        min_length=3,
        max_length=512,
        description="MODULE:ATTRIBUTE of a pipeline the server's operator declared "
        "(GET /api/v1/pipelines lists them).",
    )
    plan: dict[str, Any] = Field(description="The candidate's canary plan (steps, guardrails).")
    params: dict[str, Any] = Field(default_factory=dict, description="The pipeline's parameters.")
    alerts: list[Alert] = Field(
        default_factory=lambda: list(ALERTS),
        min_length=1,
        description="Which alerts on the deployment start a retraining.",
    )
    cooldown: Duration = Field(default="6h", description="Least time between two retrainings.")
    max_runs: int | None = Field(
        default=None, ge=1, le=1000, description="At most this many per window."
    )
    window: Duration = Field(default="1d", description="The window of max_runs.")
    enabled: bool = True


def _seconds(value: Duration, what: str) -> float:
    from ghaf.monitoring.schedule import parse_duration

    return float(parse_duration(value, what))


@router.write(
    "PUT",
    "/projects/{project}/deployments/{deployment}/retraining",
    action="deployment.retrain_set",
)
async def set_policy(
    project: Project, deployment: Deployment, body: PolicyBody, who: CallerDep
) -> JsonResponse:
    """Create or replace the deployment's retraining policy."""
    from ghaf.retraining import set_retrain_policy

    made = await run_in_threadpool(
        functools.partial(
            set_retrain_policy,
            who.in_project(project),
            who.actor,
            deployment,
            pipeline=body.pipeline,
            plan=body.plan,
            params=body.params,
            alerts=body.alerts,
            cooldown_s=_seconds(body.cooldown, "cooldown"),
            max_runs=body.max_runs,
            window_s=_seconds(body.window, "window"),
            enabled=body.enabled,
        )
    )
    return JsonResponse(made.to_dict())


@router.read("/projects/{project}/deployments/{deployment}/retraining", action=READ)
async def show(project: Project, deployment: Deployment, who: CallerDep) -> JsonResponse:
    """The deployment's retraining policy and the loop's latest runs on it."""
    from ghaf.retraining import get_retrain_policy, list_retrain_runs

    await who.authorize(READ, f"deployment:{deployment}", project)
    platform = who.in_project(project)
    policy = await run_in_threadpool(get_retrain_policy, platform, deployment)
    runs = await run_in_threadpool(list_retrain_runs, platform, deployment)
    return JsonResponse({"policy": policy.to_dict(), "runs": [r.to_dict() for r in runs]})


@router.write(
    "DELETE",
    "/projects/{project}/deployments/{deployment}/retraining",
    action="deployment.retrain_delete",
)
async def delete(project: Project, deployment: Deployment, who: CallerDep) -> JsonResponse:
    """Delete the deployment's retraining policy (runs under way are not stopped)."""
    from ghaf.retraining import delete_retrain_policy

    gone = await run_in_threadpool(
        delete_retrain_policy, who.in_project(project), who.actor, deployment
    )
    return JsonResponse({"deleted": gone.to_dict()})


@router.read("/projects/{project}/retraining", action=READ)
async def policies(project: Project, who: CallerDep) -> JsonResponse:
    """The project's retraining policies and the loop's latest runs."""
    from ghaf.retraining import list_retrain_policies, list_retrain_runs

    await who.authorize(READ, "deployments", project)
    platform = who.in_project(project)
    found = await run_in_threadpool(list_retrain_policies, platform)
    runs = await run_in_threadpool(list_retrain_runs, platform)
    return JsonResponse(
        {"policies": [p.to_dict() for p in found], "runs": [r.to_dict() for r in runs]}
    )
