"""Scheduled monitors of a project's deployments: schedule (``monitoring.schedule``), run
what is due or one deployment's monitor now (``monitoring.run``), and read the schedules,
the latest result per deployment and model version, and a deployment's history.

A monitor reads the prediction log the server's home keeps (``HOME/predictions``, or a
directory under it named by ``log``): a caller never names a path elsewhere on the
server's disk.
"""

from __future__ import annotations

import functools
import re
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import InvalidInputError
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["monitoring"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$"
Project = Annotated[str, Path(pattern=_PROJECT)]
_LOG = re.compile(r"^[A-Za-z0-9_.-]{1,128}(/[A-Za-z0-9_.-]{1,128}){0,7}$")


class ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(pattern=_NAME, description="The deployment record to monitor.")
    every: str | int = Field(default="5m", description="How often: 90s, 5m, 2h, 1d or seconds.")
    window: str | int | None = Field(
        default=None, description="How far back each run looks (default: the interval)."
    )
    reference: str | None = Field(
        default=None,
        max_length=300,
        description="profile:NAME[@V] (pinned); default: each version's training profile.",
    )
    log: str | None = Field(
        default=None,
        max_length=512,
        description="A directory under the home's predictions/ (default: predictions/ itself).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Thresholds (alpha, min_psi, min_rows, ...)."
    )
    enabled: bool = True


class RunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str | None = Field(
        default=None, pattern=_NAME, description="Run this monitor now; none: every due one."
    )


def _log_dir(who: Caller, log: str | None) -> Any:
    from ghaf.monitoring.schedule import default_log_dir

    root = default_log_dir(who.platform)
    if log is None:
        return root
    parts = PurePosixPath(log).parts
    if not _LOG.match(log) or any(part in (".", "..") for part in parts):
        raise InvalidInputError(
            f"log {log!r} is not a directory under the server's predictions/",
            hint="name a subdirectory such as 'fraud' (letters, digits, '_', '.', '-', '/')",
        )
    return root.joinpath(*parts)


@router.write("POST", "/projects/{project}/monitors", action="monitoring.schedule", status_code=201)
async def schedule(project: Project, body: ScheduleBody, who: CallerDep) -> JsonResponse:
    """Create or replace a deployment's monitor: interval, window, reference, thresholds."""
    from ghaf.monitoring.schedule import schedule_monitor

    made = await run_in_threadpool(
        functools.partial(
            schedule_monitor,
            who.in_project(project),
            who.actor,
            body.deployment,
            every=body.every,
            window=body.window,
            reference=body.reference,
            log_dir=_log_dir(who, body.log),
            options=body.options,
            enabled=body.enabled,
            project=project,
        )
    )
    return JsonResponse(made, status_code=201)


@router.read("/projects/{project}/monitors", action="monitoring.read")
async def schedules(project: Project, who: CallerDep) -> JsonResponse:
    """The project's monitor schedules, by deployment."""
    from ghaf.monitoring.schedule import list_schedules

    await who.authorize("monitoring.read", "monitors", project)
    found = await run_in_threadpool(list_schedules, who.in_project(project))
    return JsonResponse({"monitors": found})


@router.write("POST", "/projects/{project}/monitors/run", action="monitoring.run")
async def run(project: Project, body: RunBody, who: CallerDep) -> JsonResponse:
    """Run one deployment's monitor now, or every monitor of the project that is due."""
    from ghaf.monitoring.monitors import run_due_monitors, run_monitor

    platform = who.in_project(project)
    if body.deployment is not None:
        runs = [await run_in_threadpool(run_monitor, platform, who.actor, body.deployment)]
    else:
        await who.authorize("monitoring.run", "monitors", project)
        runs = await run_in_threadpool(run_due_monitors, platform, who.actor)
    return JsonResponse({"runs": [r.to_dict() for r in runs]})


@router.read("/projects/{project}/monitors/status", action="monitoring.read")
async def status(
    project: Project,
    who: CallerDep,
    deployment: Annotated[str | None, Query(pattern=_NAME)] = None,
) -> JsonResponse:
    """The latest result of each deployment and model version of the project."""
    from ghaf.monitoring.results import monitor_status

    await who.authorize("monitoring.read", "monitors", project)
    found = await run_in_threadpool(
        functools.partial(monitor_status, who.in_project(project), deployment)
    )
    return JsonResponse({"results": [r.to_dict() for r in found]})


@router.read("/projects/{project}/monitors/{deployment}/results", action="monitoring.read")
async def results(
    project: Project,
    deployment: Annotated[str, Path(pattern=_NAME)],
    who: CallerDep,
    model_version: Annotated[str | None, Query(max_length=300)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JsonResponse:
    """A deployment's monitor results, newest first."""
    from ghaf.monitoring.results import list_results

    await who.authorize("monitoring.read", f"monitor:{deployment}", project)
    found = await run_in_threadpool(
        functools.partial(
            list_results,
            who.in_project(project),
            deployment,
            model_version=model_version,
            limit=limit,
        )
    )
    return JsonResponse({"results": [r.to_dict() for r in found]})
