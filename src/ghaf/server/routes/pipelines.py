"""Pipelines: the ones the server runs, submit, status, logs, cancel, and what a remote
worker reports.

A submission names a pipeline the operator declared (``settings.pipelines``), never
code or a path (:mod:`ghaf.server.pipeline_runs`). With ``executor: server`` the server
runs it; with ``executor: external`` it only records the run, and a worker elsewhere
reports its steps and its end (``pipeline.step_update``, ``pipeline.run_finish``), with
outputs and logs uploaded to the run's project first. Runs are read, cancelled and
reported on only by callers allowed in their project; to anyone else a run does not
exist.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.logs import new_id
from ghaf.metadata.base import utcnow
from ghaf.pipelines.base import PipelineRun, StepRun
from ghaf.pipelines.records import (
    finish_run,
    fired_runs,
    get_run,
    list_runs,
    run_projects,
    update_step,
)
from ghaf.pipelines.records import start_run as record_start
from ghaf.pipelines.values import KINDS
from ghaf.projects.service import project_names
from ghaf.registry.uploads import require_uploaded
from ghaf.server.auth import Caller, caller
from ghaf.server.pipeline_runs import allowed_pipeline, start_run
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["pipelines"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_TARGET = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
_SHA256 = r"^[0-9a-f]{64}$"
RunId = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-f]{8,32}$", description="The run's id, or 8 or more of its first digits."
    ),
]
StepName = Annotated[str, Path(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")]
LOG_PAGE = 1024 * 1024
"""Most bytes of a step's log one request returns."""
_EXTERNAL = "external"


class Submission(BaseModel):
    """A pipeline to run: one the server declares, its parameters, its project."""

    pipeline: str = Field(
        max_length=256, pattern=_TARGET, description="MODULE:ATTRIBUTE, as GET /pipelines lists."
    )
    project: str = Field(pattern=_PROJECT)
    params: dict[Annotated[str, Field(max_length=128)], Any] = Field(
        default_factory=dict, max_length=256
    )
    executor: Literal["server", "external"] = Field(
        default="server",
        description="server: the server runs it; external: the server records it and a "
        "worker elsewhere reports its steps and its end.",
    )


class StepReport(BaseModel):
    """A step's new status, from the worker that runs it."""

    status: Literal["running", "succeeded", "failed", "cancelled", "skipped"]
    attempts: int | None = Field(default=None, ge=1, le=1000)
    error: str | None = Field(default=None, max_length=100_000)
    output_digest: str | None = Field(default=None, pattern=_SHA256)
    output_kind: str | None = Field(default=None, pattern=f"^({'|'.join(KINDS)})$")
    log_digest: str | None = Field(default=None, pattern=_SHA256)
    cpu_s: float | None = Field(default=None, ge=0, le=1e9)
    max_rss_mb: float | None = Field(default=None, ge=0, le=1e9)


class RunEnd(BaseModel):
    """How a run reported by a worker ended."""

    status: Literal["succeeded", "failed", "cancelled"]
    error: str | None = Field(default=None, max_length=100_000)


async def _readable_run(who: Caller, run_id: str) -> PipelineRun:
    """The run ``run_id`` names when the caller may read its project; else 404, as for a
    run that does not exist (a prefix that names several runs reads the same)."""
    missing = f"pipeline run {run_id!r} does not exist"
    hint = "GET /api/v1/pipeline-runs lists yours; give more of the id if it is a prefix"
    try:
        run = await run_in_threadpool(get_run, who.platform, run_id)
    except NotFoundError as exc:
        raise NotFoundError(missing, hint=hint) from exc
    await who.authorize_hidden(
        "pipeline.read", f"pipeline_run:{run.id}", run.project, missing=missing, hint=hint
    )
    return run


