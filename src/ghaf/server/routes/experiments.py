"""A/B experiments over deployments: records, transitions, decisions, and label imports
(and canaries: :mod:`ghaf.server.routes.canaries`).

Reads need ``traffic.read`` in the experiment's project (another project's reads as
missing); each write names its governed action. ``decide`` and the interim analysis read
the prediction log under the server's home (``HOME/predictions``): a client never names
a server path.
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
from ghaf.server.routes.canaries import router as canaries_router
from ghaf.server.routing import ActionRouter

_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_REF = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}:[0-9]{1,9}$"
_DATASET = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}[:@][0-9]{1,9}$"

router = ActionRouter(tags=["experiments"])
CallerDep = Annotated[Caller, Depends(caller)]
Ref = Annotated[str, Field(pattern=_REF)]


class NewExperiment(BaseModel):
    name: str = Field(pattern=_NAME)
    project: str = Field(pattern=_PROJECT)
    deployment: str = Field(pattern=_NAME)
    variants: dict[Ref, Annotated[float, Field(ge=0, le=1e9)]] = Field(
        min_length=2, max_length=16, description="Concrete refs (NAME:V) -> traffic weight."
    )
    control: Ref | None = None
    goal: str = Field(default="outcome", min_length=1, max_length=128)
    guardrails: list[Annotated[str, Field(max_length=200)]] = Field(
        default_factory=lambda: ["latency_ms:lower"], max_length=8
    )
    holdout: float = Field(default=0.0, ge=0, lt=1)
    unit: str = Field(default="header", max_length=140, description="header, input:N, parameter:N")
    shadows: list[Ref] = Field(default_factory=list, max_length=8)


class OutcomeImport(BaseModel):
    model: str = Field(pattern=_NAME, description="The served model the labels belong to.")
    dataset: str = Field(pattern=_DATASET, description="The labels' dataset version NAME:V.")
    project: str = Field(pattern=_PROJECT)


async def _readable(who: Caller, name: str) -> Any:
    """The experiment ``name`` if the caller may read it; else 404 (another project's
    experiment reads as missing, as on the other routes)."""
    from ghaf.experiments.service import experiment_project, get_experiment

    missing = f"experiment {name!r} does not exist"
    hint = "GET /api/v1/traffic/experiments lists the experiments you may read"
    project = await run_in_threadpool(experiment_project, who.platform, name)
    if project is None:
        raise NotFoundError(missing, hint=hint)
    await who.authorize_hidden(
        "traffic.read", f"experiment:{name}", project, missing=missing, hint=hint
    )
    return await run_in_threadpool(get_experiment, who.in_project(project), name)


@router.read("/traffic/experiments", action="traffic.read")
async def experiments(
    who: CallerDep, project: Annotated[str | None, Query(pattern=_PROJECT)] = None
) -> JsonResponse:
    """The experiments of the projects the caller may read (of ``project`` only, if given)."""
    from ghaf.experiments.service import list_experiments

    every = await run_in_threadpool(list_experiments, who.platform)
    allowed = set(who.readable("traffic.read", [e.project for e in every]))
    shown = [e for e in every if e.project in allowed and project in (None, e.project)]
    return JsonResponse({"experiments": shown})


@router.read("/traffic/experiments/{name}", action="traffic.read")
async def experiment(name: str, who: CallerDep) -> JsonResponse:
    """The record and an interim analysis of the server's prediction log (nothing stored)."""
    from ghaf.experiments.service import experiment_status

    found = await _readable(who, name)
    doc = await run_in_threadpool(experiment_status, who.in_project(found.project), name)
    return JsonResponse(doc)


@router.write("POST", "/traffic/experiments", action="traffic.experiment_create", status_code=201)
async def new_experiment(body: NewExperiment, who: CallerDep) -> JsonResponse:
    """Record a draft experiment on a deployment of the project."""
    from ghaf.experiments.service import create_experiment

    made = await run_in_threadpool(
        functools.partial(
            create_experiment,
            who.in_project(body.project),
            who.actor,
            body.name,
            body.deployment,
            body.variants,
            goal=body.goal,
            guardrails=body.guardrails,
            holdout=body.holdout,
            unit=body.unit,
            shadows=body.shadows,
            control=body.control,
            project=body.project,
        )
    )
    return JsonResponse(made, status_code=201)


@router.write("POST", "/traffic/experiments/{name}/start", action="traffic.experiment_start")
async def start(name: str, who: CallerDep) -> JsonResponse:
    """Start assigning units (running servers apply it within seconds)."""
    from ghaf.experiments.service import start_experiment

    found = await _readable(who, name)
    moved = await run_in_threadpool(
        start_experiment, who.in_project(found.project), who.actor, name
    )
    return JsonResponse(moved)


@router.write("POST", "/traffic/experiments/{name}/stop", action="traffic.experiment_stop")
async def stop(name: str, who: CallerDep) -> JsonResponse:
    """Stop assigning units: the deployment serves by its own weights again."""
    from ghaf.experiments.service import stop_experiment

    found = await _readable(who, name)
    moved = await run_in_threadpool(stop_experiment, who.in_project(found.project), who.actor, name)
    return JsonResponse(moved)


@router.write("POST", "/traffic/experiments/{name}/decide", action="traffic.experiment_decide")
async def decide(name: str, who: CallerDep) -> JsonResponse:
    """Judge a stopped experiment and record the decision with every number it used."""
    from ghaf.experiments.service import decide_experiment

    found = await _readable(who, name)
    decided = await run_in_threadpool(
        decide_experiment, who.in_project(found.project), who.actor, name
    )
    return JsonResponse(decided)


@router.write("POST", "/outcomes/import", action="model.feedback", status_code=201)
async def import_labels(body: OutcomeImport, who: CallerDep) -> JsonResponse:
    """Store a dataset version's labels as outcomes of a served model (``model.feedback``;
    the dataset must be readable by the caller)."""
    from ghaf.data import get_dataset
    from ghaf.data.catalog import project_of
    from ghaf.experiments.outcomes import import_outcomes

    platform = who.in_project(body.project)
    version = await run_in_threadpool(get_dataset, platform, body.dataset.replace("@", ":"))
    project = await run_in_threadpool(project_of, platform, version)
    await who.authorize_hidden(
        "dataset.read",
        version.node,
        project,
        missing=f"dataset {body.dataset!r} does not exist",
        hint="GET /api/v1/datasets lists the datasets you may read",
    )
    stored = await run_in_threadpool(import_outcomes, platform, who.actor, body.model, body.dataset)
    return JsonResponse({"stored": stored}, status_code=201)


# The canaries' routes live in their own module, served under this router's tag group.
router.include_router(canaries_router)
