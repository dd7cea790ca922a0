"""The job queue in front of the executors, durable in the metadata store.

Work is submitted as a job (quota checked then: a project over its CPU- or GPU-hours
quota is refused at once, naming the quota, the usage and the fix) and waits, queued,
until a dispatcher (``ghaf jobs work``) claims it for one of its executor slots.
A claim takes the project that fair share picks among those with work waiting and
room under their concurrent-jobs quota (:mod:`ghaf.scheduling.fairshare`, by each
project's weight), then that project's job of the highest priority, oldest first.
Claims are serialized by the store (SQLite's write lock; a transaction-scoped advisory
lock on PostgreSQL), so dispatchers in several processes never take the same job.

A claimed job names its owner (host, process id and start time of the dispatcher) and
carries a heartbeat; a job whose owner is gone returns to the queue
(:func:`reclaim_jobs`), so a killed dispatcher loses nothing.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.logs import new_id
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.scheduling.fairshare import FairShare, dispatch_order
from ghaf.scheduling.quotas import ALL_PROJECTS, check_quota
from ghaf.scheduling.tables import (
    VIRTUAL_TIME,
    FairSharePassRow,
    ProjectQuotaRow,
    QueuedJobRow,
)
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

KINDS = ("pipeline",)
"""What a job may run: a pipeline the operator declared (``settings.pipelines``)."""
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
ENDED = frozenset({"succeeded", "failed", "cancelled"})
MAX_PRIORITY = 1000
_LOCK_KEY = 0x6A6F6273  # "jobs": the advisory lock that serializes claims on PostgreSQL


@dataclass(frozen=True)
class Job:
    """A queued job as callers see it; ``position`` counts from 1 among queued jobs."""

    id: str
    kind: str
    project: str
    target: str
    params: dict[str, Any]
    cpus: float
    gpus: float
    priority: int
    status: str
    submitted_by: str
    submitted_at: datetime
    attempts: int
    owner: str | None
    run_by: str | None
    claimed_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    position: int | None = None


def _to_job(row: QueuedJobRow, position: int | None = None) -> Job:
    return Job(
        id=row.id,
        kind=row.kind,
        project=row.project,
        target=row.target,
        params=json.loads(row.params),
        cpus=row.cpus,
        gpus=row.gpus,
        priority=row.priority,
        status=row.status,
        submitted_by=row.submitted_by,
        submitted_at=row.submitted_at,
        attempts=row.attempts,
        owner=row.owner,
        run_by=row.run_by,
        claimed_at=row.claimed_at,
        finished_at=row.finished_at,
        result=json.loads(row.result) if row.result else None,
        error=row.error,
        position=position,
    )


def _priority(value: int) -> int:
    if not -MAX_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidInputError(
            f"priority {value} is out of range",
            hint=f"use {-MAX_PRIORITY} to {MAX_PRIORITY} (higher runs first in its project)",
        )
    return value


def _amount(value: float, field: str, top: int) -> float:
    if not (math.isfinite(value) and 0 <= value <= top):
        raise InvalidInputError(
            f"{field} must be 0 to {top}, not {value!r}", hint=f"e.g. --{field} 1"
        )
    return value


@governed("job.submit", resource="pipeline:{target}")
def submit_job(
    platform: Platform,
    actor: Actor,
    kind: str,
    target: str,
    *,
    params: Mapping[str, Any] | None = None,
    cpus: float = 1.0,
    gpus: float = 0.0,
    priority: int = 0,
    project: str | None = None,
    at: datetime | None = None,
) -> Job:
    """Queue ``target`` to run in ``project`` when a dispatcher has a slot for it.

    The submitter must be allowed to run the pipeline (``pipeline.run_start``) in the
    project: a dispatcher runs only what its submitter could have run.

    Raises:
        InvalidInputError: an unknown kind, a resource amount or priority out of range.
        NotFoundError: the pipeline is not one the operator declared.
        PermissionDeniedError: the submitter may not run pipelines in the project.
        PolicyViolationError: the project is over its CPU- or GPU-hours quota.
    """
    project = project or platform.default_project
    if kind not in KINDS:
        raise InvalidInputError(f"job kind {kind!r} is unknown", hint=f"use one of {KINDS}")
    if target not in platform.settings.pipelines:
        raise NotFoundError(
            f"pipeline {target!r} is not one this home runs",
            hint="the operator declares them in the pipelines setting (ghaf pipelines available)",
        )
    _amount(cpus, "cpus", 1024)
    _amount(gpus, "gpus", 64)
    _priority(priority)
    platform.spine.authorizer.authorize(actor, "pipeline.run_start", f"pipeline:{target}", project)
    check_quota(platform, project, cpus=cpus, gpus=gpus, now=at)
    row = QueuedJobRow(
        id=new_id(),
        kind=kind,
        project=project,
        target=target,
        params=json.dumps(dict(params or {}), sort_keys=True),
        cpus=cpus,
        gpus=gpus,
        priority=priority,
        status="queued",
        submitted_by=actor.name,
        submitted_at=at or utcnow(),
        attempts=0,
    )
    session = current_session()
    session.add(row)
    session.flush()
    current_operation().details.update({"job": row.id, "priority": priority, "gpus": gpus})
    return _to_job(row)


def _serialize(session: Session) -> None:
    """Take the queue's lock for this transaction (SQLite's writers already hold one)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})


