"""Cost: the report over the caller's projects (``cost.read``), and recording what a job
held and used (``usage.record``: a worker or a job outside Ghaf reports its usage)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["cost"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_TEXT = r"^[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,199}$"
Project = Annotated[str, Path(pattern=_PROJECT)]
Number = Annotated[float, Field(ge=0, le=1e15)]


class UsageBody(BaseModel):
    kind: Literal["run", "pipeline_step", "batch", "deployment"] = Field(
        description="What held the resources."
    )
    ref: str = Field(pattern=_TEXT, description="Its id (kind and ref are unique).")
    started_at: datetime = Field(description="When it started (ISO 8601, with a zone).")
    ended_at: datetime = Field(description="When it ended.")
    wall_s: Number = Field(description="Wall seconds it ran.")
    cpu_s: Number = Field(default=0.0, description="CPU-seconds used.")
    cpu_request: Number = Field(default=0.0, description="vCPUs held for the wall time.")
    memory_peak_gb: Number = Field(default=0.0, description="Peak memory, GB.")
    memory_gb_hours: Number = Field(default=0.0, description="Memory used, GB-hours.")
    memory_request_gb: Number = Field(default=0.0, description="Memory held, GB.")
    gpu_class: str | None = Field(default=None, pattern=_TEXT, description="e.g. nvidia-h100.")
    gpu_s: Number = Field(default=0.0, description="GPU-seconds used.")
    gpu_request: Number = Field(default=0.0, description="GPUs held for the wall time.")
    replicas: int = Field(default=1, ge=0, le=100_000, description="Replicas (servers).")
    predictions: int = Field(default=0, ge=0, le=2**53, description="Predictions served.")
    model: str | None = Field(default=None, pattern=_TEXT, description="Model name.")
    deployment: str | None = Field(default=None, pattern=_TEXT, description="Deployment name.")
    parent: str | None = Field(default=None, pattern=_TEXT, description="What it is part of.")
    within: str | None = Field(
        default=None, pattern=_TEXT, description="kind:ref of a record that already counts it."
    )
    labels: dict[str, str] = Field(default_factory=dict, max_length=50)


@router.read("/cost", action="cost.read")
async def report(
    who: CallerDep,
    since: Annotated[str, Query(max_length=64, description="30m, 24h, 7d, 2w or ISO.")] = "7d",
    until: Annotated[str | None, Query(max_length=64, description="Default: now.")] = None,
    by: Annotated[str, Query(max_length=32, description="project|model|deployment|user")] = (
        "project"
    ),
    project: Annotated[str | None, Query(pattern=_PROJECT)] = None,
) -> JsonResponse:
    """The cost report over the projects the caller may read costs of (``ghaf cost report
    -o json`` prints the same document)."""
    from ghaf.cost.report import check_grouping, cost_report, parse_since, parse_until
    from ghaf.metadata.base import utcnow

    check_grouping(by)
    now = utcnow()
    start, end = parse_since(since, now), parse_until(until, now)
    document = await run_in_threadpool(
        functools.partial(
            cost_report, who.platform, who.actor, by=by, since=start, until=end, project=project
        )
    )
    return JsonResponse(document)


@router.write("POST", "/projects/{project}/usage", action="usage.record")
async def record(project: Project, body: UsageBody, who: CallerDep) -> JsonResponse:
    """Record what a job held and used in the project (replaces a record of the same
    kind and ref)."""
    from ghaf.cost.base import Usage
    from ghaf.cost.store import record_usage

    usage = Usage.from_dict(body.model_dump())
    stored = await run_in_threadpool(record_usage, who.in_project(project), who.actor, usage)
    return JsonResponse(stored.to_dict())
