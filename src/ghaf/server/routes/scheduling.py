"""The job queue and project quotas: queue a declared pipeline, list the queue with
positions, cancel, change a priority; read, set and clear a project's quota.

Jobs and quotas are read only by callers allowed in their project (``job.read``,
``quota.read``); to anyone else a job does not exist. Setting a quota is home-wide
(``quota.set`` is authorized in project ``'*'``). Dispatchers claim and finish jobs
where they run (``ghaf jobs work``), never over HTTP.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import NotFoundError
from ghaf.projects.service import project_names
from ghaf.scheduling.queue import (
    MAX_PRIORITY,
    STATUSES,
    Job,
    cancel_job,
    get_job,
    job_projects,
    list_jobs,
    set_priority,
    submit_job,
)
from ghaf.scheduling.quotas import clear_quota, list_quotas, quota_report, set_quota
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["scheduling"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_TARGET = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
Project = Annotated[str, Path(pattern=_PROJECT)]
JobId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8,32}$", description="The job's id, or 8 or more of its first digits."
    ),
]
READ_JOBS = "job.read"
READ_QUOTAS = "quota.read"


class JobSubmission(BaseModel):
    """A declared pipeline to queue in a project, with what it holds and its priority."""

    pipeline: str = Field(max_length=256, pattern=_TARGET, description="MODULE:ATTRIBUTE.")
    project: str = Field(pattern=_PROJECT)
    params: dict[Annotated[str, Field(max_length=128)], Any] = Field(
        default_factory=dict, max_length=256
    )
    cpus: float = Field(default=1.0, ge=0, le=1024, description="CPUs the job holds.")
    gpus: float = Field(default=0.0, ge=0, le=64, description="GPUs the job holds.")
    priority: int = Field(
        default=0,
        ge=-MAX_PRIORITY,
        le=MAX_PRIORITY,
        description="Higher runs first in its project.",
    )


class Priority(BaseModel):
    priority: int = Field(ge=-MAX_PRIORITY, le=MAX_PRIORITY)


class QuotaChange(BaseModel):
    """The limits to set; those left out keep their values."""

    cpu_hours: float | None = Field(default=None, ge=0, le=1e12)
    gpu_hours: float | None = Field(default=None, ge=0, le=1e12)
    period: str | None = Field(default=None, max_length=16, description="e.g. 30d, 24h, 4w.")
    max_concurrent: int | None = Field(default=None, ge=1, le=100_000)
    weight: float | None = Field(default=None, gt=0, le=1000, description="Fair-share weight.")


async def _readable_job(who: Caller, job_id: str) -> Job:
    missing = f"job {job_id!r} does not exist"
    hint = "GET /api/v1/jobs lists yours; give more of the id if it is a prefix"
    try:
        job = await run_in_threadpool(get_job, who.platform, job_id)
    except NotFoundError as exc:
        raise NotFoundError(missing, hint=hint) from exc
    await who.authorize_hidden(READ_JOBS, f"job:{job.id}", job.project, missing=missing, hint=hint)
    return job


@router.read("/jobs", action=READ_JOBS)
async def jobs(
    who: CallerDep,
    project: Annotated[str | None, Query(pattern=_PROJECT)] = None,
    status: Annotated[str | None, Query(pattern=f"^({'|'.join(STATUSES)})$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> JsonResponse:
    """The caller's projects' jobs: queued ones in dispatch order (``position``), then
    the others, newest first."""
    every = await run_in_threadpool(job_projects, who.platform)
    mine = who.readable(READ_JOBS, [p for p in every if project is None or p == project])
    fetch = functools.partial(
        list_jobs,
        who.platform,
        projects=mine,
        statuses=(status,) if status else None,
        limit=limit,
    )
    return JsonResponse({"jobs": await run_in_threadpool(fetch)})


@router.read("/jobs/{job_id}", action=READ_JOBS)
async def job(job_id: JobId, who: CallerDep) -> JsonResponse:
    """A job: status, position in the queue while queued, who ran it, its result."""
    return JsonResponse(await _readable_job(who, job_id))


@router.write("POST", "/jobs", action="job.submit", status_code=202)
async def submit(body: JobSubmission, who: CallerDep) -> JsonResponse:
    """Queue a declared pipeline in a project (refused at once, 403, when the project is
    over its CPU- or GPU-hours quota); it runs when a dispatcher has a slot for it."""
    queued = await run_in_threadpool(
        functools.partial(
            submit_job,
            who.in_project(body.project),
            who.actor,
            "pipeline",
            body.pipeline,
            params=body.params,
            cpus=body.cpus,
            gpus=body.gpus,
            priority=body.priority,
            project=body.project,
        )
    )
    return JsonResponse(await run_in_threadpool(get_job, who.platform, queued.id), 202)


@router.write("POST", "/jobs/{job_id}/cancel", action="job.cancel")
async def cancel(job_id: JobId, who: CallerDep) -> JsonResponse:
    """Take a queued job out of the queue."""
    found = await _readable_job(who, job_id)
    await run_in_threadpool(
        functools.partial(
            cancel_job, who.in_project(found.project), who.actor, found.id, project=found.project
        )
    )
    return JsonResponse(await run_in_threadpool(get_job, who.platform, found.id))


@router.write("PUT", "/jobs/{job_id}/priority", action="job.priority")
async def priority(job_id: JobId, body: Priority, who: CallerDep) -> JsonResponse:
    """Change a queued job's priority (higher runs first among its project's jobs)."""
    found = await _readable_job(who, job_id)
    await run_in_threadpool(
        functools.partial(
            set_priority,
            who.in_project(found.project),
            who.actor,
            found.id,
            body.priority,
            project=found.project,
        )
    )
    return JsonResponse(await run_in_threadpool(get_job, who.platform, found.id))


@router.read("/quotas", action=READ_QUOTAS)
async def quotas(who: CallerDep) -> JsonResponse:
    """The quotas set on the caller's projects, each with its usage this period."""
    every = {q.project for q in await run_in_threadpool(list_quotas, who.platform)}
    every |= set(await run_in_threadpool(project_names, who.platform))
    mine = who.readable(READ_QUOTAS, every)
    reports = [await run_in_threadpool(quota_report, who.platform, p) for p in mine]
    return JsonResponse({"quotas": reports})


@router.read("/projects/{project}/quota", action=READ_QUOTAS)
async def quota(project: Project, who: CallerDep) -> JsonResponse:
    """A project's quota (unlimited when none is set) and its usage this period."""
    await who.authorize(READ_QUOTAS, f"quota:{project}", project)
    return JsonResponse(await run_in_threadpool(quota_report, who.platform, project))


@router.write("PUT", "/projects/{project}/quota", action="quota.set")
async def put_quota(project: Project, body: QuotaChange, who: CallerDep) -> JsonResponse:
    """Set some of a project's limits (a role bound on every project may)."""
    await run_in_threadpool(
        functools.partial(
            set_quota, who.platform, who.actor, project, **body.model_dump(exclude_none=True)
        )
    )
    return JsonResponse(await run_in_threadpool(quota_report, who.platform, project))


@router.write("DELETE", "/projects/{project}/quota", action="quota.clear")
async def delete_quota(project: Project, who: CallerDep) -> JsonResponse:
    """Remove a project's limits; what they were."""
    cleared = await run_in_threadpool(clear_quota, who.platform, who.actor, project)
    return JsonResponse({"deleted": cleared})
