"""Alerts in (Ghaf's shape and Alertmanager's webhook), incidents out: list, show, the
state transitions, assignment, notes and timeline entries, each its governed action.

An alert batch is answered 200 only after it is committed (alerts, incidents and the
deliveries they owe), so a sender that got no answer re-sends, as Alertmanager does;
a re-sent occurrence (same id) is counted once. Deliveries are then attempted in the
background as the same caller (``alert.deliver``), and retried from the outbox.
"""

from __future__ import annotations

import functools
import logging
from typing import Annotated, Any

from fastapi import BackgroundTasks, Body, Depends, Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ghaf.errors import GhafError, InvalidInputError, NotFoundError
from ghaf.server.auth import Caller, caller
from ghaf.server.responses import JsonResponse
from ghaf.server.routing import ActionRouter

router = ActionRouter(tags=["incidents"])
CallerDep = Annotated[Caller, Depends(caller)]
_PROJECT = r"^[a-z0-9][a-z0-9_-]{0,127}$"
_NUMBER = r"^INC[0-9]{7}$"
_FINGERPRINT = r"^[0-9a-f]{16}$"
Project = Annotated[str, Path(pattern=_PROJECT)]
Number = Annotated[str, Path(pattern=_NUMBER)]
_log = logging.getLogger(__name__)


class AlertBatch(BaseModel):
    alerts: list[dict[str, Any]] = Field(
        min_length=1, max_length=5000, description="Alerts in Ghaf's shape (ghaf alerts fire)."
    )


class Note(BaseModel):
    note: str = Field(default="", max_length=10_000, description="Why (kept on the timeline).")


class Assignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=256)


class WorkNote(BaseModel):
    text: str = Field(min_length=1, max_length=10_000)


class TimelineEntry(BaseModel):
    kind: str = Field(max_length=32, description="rollback, retrain, canary, promote, ...")
    details: dict[str, Any] = Field(default_factory=dict)


def _deliver(who: Caller, project: str) -> None:
    """Send what the change owes, as its caller; what fails stays in the outbox."""
    from ghaf.alerts.outbox import deliver_outbox

    if not who.platform.settings.alerting.receivers:
        return  # nothing is ever owed: no audit record for an empty pass
    if not who.readable("alert.deliver", [project]):
        return
    try:
        deliver_outbox(who.in_project(project), who.actor)
    except GhafError as exc:
        _log.warning("alert delivery deferred: %s", exc.headline)


async def _ingest(
    who: Caller, project: str, alerts: list[Any], tasks: BackgroundTasks
) -> JsonResponse:
    from ghaf.incidents.ingest import ingest_alerts

    await who.authorize("alert.ingest", "alerts", project)
    result = await run_in_threadpool(ingest_alerts, who.in_project(project), who.actor, alerts)
    tasks.add_task(_deliver, who, project)
    return JsonResponse(result)


@router.write("POST", "/projects/{project}/alerts", action="alert.ingest")
async def fire_alerts(
    project: Project, body: AlertBatch, who: CallerDep, tasks: BackgroundTasks
) -> JsonResponse:
    """Record alerts in Ghaf's shape; open or update one incident per fingerprint."""
    from ghaf.alerts.base import parse_alert

    alerts = []
    for index, item in enumerate(body.alerts):
        try:
            alerts.append(parse_alert(item))
        except InvalidInputError as exc:
            raise InvalidInputError(f"alerts[{index}]: {exc.headline}", hint=exc.hint) from exc
    return await _ingest(who, project, alerts, tasks)


@router.write("POST", "/projects/{project}/alerts/alertmanager", action="alert.ingest")
async def alertmanager_webhook(
    project: Project,
    who: CallerDep,
    tasks: BackgroundTasks,
    body: Annotated[dict[str, Any], Body(description="Alertmanager's webhook JSON.")],
) -> JsonResponse:
    """Alertmanager's webhook receiver: point a receiver's ``webhook_configs`` here."""
    from ghaf.alerts.base import parse_alertmanager

    return await _ingest(who, project, parse_alertmanager(body), tasks)


@router.read("/projects/{project}/alerts", action="alert.read")
async def alerts(
    project: Project,
    who: CallerDep,
    status: Annotated[str | None, Query(pattern="^(firing|resolved|inhibited)$")] = None,
) -> JsonResponse:
    """The project's alerts, one per fingerprint, most recently seen first."""
    from ghaf.incidents.ingest import list_alerts

    await who.authorize("alert.read", "alerts", project)
    found = await run_in_threadpool(
        functools.partial(list_alerts, who.in_project(project), status=status)
    )
    return JsonResponse({"alerts": found})


@router.write("POST", "/projects/{project}/alerts/{fingerprint}/resolve", action="alert.resolve")
async def resolve_alert(
    project: Project,
    fingerprint: Annotated[str, Path(pattern=_FINGERPRINT)],
    who: CallerDep,
    tasks: BackgroundTasks,
) -> JsonResponse:
    """Mark a firing alert resolved (its receivers are told; its incident stays open)."""
    from ghaf.incidents.ingest import resolve_alert as resolve

    done = await run_in_threadpool(resolve, who.in_project(project), who.actor, fingerprint)
    tasks.add_task(_deliver, who, project)
    return JsonResponse(done)