def _fair_share(session: Session) -> FairShare:
    rows = session.execute(select(FairSharePassRow)).scalars()
    passes = {row.project: row.pass_value for row in rows}
    return FairShare(passes, passes.pop(VIRTUAL_TIME, 0.0))


def _save_share(session: Session, share: FairShare, projects: Iterable[str]) -> None:
    for project, value in [(VIRTUAL_TIME, share.virtual_time)] + [
        (p, share.passes[p]) for p in projects
    ]:
        row = session.get(FairSharePassRow, project)
        if row is None:
            session.add(FairSharePassRow(project=project, pass_value=value))
        else:
            row.pass_value = value


def _weights_and_limits(session: Session) -> tuple[dict[str, float], dict[str, int]]:
    weights: dict[str, float] = {}
    limits: dict[str, int] = {}
    for row in session.execute(select(ProjectQuotaRow)).scalars():
        weights[row.project] = row.weight
        if row.max_concurrent is not None:
            limits[row.project] = row.max_concurrent
    return weights, limits


def _queued_by_project(session: Session) -> dict[str, list[QueuedJobRow]]:
    query = (
        select(QueuedJobRow)
        .where(QueuedJobRow.status == "queued")
        .order_by(QueuedJobRow.priority.desc(), QueuedJobRow.submitted_at, QueuedJobRow.id)
    )
    waiting: dict[str, list[QueuedJobRow]] = defaultdict(list)
    for row in session.execute(query).scalars():
        waiting[row.project].append(row)
    return waiting


def _running_counts(session: Session) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    query = select(QueuedJobRow.project).where(QueuedJobRow.status == "running")
    for project in session.execute(query).scalars():
        counts[project] += 1
    return counts


@governed("job.claim", resource="queue:{owner}", project=ALL_PROJECTS)
def claim_next(
    platform: Platform, actor: Actor, owner: str, *, at: datetime | None = None
) -> Job | None:
    """Claim the job fair share picks next for one executor slot of ``owner``; None when
    nothing waits or every project with work waiting is at its concurrent-jobs quota."""
    session = current_session()
    _serialize(session)
    waiting = _queued_by_project(session)
    weights, limits = _weights_and_limits(session)
    running = _running_counts(session)
    eligible = {
        p: weights.get(p, 1.0) for p in waiting if p not in limits or running.get(p, 0) < limits[p]
    }
    share = _fair_share(session)
    project = share.pick(eligible)
    if project is None:
        current_operation().details.update(
            {"claimed": None, "waiting": sum(map(len, waiting.values()))}
        )
        return None
    share.charge(project, eligible[project])
    _save_share(session, share, [project])
    row = waiting[project][0]
    now = at or utcnow()
    row.status, row.owner, row.run_by = "running", owner, actor.name
    row.claimed_at = row.heartbeat_at = now
    row.attempts += 1
    session.flush()
    current_operation().details.update({"claimed": row.id, "project": project})
    return _to_job(row)


@governed("job.finish", resource="job:{job_id}", project=ALL_PROJECTS)
def finish_job(
    platform: Platform,
    actor: Actor,
    job_id: str,
    owner: str,
    *,
    status: str,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    at: datetime | None = None,
) -> Job:
    """Record how a job ``owner`` ran ended (succeeded or failed).

    Raises:
        AlreadyExistsError: ``owner`` no longer holds the job (it was reclaimed, or
            cancelled): its end is not recorded over what happened since.
    """
    if status not in ("succeeded", "failed"):
        raise InvalidInputError(f"a job ends succeeded or failed, not {status!r}")
    session = current_session()
    row = session.get(QueuedJobRow, job_id)
    if row is None:
        raise NotFoundError(f"job {job_id} does not exist", hint="ghaf jobs list")
    if row.status != "running" or row.owner != owner:
        raise AlreadyExistsError(
            f"job {job_id} is no longer held by {owner} ({row.status})",
            hint="its slot was given back; what it did is not recorded as the job's end",
        )
    row.status, row.finished_at = status, at or utcnow()
    row.result = json.dumps(dict(result), sort_keys=True, default=str) if result else None
    row.error = error
    current_operation().details.update({"status": status, "project": row.project})
    return _to_job(row)


@governed("job.heartbeat", resource="queue:{owner}", project=ALL_PROJECTS)
def heartbeat(platform: Platform, actor: Actor, owner: str, *, at: datetime | None = None) -> int:
    """Mark ``owner``'s running jobs alive now; how many it holds."""
    session = current_session()
    rows = session.execute(
        select(QueuedJobRow).where(QueuedJobRow.owner == owner, QueuedJobRow.status == "running")
    ).scalars()
    now = at or utcnow()
    held = 0
    for row in rows:
        row.heartbeat_at = now
        held += 1
    current_operation().details.update({"held": held})
    return held


