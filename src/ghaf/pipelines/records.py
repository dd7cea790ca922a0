"""Recording pipeline and step runs (governed writes) and reading them back."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from ghaf.cost.base import Usage
from ghaf.cost.store import write_usage
from ghaf.errors import AlreadyExistsError, NotFoundError
from ghaf.lineage import link
from ghaf.metadata.base import utcnow
from ghaf.pipelines.base import PipelineRun, StepRun
from ghaf.pipelines.tables import PipelineRunRow, StepRunRow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed


def _link(src: str, dst: str, relation: str) -> None:
    link(src, dst, relation)


@governed("pipeline.run_start", resource="pipeline:{pipeline}")
def start_run(
    platform: Platform,
    actor: Actor,
    pipeline: str,
    *,
    run_id: str,
    executor: str,
    trigger: str,
    params: dict[str, Any],
    steps: list[dict[str, Any]],
    project: str | None = None,
) -> None:
    """Record a new run and its steps (pending)."""
    session = current_session()
    now = utcnow()
    session.add(
        PipelineRunRow(
            id=run_id,
            pipeline=pipeline,
            project=project or platform.default_project,
            status="running",
            executor=executor,
            trigger=trigger,
            params=json.dumps(params, sort_keys=True),
            created_by=actor.name,
            started_at=now,
        )
    )
    session.flush()
    for spec in steps:
        session.add(
            StepRunRow(
                id=spec["id"],
                run_id=run_id,
                step=spec["step"],
                status="pending",
                attempts=0,
                cache_key=spec["cache_key"],
                code_digest=spec["code_digest"],
                inputs=json.dumps(spec.get("inputs", {}), sort_keys=True),
                resources=json.dumps(spec.get("resources", {}), sort_keys=True),
            )
        )
    current_operation().details.update({"run": run_id, "trigger": trigger})


@governed("pipeline.step_update", resource="pipeline_run:{run_id}")
def update_step(
    platform: Platform,
    actor: Actor,
    run_id: str,
    step_run_id: str,
    *,
    status: str,
    lineage: list[tuple[str, str]] | None = None,
    fields: dict[str, Any] | None = None,
    usage: Usage | None = None,
) -> None:
    """Move a step run to ``status``; on completion its lineage edges are recorded, and
    with ``usage`` what the attempt held and used (its cost record)."""
    session = current_session()
    row = session.get(StepRunRow, step_run_id)
    if row is None or row.run_id != run_id:
        raise NotFoundError(f"step run {step_run_id} of run {run_id} does not exist")
    row.status = status
    fields = dict(fields or {})
    if "inputs" in fields:
        fields["inputs"] = json.dumps(fields["inputs"], sort_keys=True)
    for key, value in fields.items():
        setattr(row, key, value)
    for src, relation in lineage or []:
        _link(src, f"run:{step_run_id}", relation)
    if usage is not None:
        write_usage(usage)
    current_operation().details.update({"step": row.step, "status": status})


@governed("pipeline.run_finish", resource="pipeline_run:{run_id}")
def finish_run(
    platform: Platform, actor: Actor, run_id: str, *, status: str, error: str | None = None
) -> None:
    """Close a run: its final status; steps still pending become skipped, running cancelled.

    A run ends once: closing it again with the status it ended with changes nothing (a
    runner recording the cancel a server recorded first), with another is refused (a
    cancel racing a success does not turn it into cancelled).

    Raises:
        NotFoundError: no run ``run_id``.
        AlreadyExistsError: the run already ended with another status.
    """
    session = current_session()
    row = session.get(PipelineRunRow, run_id)
    if row is None:
        raise NotFoundError(f"pipeline run {run_id} does not exist")
    if row.status != "running":
        if row.status != status:
            raise AlreadyExistsError(
                f"pipeline run {run_id} has already ended ({row.status})",
                hint="a run ends once; ghaf pipelines show says how it ended",
            )
        current_operation().details.update({"status": status, "unchanged": True})
        return
    now = utcnow()
    row.status, row.error, row.finished_at = status, error, now
    row.duration_s = (now - row.started_at).total_seconds()
    steps = session.execute(select(StepRunRow).where(StepRunRow.run_id == run_id)).scalars()
    for step_row in steps:
        if step_row.status == "pending":
            step_row.status = "skipped"
        elif step_row.status == "running":
            step_row.status = "cancelled"
            step_row.finished_at = now
    current_operation().details.update({"status": status})


def _step(row: StepRunRow) -> StepRun:
    return StepRun(
        id=row.id,
        run_id=row.run_id,
        step=row.step,
        status=row.status,
        attempts=row.attempts,
        cache_key=row.cache_key,
        output_digest=row.output_digest,
        output_kind=row.output_kind,
        log_digest=row.log_digest,
        error=row.error,
        cpu_s=row.cpu_s,
        max_rss_mb=row.max_rss_mb,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
    )


def _run(row: PipelineRunRow, steps: list[StepRunRow]) -> PipelineRun:
    return PipelineRun(
        id=row.id,
        pipeline=row.pipeline,
        project=row.project,
        status=row.status,
        executor=row.executor,
        trigger=row.trigger,
        params=json.loads(row.params),
        error=row.error,
        created_by=row.created_by,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        steps=tuple(_step(s) for s in steps),
    )


def get_run(platform: Platform, run_id: str) -> PipelineRun:
    """A run and its steps; ``run_id`` may be a unique prefix.

    Raises:
        NotFoundError: no run (or several) match.
    """
    with platform.read_session() as session:
        rows = list(
            session.execute(
                select(PipelineRunRow).where(PipelineRunRow.id.startswith(run_id)).limit(2)
            ).scalars()
        )
        if len(rows) != 1:
            raise NotFoundError(
                f"pipeline run {run_id!r} {'is ambiguous' if rows else 'does not exist'}",
                hint="ghaf pipelines list shows the runs",
            )
        steps = session.execute(
            select(StepRunRow)
            .where(StepRunRow.run_id == rows[0].id)
            .order_by(StepRunRow.started_at.is_(None), StepRunRow.started_at)
        ).scalars()
        return _run(rows[0], list(steps))


def _newest(
    query: Select[PipelineRunRow], projects: Iterable[str] | None, limit: int
) -> Select[PipelineRunRow]:
    if projects is not None:
        query = query.where(PipelineRunRow.project.in_(list(projects)))
    return query.order_by(PipelineRunRow.started_at.desc()).limit(limit)


def list_runs(
    platform: Platform,
    pipeline: str | None = None,
    limit: int = 50,
    *,
    projects: Iterable[str] | None = None,
) -> list[PipelineRun]:
    """Recent runs, newest first (without their steps); only those of ``projects`` when
    given (an empty list finds none)."""
    query = select(PipelineRunRow)
    if pipeline is not None:
        query = query.where(PipelineRunRow.pipeline == pipeline)
    with platform.read_session() as session:
        rows = session.execute(_newest(query, projects, limit)).scalars()
        return [_run(row, []) for row in rows]


def fired_runs(
    platform: Platform,
    trigger: str | None = None,
    limit: int = 50,
    *,
    pipeline: str | None = None,
    projects: Iterable[str] | None = None,
) -> list[PipelineRun]:
    """Runs that triggers started (all triggers, or the one keyed ``trigger``), newest
    first; only those of ``pipeline`` and of ``projects`` when given."""
    query = select(PipelineRunRow)
    if trigger is None:
        query = query.where(PipelineRunRow.trigger != "manual")
    else:
        query = query.where(PipelineRunRow.trigger == trigger)
    if pipeline is not None:
        query = query.where(PipelineRunRow.pipeline == pipeline)
    with platform.read_session() as session:
        rows = session.execute(_newest(query, projects, limit)).scalars()
        return [_run(row, []) for row in rows]


def run_projects(platform: Platform) -> list[str]:
    """The projects that have pipeline runs, by name."""
    query = select(PipelineRunRow.project).distinct().order_by(PipelineRunRow.project)
    with platform.read_session() as session:
        return list(session.execute(query).scalars())


def find_cached(platform: Platform, step: str, cache_key: str) -> StepRun | None:
    """The latest successful step run with this cache key whose output still exists,
    among runs of ``platform``'s project (another project's output is not reused, nor
    linked to in lineage)."""
    query = (
        select(StepRunRow)
        .join(PipelineRunRow, PipelineRunRow.id == StepRunRow.run_id)
        .where(
            PipelineRunRow.project == platform.default_project,
            StepRunRow.cache_key == cache_key,
            StepRunRow.step == step,
            StepRunRow.status.in_(("succeeded", "cached")),
            StepRunRow.output_digest.is_not(None),
        )
        .order_by(StepRunRow.finished_at.desc())
        .limit(1)
    )
    with platform.read_session() as session:
        row = session.execute(query).scalars().first()
    if row is None or row.output_digest is None:
        return None
    return _step(row) if platform.artifacts.exists(row.output_digest) else None


def runs_since(platform: Platform, trigger: str, since: datetime) -> list[datetime]:
    """Start times of runs fired by ``trigger`` since ``since`` (for cooldowns and rates)."""
    query = select(PipelineRunRow.started_at).where(
        PipelineRunRow.trigger == trigger, PipelineRunRow.started_at >= since
    )
    with platform.read_session() as session:
        return list(session.execute(query).scalars())
