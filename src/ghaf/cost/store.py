"""Stored resource usage: written inside the operation that ends the work (a run's
``run.end``, a step's ``pipeline.step_update``) or on its own (``usage.record``: a batch
job, a serving segment, an external job's report), read back by project and time.

The project and the user of a record are the operation's: a caller names neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from ghaf.cost.base import StoredUsage, Usage
from ghaf.cost.tables import ResourceUsageRow
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

_log = get_logger(__name__)


def write_usage(usage: Usage, *, project: str | None = None) -> None:
    """Store ``usage`` in the governed operation this runs inside (replacing a record of
    the same kind and ref), in ``project`` (default: the operation's), by its actor.

    Raises:
        SpineBypassError: outside a governed operation.
    """
    operation = current_operation()
    session = current_session()
    row = session.execute(
        select(ResourceUsageRow).where(
            ResourceUsageRow.kind == usage.kind, ResourceUsageRow.ref == usage.ref
        )
    ).scalar_one_or_none()
    if row is None:
        row = ResourceUsageRow(kind=usage.kind, ref=usage.ref)
        session.add(row)
    row.project = project or operation.project
    row.user = operation.actor.name
    row.model, row.deployment = usage.model, usage.deployment
    row.parent, row.within = usage.parent, usage.within
    row.started_at, row.ended_at, row.wall_s = usage.started_at, usage.ended_at, usage.wall_s
    row.cpu_s, row.cpu_request = usage.cpu_s, usage.cpu_request
    row.memory_peak_gb, row.memory_gb_hours = usage.memory_peak_gb, usage.memory_gb_hours
    row.memory_request_gb = usage.memory_request_gb
    row.gpu_class, row.gpu_s, row.gpu_request = usage.gpu_class, usage.gpu_s, usage.gpu_request
    row.replicas, row.predictions = usage.replicas, usage.predictions
    row.labels = json.dumps(usage.labels, sort_keys=True)
    row.recorded_at = utcnow()
    session.flush()
    operation.details["usage"] = usage.node


@governed("usage.record", resource="usage:{usage.kind}:{usage.ref}")
def record_usage(platform: Platform, actor: Actor, usage: Usage) -> StoredUsage:
    """Record what a batch job, a serving segment or an external job held and used, in
    the platform's project."""
    write_usage(usage)
    return StoredUsage(usage, platform.default_project, actor.name, utcnow())


def record_quietly(platform: Platform, actor: Actor, usage: Usage) -> None:
    """:func:`record_usage`, logging instead of raising: metering never fails the work it
    measures (a refusal is still audited by the spine)."""
    try:
        record_usage(platform, actor, usage)
    except Exception as exc:  # noqa: BLE001 - the work succeeded; its meter reading is lost
        _log.warning("usage not recorded", usage=usage.node, error=str(exc))


def _stored(row: ResourceUsageRow) -> StoredUsage:
    usage = Usage(
        kind=row.kind,
        ref=row.ref,
        started_at=row.started_at,
        ended_at=row.ended_at,
        wall_s=row.wall_s,
        cpu_s=row.cpu_s,
        cpu_request=row.cpu_request,
        memory_peak_gb=row.memory_peak_gb,
        memory_gb_hours=row.memory_gb_hours,
        memory_request_gb=row.memory_request_gb,
        gpu_class=row.gpu_class,
        gpu_s=row.gpu_s,
        gpu_request=row.gpu_request,
        replicas=row.replicas,
        predictions=row.predictions,
        model=row.model,
        deployment=row.deployment,
        parent=row.parent,
        within=row.within,
        labels=json.loads(row.labels),
    )
    return StoredUsage(usage, row.project, row.user, row.recorded_at)


def list_usage(
    platform: Platform,
    *,
    projects: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    kind: str | None = None,
    ref: str | None = None,
    parent: str | None = None,
    deployment: str | None = None,
) -> list[StoredUsage]:
    """Usage records that ended in ``[since, until)``, of ``projects`` when given (an
    empty list finds none), of one kind, ref, parent or deployment when given; oldest
    first."""
    query = select(ResourceUsageRow)
    if projects is not None:
        query = query.where(ResourceUsageRow.project.in_(list(projects)))
    if since is not None:
        query = query.where(ResourceUsageRow.ended_at >= since)
    if until is not None:
        query = query.where(ResourceUsageRow.ended_at < until)
    if kind is not None:
        query = query.where(ResourceUsageRow.kind == kind)
    if ref is not None:
        query = query.where(ResourceUsageRow.ref == ref)
    if parent is not None:
        query = query.where(ResourceUsageRow.parent == parent)
    if deployment is not None:
        query = query.where(ResourceUsageRow.deployment == deployment)
    query = query.order_by(ResourceUsageRow.ended_at, ResourceUsageRow.id)
    with platform.read_session() as session:
        return [_stored(row) for row in session.execute(query).scalars()]


def usage_projects(platform: Platform) -> list[str]:
    """The projects that have usage records, by name."""
    query = select(ResourceUsageRow.project).distinct().order_by(ResourceUsageRow.project)
    with platform.read_session() as session:
        return list(session.execute(query).scalars())


@dataclass(frozen=True)
class ProjectUsage:
    """A project's held resources since a time (what quotas count): max(request, usage)."""

    cpu_hours: float
    gpu_hours: float
    memory_gb_hours: float
    records: int


def project_usage(platform: Platform, project: str, since: datetime) -> ProjectUsage:
    """What ``project``'s work held since ``since``, each resource as max(request, usage)
    hours (records inside another record counted once)."""
    from ghaf.cost.prices import Quantities

    found = [s for s in list_usage(platform, projects=[project], since=since) if not s.usage.within]
    quantities = [Quantities.of(s.usage) for s in found]
    return ProjectUsage(
        cpu_hours=sum(q.cpu_billed for q in quantities),
        gpu_hours=sum(q.gpu_billed for q in quantities),
        memory_gb_hours=sum(q.memory_billed for q in quantities),
        records=len(found),
    )