@governed("job.reclaim", resource="queue", project=ALL_PROJECTS)
def reclaim_jobs(platform: Platform, actor: Actor, orphans: Mapping[str, str]) -> list[str]:
    """Put running jobs whose owner is gone back in the queue (``orphans``: job id ->
    the owner found dead); a job claimed again meanwhile is left alone. The ids returned."""
    session = current_session()
    _serialize(session)
    back: list[str] = []
    for job_id, owner in sorted(orphans.items()):
        row = session.get(QueuedJobRow, job_id)
        if row is not None and row.status == "running" and row.owner == owner:
            row.status, row.owner, row.run_by = "queued", None, None
            row.claimed_at = row.heartbeat_at = None
            back.append(job_id)
    current_operation().details.update({"reclaimed": back, "owners": sorted(set(orphans.values()))})
    return back


def _held(platform: Platform, job_id: str, project: str) -> QueuedJobRow:
    row = current_session().get(QueuedJobRow, job_id)
    if row is None or row.project != project:
        raise NotFoundError(f"job {job_id} does not exist", hint="ghaf jobs list")
    return row


@governed("job.cancel", resource="job:{job_id}")
def cancel_job(platform: Platform, actor: Actor, job_id: str, *, project: str) -> Job:
    """Take a queued job out of the queue.

    Raises:
        NotFoundError: no such job in ``project``.
        AlreadyExistsError: the job is running or has ended.
    """
    row = _held(platform, job_id, project)
    if row.status != "queued":
        raise AlreadyExistsError(
            f"job {job_id} is {row.status}; only a queued job can be cancelled",
            hint="a running pipeline job stops with its run: ghaf pipelines cancel RUN",
        )
    row.status, row.finished_at, row.error = "cancelled", utcnow(), f"cancelled by {actor.name}"
    return _to_job(row)


@governed("job.priority", resource="job:{job_id}")
def set_priority(
    platform: Platform, actor: Actor, job_id: str, priority: int, *, project: str
) -> Job:
    """Change a queued job's priority (higher runs first among its project's jobs).

    Raises:
        InvalidInputError: the priority is out of range.
        NotFoundError: no such job in ``project``.
        AlreadyExistsError: the job is no longer queued.
    """
    _priority(priority)
    row = _held(platform, job_id, project)
    if row.status != "queued":
        raise AlreadyExistsError(
            f"job {job_id} is {row.status}; only a queued job's priority can change"
        )
    current_operation().details.update({"from": row.priority, "to": priority})
    row.priority = priority
    return _to_job(row)


def get_job(platform: Platform, job_id: str) -> Job:
    """The job ``job_id`` (a unique prefix of 8 or more characters will do).

    Raises:
        NotFoundError: no job (or several) match.
    """
    with platform.read_session() as session:
        rows = list(
            session.execute(
                select(QueuedJobRow).where(QueuedJobRow.id.startswith(job_id)).limit(2)
            ).scalars()
        )
        if len(rows) != 1 or len(job_id) < 8:
            raise NotFoundError(
                f"job {job_id!r} {'is ambiguous' if len(rows) > 1 else 'does not exist'}",
                hint="ghaf jobs list shows the jobs",
            )
        if rows[0].status != "queued":
            return _to_job(rows[0])
    return next(j for j in list_jobs(platform, statuses=("queued",)) if j.id == rows[0].id)


def job_projects(platform: Platform) -> list[str]:
    """The projects that have jobs, by name."""
    query = select(QueuedJobRow.project).distinct().order_by(QueuedJobRow.project)
    with platform.read_session() as session:
        return list(session.execute(query).scalars())


def list_jobs(
    platform: Platform,
    *,
    projects: Iterable[str] | None = None,
    statuses: Iterable[str] | None = None,
    limit: int = 200,
) -> list[Job]:
    """Jobs, queued ones first in the order they would be dispatched (``position``),
    then the others newest first; only those of ``projects`` when given."""
    wanted = set(statuses) if statuses is not None else set(STATUSES)
    mine = set(projects) if projects is not None else None
    with platform.read_session() as session:
        waiting = _queued_by_project(session)
        weights, _ = _weights_and_limits(session)
        order = dispatch_order(
            _fair_share(session), {p: len(rows) for p, rows in waiting.items()}, weights
        )
        queued: list[Job] = []
        cursor = dict.fromkeys(waiting, 0)
        for position, project in enumerate(order, start=1):
            row = waiting[project][cursor[project]]
            cursor[project] += 1
            if mine is None or project in mine:
                queued.append(_to_job(row, position))
        others: list[Job] = []
        rest = wanted - {"queued"}
        if rest:
            query = (
                select(QueuedJobRow)
                .where(QueuedJobRow.status.in_(sorted(rest)))
                .order_by(QueuedJobRow.submitted_at.desc())
                .limit(limit)
            )
            if mine is not None:
                query = query.where(QueuedJobRow.project.in_(sorted(mine)))
            others = [_to_job(row) for row in session.execute(query).scalars()]
    found = (queued if "queued" in wanted else []) + others
    return found[:limit]