@router.write("POST", "/projects/{project}/alerts/deliver", action="alert.deliver")
async def deliver(project: Project, who: CallerDep) -> JsonResponse:
    """Send the deliveries that are due now (the outbox retries the rest)."""
    from ghaf.alerts.outbox import deliver_outbox

    report = await run_in_threadpool(deliver_outbox, who.in_project(project), who.actor)
    return JsonResponse(report)


@router.read("/incidents", action="incident.read")
async def incidents(
    who: CallerDep,
    project: Annotated[str | None, Query(pattern=_PROJECT)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
) -> JsonResponse:
    """Incidents of the projects the caller may read, newest first, with MTTA/MTTR."""
    from ghaf.incidents.records import incident_metrics, incident_projects, list_incidents

    every = await run_in_threadpool(incident_projects, who.platform)
    allowed = who.readable("incident.read", every)
    shown = [p for p in allowed if project in (None, p)]
    found = await run_in_threadpool(
        functools.partial(list_incidents, who.platform, projects=shown, state=state)
    )
    return JsonResponse({"incidents": found, "metrics": incident_metrics(found)})


async def _project(who: Caller, number: str) -> str:
    """The project of incident ``number`` if the caller may read it (else a 404)."""
    from ghaf.incidents.records import project_of_incident

    missing = f"incident {number} does not exist"
    hint = "GET /api/v1/incidents lists the incidents you may read"
    project = await run_in_threadpool(project_of_incident, who.platform, number)
    if project is None:
        raise NotFoundError(missing, hint=hint)
    await who.authorize_hidden(
        "incident.read", f"incident:{number}", project, missing=missing, hint=hint
    )
    return project


@router.read("/incidents/{number}", action="incident.read")
async def incident(number: Number, who: CallerDep) -> JsonResponse:
    """One incident with its timeline."""
    from ghaf.incidents.records import get_incident

    project = await _project(who, number)
    record, timeline = await run_in_threadpool(get_incident, who.in_project(project), number)
    return JsonResponse({"incident": record, "timeline": timeline})


def _transition_route(verb: str) -> None:
    from ghaf.incidents import lifecycle

    function = {
        "ack": lifecycle.acknowledge,
        "hold": lifecycle.hold,
        "resume": lifecycle.resume,
        "resolve": lifecycle.resolve,
        "close": lifecycle.close,
        "cancel": lifecycle.cancel,
        "reopen": lifecycle.reopen,
    }[verb]
    takes_note = verb in ("hold", "resolve", "cancel", "reopen")

    async def move(
        number: Number, who: CallerDep, tasks: BackgroundTasks, body: Note | None = None
    ) -> JsonResponse:
        project = await _project(who, number)
        args = (number, body.note) if takes_note and body is not None else (number,)
        changed = await run_in_threadpool(function, who.in_project(project), who.actor, *args)
        tasks.add_task(_deliver, who, project)
        return JsonResponse(changed)

    move.__name__ = f"incident_{verb}"
    move.__doc__ = function.__doc__
    router.write("POST", f"/incidents/{{number}}/{verb}", action=f"incident.{verb}")(move)


for _verb in ("ack", "hold", "resume", "resolve", "close", "cancel", "reopen"):
    _transition_route(_verb)


@router.write("POST", "/incidents/{number}/assign", action="incident.assign")
async def assign(
    number: Number, body: Assignment, who: CallerDep, tasks: BackgroundTasks
) -> JsonResponse:
    """Assign an open incident to a person."""
    from ghaf.incidents.lifecycle import assign as assign_incident

    project = await _project(who, number)
    changed = await run_in_threadpool(
        assign_incident, who.in_project(project), who.actor, number, body.assignee
    )
    tasks.add_task(_deliver, who, project)
    return JsonResponse(changed)


@router.write("POST", "/incidents/{number}/notes", action="incident.note")
async def note(number: Number, body: WorkNote, who: CallerDep) -> JsonResponse:
    """Add a work note to the timeline."""
    from ghaf.incidents.lifecycle import add_note

    project = await _project(who, number)
    changed = await run_in_threadpool(
        add_note, who.in_project(project), who.actor, number, body.text
    )
    return JsonResponse(changed)


@router.write("POST", "/incidents/{number}/events", action="incident.record")
async def record(number: Number, body: TimelineEntry, who: CallerDep) -> JsonResponse:
    """Add a hop of the closed loop (rollback, retrain, canary, ...) to the timeline."""
    from ghaf.incidents.lifecycle import record_event

    project = await _project(who, number)
    changed = await run_in_threadpool(
        record_event, who.in_project(project), who.actor, number, body.kind, body.details
    )
    return JsonResponse(changed)