def _running(run: PipelineRun, *, external: bool) -> None:
    if run.status != "running":
        raise AlreadyExistsError(
            f"pipeline run {run.id} has already ended ({run.status})",
            hint="only a running run can be cancelled or reported on",
        )
    if external and run.executor != _EXTERNAL:
        raise AlreadyExistsError(
            f"pipeline run {run.id} runs on the server ({run.executor}); its steps report "
            "themselves",
            hint="submit with executor external for a run a worker elsewhere reports",
        )


def _step_of(run: PipelineRun, step: str) -> StepRun:
    found = next((s for s in run.steps if s.step == step), None)
    if found is None:
        raise NotFoundError(
            f"run {run.id[:12]} has no step {step!r}",
            hint=f"its steps: {', '.join(s.step for s in run.steps)}",
        )
    return found


async def _finish(who: Caller, run: PipelineRun, status: str, error: str | None) -> JsonResponse:
    """Close ``run`` with ``status`` through the spine; the run as it now reads."""
    await run_in_threadpool(
        functools.partial(
            finish_run, who.in_project(run.project), who.actor, run.id, status=status, error=error
        )
    )
    return JsonResponse(await run_in_threadpool(get_run, who.platform, run.id))


@router.read("/pipelines", action="pipeline.read")
async def pipelines(who: CallerDep) -> dict[str, Any]:
    """The pipelines this server runs (for callers who may read pipelines somewhere)."""
    every = await run_in_threadpool(project_names, who.platform)
    if not who.readable("pipeline.read", every):
        return {"pipelines": []}
    described = []
    for target in who.platform.settings.pipelines:
        pipeline = await run_in_threadpool(
            allowed_pipeline, who.platform.settings.pipelines, target
        )
        described.append(
            {
                "pipeline": target,
                "name": pipeline.name,
                "description": pipeline.description,
                "params": {name: p.default for name, p in pipeline.params.items()},
                "steps": list(pipeline.nodes),
            }
        )
    return {"pipelines": described}


@router.write("POST", "/pipeline-runs", action="pipeline.run_start", status_code=202)
async def submit(body: Submission, who: CallerDep) -> JsonResponse:
    """Start a run of a declared pipeline in a project, as the caller; the run as recorded
    (it goes on after the answer: poll GET /pipeline-runs/{id})."""
    settings = who.platform.settings
    pipeline = await run_in_threadpool(allowed_pipeline, settings.pipelines, body.pipeline)
    await who.authorize("pipeline.run_start", f"pipeline:{pipeline.name}", body.project)
    platform = who.in_project(body.project)
    if body.executor == _EXTERNAL:
        run_id = new_id()
        specs = [
            {"id": new_id(), "step": name, "cache_key": "", "code_digest": node.step.code_digest}
            for name, node in pipeline.nodes.items()
        ]
        await run_in_threadpool(
            functools.partial(
                record_start,
                platform,
                who.actor,
                pipeline.name,
                run_id=run_id,
                executor=_EXTERNAL,
                trigger="manual",
                params=pipeline.resolve_params(body.params),
                steps=specs,
            )
        )
    else:
        run_id = await run_in_threadpool(start_run, platform, who.actor, body.pipeline, body.params)
    return JsonResponse(await run_in_threadpool(get_run, who.platform, run_id), 202)


