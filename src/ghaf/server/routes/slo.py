"""SLOs of a project's deployments: define, list, show, delete, burn-rate status, firing
what pages or tickets, and the Prometheus rules.

A status or a firing evaluates an event series the client sends (per-bucket good and
total counts: what ``ghaf slo status`` reads from a file or a prediction log on the
client's side); the server never reads a file a client names.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routes.operations import OperationsRouter
from ghaf.slo.base import MAX_MIN_REQUESTS

router = OperationsRouter(tags=["slo"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_SLO = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
Project = Annotated[str, Path(pattern=_PROJECT)]
Name = Annotated[str, Path(pattern=_SLO)]
MAX_BUCKETS = 366 * 1440
"""A year of minute buckets: more than the longest SLO window needs."""
Count = Annotated[int, Field(ge=0, le=2**53)]
READ = "monitoring.read"


class SLODefinition(BaseModel):
    deployment: str = Field(min_length=1, max_length=300, description="The deployment held to it.")
    sli: Literal["availability", "latency", "quality"] = Field(description="What counts as good.")
    objective: float = Field(gt=0, lt=1, description="Target share of good events, e.g. 0.999.")
    window_days: int = Field(default=30, ge=1, le=366, description="The SLO window in days.")
    threshold_ms: float | None = Field(
        default=None, gt=0, le=1e7, description="Latency SLOs: a request under it is good."
    )
    min_requests_per_hour: int = Field(
        default=100,
        ge=0,
        le=MAX_MIN_REQUESTS,
        description="Below this traffic (scaled to each window) nothing alerts.",
    )


class Series(BaseModel):
    start: float = Field(description="Epoch second where bucket 0 starts.", ge=0, le=1e11)
    step: int = Field(default=60, ge=1, le=86_400, description="Seconds per bucket.")
    good: list[Count] = Field(max_length=MAX_BUCKETS, description="Good events per bucket.")
    total: list[Count] = Field(max_length=MAX_BUCKETS, description="All events per bucket.")


class Evaluation(BaseModel):
    series: Series
    at: float | None = Field(
        default=None, description="Evaluate at this epoch second (default: the last bucket's end)."
    )


def _series(body: Evaluation) -> Any:
    from ghaf.slo.engine import EventSeries

    return EventSeries.from_dict(body.series.model_dump())


async def _slo(who: Caller, project: str, name: str) -> Any:
    """The SLO ``name`` of ``project`` if the caller may read the project's monitoring."""
    from ghaf.slo.store import get_slo

    await who.authorize(READ, f"slo:{name}", project)
    return await run_in_threadpool(get_slo, who.in_project(project), name)


@router.read("/projects/{project}/slos", action=READ)
async def slos(project: Project, who: CallerDep) -> JsonResponse:
    """The project's SLOs, by name."""
    from ghaf.slo.store import list_slos

    await who.authorize(READ, "slos", project)
    found = await run_in_threadpool(list_slos, who.in_project(project))
    return JsonResponse({"slos": [s.to_dict() for s in found]})


@router.write("PUT", "/projects/{project}/slos/{name}", action="slo.define")
async def define(project: Project, name: Name, body: SLODefinition, who: CallerDep) -> JsonResponse:
    """Define (or redefine) an SLO of one of the project's deployments."""
    from ghaf.slo import SLO
    from ghaf.slo.store import define_slo

    slo = SLO(name=name, **body.model_dump())
    done = await run_in_threadpool(define_slo, who.in_project(project), who.actor, slo)
    return JsonResponse(done.to_dict())


@router.read("/projects/{project}/slos/{name}", action=READ)
async def show(project: Project, name: Name, who: CallerDep) -> JsonResponse:
    """One SLO: its deployment, SLI, objective, budget and minimum traffic."""
    return JsonResponse((await _slo(who, project, name)).to_dict())


@router.write("DELETE", "/projects/{project}/slos/{name}", action="slo.delete")
async def delete(project: Project, name: Name, who: CallerDep) -> JsonResponse:
    """Delete an SLO (alerts and incidents it raised stay)."""
    from ghaf.slo.store import delete_slo

    gone = await run_in_threadpool(delete_slo, who.in_project(project), who.actor, name)
    return JsonResponse({"deleted": gone.to_dict()})


