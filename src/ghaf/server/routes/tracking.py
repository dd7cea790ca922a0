"""Experiments and runs: create, log in batches, end, read, search, within projects."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from ghaf.errors import NotFoundError, name_taken
from ghaf.lineage.graph import check_node
from ghaf.platform import Platform
from ghaf.provenance import node_project
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter
from ghaf.tracking.query import search_runs
from ghaf.tracking.service import (
    create_experiment,
    create_run,
    end_run,
    experiment_projects,
    get_run,
    log_batch,
    log_inputs,
    run_project,
)

router = ActionRouter(tags=["tracking"])
CallerDep = Annotated[Caller, Depends(caller)]
_KEY = r"^[A-Za-z0-9_.\-/ ]{1,250}$"
MAX_POINTS = 100_000
"""Metric points one batch may carry (a client flushes more often than that)."""


class NewExperiment(BaseModel):
    name: str = Field(pattern=_KEY)
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$")


class NewRun(BaseModel):
    experiment: str = Field(pattern=_KEY)
    project: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$")
    name: str | None = Field(default=None, max_length=250)
    parent_run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class MetricColumns(BaseModel):
    """Metric points as columns: point ``i`` is ``(key[i], value[i], step[i], timestamp[i])``."""

    key: list[str] = Field(max_length=MAX_POINTS)
    value: list[float] = Field(max_length=MAX_POINTS)
    step: list[int] = Field(max_length=MAX_POINTS)
    timestamp: list[float] = Field(max_length=MAX_POINTS)

    @model_validator(mode="after")
    def _aligned(self) -> MetricColumns:
        n = len(self.key)
        for name in ("value", "step", "timestamp"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"metrics.{name} has {len(getattr(self, name))} items, key {n}")
        return self


class Batch(BaseModel):
    """Points, params and tags written in one transaction."""

    metrics: MetricColumns | None = None
    params: dict[str, str] = Field(default_factory=dict, max_length=1000)
    tags: dict[str, str] = Field(default_factory=dict, max_length=1000)


class RunInputs(BaseModel):
    """Lineage nodes a run used: dataset or feature versions (``dataset:transactions:3``)."""

    nodes: list[Annotated[str, Field(min_length=3, max_length=300)]] = Field(
        min_length=1, max_length=1000
    )


class RunEnd(BaseModel):
    status: str = Field(default="finished", pattern=r"^(finished|failed|killed)$")


@functools.lru_cache(maxsize=65_536)
def _cached_run_project(platform: Platform, run_id: str) -> str:
    return run_project(platform, run_id)  # a run never changes project


async def readable_run(who: Caller, run_id: str, action: str) -> str:
    """The project of ``run_id`` once the caller may ``action`` there; else 404."""
    project = await run_in_threadpool(_cached_run_project, who.platform, run_id)
    # Word for word what the service says of a run that does not exist.
    missing, hint = f"run {run_id} does not exist", "ghaf runs list"
    await who.authorize_hidden(action, f"run:{run_id}", project, missing=missing, hint=hint)
    return project


@router.read("/experiments", action="experiment.read")
async def experiments(who: CallerDep) -> dict[str, Any]:
    """The experiments of the projects the caller may read."""
    owned = await run_in_threadpool(experiment_projects, who.platform)
    allowed = set(who.readable("experiment.read", owned.values()))
    return {
        "experiments": [
            {"name": name, "project": project}
            for name, project in owned.items()
            if project in allowed
        ]
    }


def _check_experiment(platform: Platform, name: str, project: str) -> None:
    owner = experiment_projects(platform).get(name)
    if owner is not None and owner != project:
        raise name_taken("experiment", name)


@router.write("POST", "/experiments", action="experiment.create", status_code=201)
async def new_experiment(body: NewExperiment, who: CallerDep) -> dict[str, Any]:
    """Create an experiment in a project (nothing happens when it exists there)."""
    await who.authorize("experiment.create", f"experiment:{body.name}", body.project)
    await run_in_threadpool(_check_experiment, who.platform, body.name, body.project)
    name = await run_in_threadpool(
        create_experiment,
        who.in_project(body.project),
        who.actor,
        body.name,
        project=body.project,
    )
    return {"name": name, "project": body.project}


@router.write("POST", "/runs", action="run.create", status_code=201)
async def new_run(body: NewRun, who: CallerDep) -> dict[str, Any]:
    """Start a run (its experiment is created in the project when missing)."""
    await who.authorize("run.create", f"experiment:{body.experiment}", body.project)
    await run_in_threadpool(_check_experiment, who.platform, body.experiment, body.project)
    if body.parent_run_id is not None:
        await readable_run(who, body.parent_run_id, "run.read")
    run_id = await run_in_threadpool(
        functools.partial(
            create_run,
            who.in_project(body.project),
            who.actor,
            body.experiment,
            name=body.name,
            parent_run_id=body.parent_run_id,
            tags=body.tags,
            project=body.project,
        )
    )
    return {"run_id": run_id, "project": body.project}


@router.write("POST", "/runs/{run_id}/batch", action="run.log_batch")
async def batch(run_id: str, body: Batch, who: CallerDep) -> dict[str, Any]:
    """Write metric points, params and tags to a run, in one transaction."""
    project = await readable_run(who, run_id, "run.read")
    metrics = body.metrics
    points = (
        list(zip(metrics.key, metrics.value, metrics.step, metrics.timestamp, strict=True))
        if metrics is not None
        else []
    )
    written = await run_in_threadpool(
        functools.partial(
            log_batch,
            who.in_project(project),
            who.actor,
            run_id,
            metrics=points,
            params=body.params,
            tags=body.tags,
        )
    )
    return {"run_id": run_id, "points": written}


@router.write("POST", "/runs/{run_id}/inputs", action="run.log_inputs")
async def inputs(run_id: str, body: RunInputs, who: CallerDep) -> dict[str, Any]:
    """Record what a run used, as inputs and lineage edges; each node must exist and be
    readable by the caller (another project's reads as missing)."""
    project = await readable_run(who, run_id, "run.read")
    for node in body.nodes:
        check_node(node)
        owner = await run_in_threadpool(node_project, who.platform, node)
        missing = f"lineage node {node!r} does not exist"
        hint = "GET /api/v1/datasets lists the datasets you may read"
        if owner is None:
            raise NotFoundError(missing, hint=hint)
        await who.authorize_hidden("lineage.read", node, owner, missing=missing, hint=hint)
    await run_in_threadpool(log_inputs, who.in_project(project), who.actor, run_id, body.nodes)
    return {"run_id": run_id, "inputs": body.nodes}


@router.write("POST", "/runs/{run_id}/end", action="run.end")
async def end(run_id: str, body: RunEnd, who: CallerDep) -> dict[str, Any]:
    """Mark a run finished, failed or killed."""
    project = await readable_run(who, run_id, "run.read")
    await run_in_threadpool(end_run, who.in_project(project), who.actor, run_id, body.status)
    return {"run_id": run_id, "status": body.status}


@router.read("/runs/{run_id}", action="run.read")
async def run(run_id: str, who: CallerDep) -> JsonResponse:
    """A run with everything recorded about it."""
    await readable_run(who, run_id, "run.read")
    return JsonResponse(await run_in_threadpool(get_run, who.platform, run_id))


@router.read("/runs", action="run.read")
async def runs(
    who: CallerDep,
    filter: Annotated[str | None, Query(max_length=4096)] = None,
    experiment: Annotated[list[str] | None, Query()] = None,
    order_by: Annotated[list[str] | None, Query()] = None,
    max_results: Annotated[int, Query(ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(max_length=256)] = None,
) -> JsonResponse:
    """Runs of the caller's projects matching ``filter`` (the ``ghaf runs`` syntax)."""
    owned = await run_in_threadpool(experiment_projects, who.platform)
    projects = who.readable("run.read", owned.values())
    page = await run_in_threadpool(
        functools.partial(
            search_runs,
            who.platform,
            filter,
            experiments=experiment,
            order_by=order_by or (),
            max_results=max_results,
            page_token=page_token,
            projects=projects,
        )
    )
    return JsonResponse({"runs": page.runs, "next_page_token": page.next_page_token})