@router.read("/pipeline-runs", action="pipeline.read")
async def runs(
    who: CallerDep,
    pipeline: Annotated[str | None, Query(max_length=128)] = None,
    trigger: Annotated[str | None, Query(max_length=200)] = None,
    fired: Annotated[bool, Query(description="Only runs a trigger started.")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> JsonResponse:
    """Runs of the caller's projects, newest first (without their steps)."""
    every = await run_in_threadpool(run_projects, who.platform)
    mine = who.readable("pipeline.read", every)
    if fired or trigger is not None:
        fetch = functools.partial(
            fired_runs, who.platform, trigger, limit, pipeline=pipeline, projects=mine
        )
    else:
        fetch = functools.partial(list_runs, who.platform, pipeline, limit, projects=mine)
    return JsonResponse({"runs": await run_in_threadpool(fetch)})


@router.read("/pipeline-runs/{run_id}", action="pipeline.read")
async def run(run_id: RunId, who: CallerDep) -> JsonResponse:
    """A run with its steps: status, attempts, timing, outputs, errors."""
    return JsonResponse(await _readable_run(who, run_id))


@router.read(
    "/pipeline-runs/{run_id}/steps/{step}/log",
    action="pipeline.read",
    response_class=Response,
    responses={200: {"description": "Bytes of the log.", "content": {"text/plain": {}}}},
)
async def log(
    run_id: RunId,
    step: StepName,
    who: CallerDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=LOG_PAGE)] = LOG_PAGE,
) -> Response:
    """A page of what a step printed, from byte ``offset``: ``X-Ghaf-Log-Size`` is the whole
    log's size; ``X-Ghaf-Next-Offset`` is where the next page starts (absent at the end)."""
    found = await _readable_run(who, run_id)
    record = _step_of(found, step)
    if record.log_digest is None:
        raise NotFoundError(
            f"step {step} of run {found.id[:12]} has no log ({record.status})",
            hint="a step's log is stored when it ends; a cached or skipped step has none",
        )
    data = await run_in_threadpool(who.platform.artifacts.read_bytes, record.log_digest)
    page = data[offset : offset + limit]
    headers = {"x-ghaf-log-size": str(len(data))}
    if offset + len(page) < len(data):
        headers["x-ghaf-next-offset"] = str(offset + len(page))
    return Response(page, media_type="text/plain; charset=utf-8", headers=headers)


@router.write("POST", "/pipeline-runs/{run_id}/cancel", action="pipeline.run_finish")
async def cancel(run_id: RunId, who: CallerDep) -> JsonResponse:
    """Record a running run cancelled; its runner stops its steps within a second."""
    found = await _readable_run(who, run_id)
    _running(found, external=False)
    return await _finish(who, found, "cancelled", f"cancelled by {who.actor.name}")


@router.write("POST", "/pipeline-runs/{run_id}/finish", action="pipeline.run_finish")
async def finish(run_id: RunId, body: RunEnd, who: CallerDep) -> JsonResponse:
    """End a run that a worker elsewhere runs (``executor: external``)."""
    found = await _readable_run(who, run_id)
    _running(found, external=True)
    return await _finish(who, found, body.status, body.error)


@router.write("POST", "/pipeline-runs/{run_id}/steps/{step}", action="pipeline.step_update")
async def report_step(
    run_id: RunId, step: StepName, body: StepReport, who: CallerDep
) -> JsonResponse:
    """Record a step's status, output and log from the worker that runs it (a run with
    ``executor: external``); outputs and logs are files uploaded to the run's project."""
    found = await _readable_run(who, run_id)
    _running(found, external=True)
    record = _step_of(found, step)
    if (body.output_digest is None) != (body.output_kind is None):
        raise InvalidInputError(
            "output_digest and output_kind go together", hint="send both, or neither"
        )
    files = {
        name: digest
        for name, digest in (("output", body.output_digest), ("log", body.log_digest))
        if digest is not None
    }
    if files:
        await run_in_threadpool(require_uploaded, who.platform, found.project, files)
    fields = body.model_dump(exclude={"status"}, exclude_none=True)
    now = utcnow()
    if body.status == "running" and record.started_at is None:
        fields["started_at"] = now
    elif body.status != "running":
        fields["finished_at"] = now
        if record.started_at is not None:
            fields["duration_s"] = (now - record.started_at).total_seconds()
    await run_in_threadpool(
        functools.partial(
            update_step,
            who.in_project(found.project),
            who.actor,
            found.id,
            record.id,
            status=body.status,
            fields=fields,
        )
    )
    return JsonResponse(await run_in_threadpool(get_run, who.platform, found.id))