@router.query("/projects/{project}/slos/{name}/status", action=READ)
async def status(project: Project, name: Name, body: Evaluation, who: CallerDep) -> JsonResponse:
    """Each window pair's burn rates and verdict (page, ticket or none); fires nothing."""
    from ghaf.slo.engine import status as evaluate

    slo = await _slo(who, project, name)
    series = _series(body)
    document = await run_in_threadpool(evaluate, slo, series, body.at)
    return JsonResponse({**document, "alerts": None})


@router.write("POST", "/projects/{project}/slos/{name}/fire", action="slo.fire")
async def fire(project: Project, name: Name, body: Evaluation, who: CallerDep) -> JsonResponse:
    """The status, with what pages or tickets sent to alerts and incidents."""
    from ghaf.slo.alerting import fire_slo

    series = _series(body)
    document = await run_in_threadpool(
        functools.partial(fire_slo, who.in_project(project), who.actor, name, series, body.at)
    )
    return JsonResponse(document)


@router.read("/projects/{project}/slo-rules", action=READ)
async def rules(
    project: Project,
    who: CallerDep,
    name: Annotated[list[str] | None, Query(max_length=100)] = None,
) -> JsonResponse:
    """The project's SLOs (or those named) as Prometheus recording and alerting rules:
    ``{"format": "prometheus", "groups": [...]}``; ``rules`` holds the YAML file."""
    from ghaf.errors import InvalidInputError
    from ghaf.slo import prometheus
    from ghaf.slo.store import get_slo, list_slos

    await who.authorize(READ, "slos", project)
    where = who.in_project(project)
    if name:
        chosen = [await run_in_threadpool(get_slo, where, n) for n in name]
    else:
        chosen = await run_in_threadpool(list_slos, where)
    if not chosen:
        raise InvalidInputError("there are no SLOs to export", hint="ghaf slo define ...")
    groups = prometheus.rule_groups(chosen)
    return JsonResponse(
        {"format": "prometheus", **groups, "rules": prometheus.export_rules(chosen)}
    )


class SLOSchedule(BaseModel):
    targets: list[str] = Field(
        min_length=1,
        max_length=16,
        description="Base URLs of the deployment's ghaf serve processes (--metrics-public).",
    )
    every_s: int = Field(default=60, ge=10, le=3600, description="Seconds between two reads.")


@router.write("PUT", "/projects/{project}/slos/{name}/schedule", action="slo.schedule")
async def schedule(project: Project, name: Name, body: SLOSchedule, who: CallerDep) -> JsonResponse:
    """Evaluate the SLO on a schedule: the server's live loop reads the targets' counters
    every ``every_s`` seconds, keeps them, and fires and resolves the burn-rate alerts."""
    from ghaf.slo.schedule import schedule_slo

    done = await run_in_threadpool(
        schedule_slo, who.in_project(project), who.actor, name, body.targets, body.every_s
    )
    return JsonResponse(done.to_dict())


@router.write("DELETE", "/projects/{project}/slos/{name}/schedule", action="slo.unschedule")
async def unschedule(project: Project, name: Name, who: CallerDep) -> JsonResponse:
    """Stop evaluating the SLO on a schedule (its samples go; its incidents stay)."""
    from ghaf.slo.schedule import unschedule_slo

    gone = await run_in_threadpool(unschedule_slo, who.in_project(project), who.actor, name)
    return JsonResponse({"unscheduled": gone.to_dict()})


@router.read("/projects/{project}/slo-schedules", action=READ)
async def schedules(project: Project, who: CallerDep) -> JsonResponse:
    """The project's scheduled SLOs: targets, interval, next due time, last error, and
    the windows firing now."""
    from ghaf.slo.schedule import list_slo_scrapes

    await who.authorize(READ, "slos", project)
    found = await run_in_threadpool(list_slo_scrapes, who.in_project(project))
    return JsonResponse({"schedules": [s.to_dict() for s in found]})
