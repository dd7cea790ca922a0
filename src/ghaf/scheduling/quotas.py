"""Project quotas (CPU-hours and GPU-hours per rolling period, concurrent jobs, fair-share
weight): set by a home-wide project admin, checked when work is submitted.

A quota is home-wide governance: ``quota.set`` and ``quota.clear`` are authorized in
project ``'*'``, so only a role bound on every project counts (a project's own admin
cannot raise its project's quota). Usage is what the project's jobs *held*: wall time x
the CPUs and GPUs they requested (:func:`project_usage`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from ghaf.errors import InvalidInputError, NotFoundError, PolicyViolationError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.scheduling.tables import ProjectQuotaRow, QueuedJobRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

ALL_PROJECTS = "*"
DEFAULT_PERIOD_S = 30 * 86_400
"""A quota's period unless set: 30 days, rolling."""
MAX_PERIOD_S = 366 * 86_400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


@dataclass(frozen=True)
class Quota:
    """A project's limits; ``None`` means unlimited."""

    project: str
    cpu_hours: float | None
    gpu_hours: float | None
    period_s: int
    max_concurrent: int | None
    weight: float
    updated_by: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Usage:
    """What a project's jobs held since ``since``, and how many run now."""

    project: str
    since: datetime
    cpu_hours: float
    gpu_hours: float
    running: int


def parse_period(text: str | int) -> int:
    """Seconds from ``3600``, ``90m``, ``24h``, ``30d`` or ``4w``.

    Raises:
        InvalidInputError: not a duration, or outside 1 hour to 366 days.
    """
    value = str(text).strip().lower()
    scale = _UNITS.get(value[-1:], 0)
    try:
        seconds = float(value[:-1] if scale else value) * (scale or 1)
    except ValueError:
        raise InvalidInputError(
            f"period {text!r} is not a duration", hint="e.g. 24h, 30d or 4w"
        ) from None
    if not 3600 <= seconds <= MAX_PERIOD_S or math.isnan(seconds):
        raise InvalidInputError(
            f"period {text!r} is out of range", hint="use 1h to 366d (e.g. 30d)"
        )
    return int(seconds)


def _limit(value: float | None, field: str) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InvalidInputError(
            f"{field} must be a number >= 0, not {value!r}", hint=f"e.g. --{field} 100"
        )
    return value


def _to_quota(row: ProjectQuotaRow) -> Quota:
    return Quota(
        row.project,
        row.cpu_hours,
        row.gpu_hours,
        row.period_s,
        row.max_concurrent,
        row.weight,
        row.updated_by,
        row.updated_at,
    )


@governed("quota.set", resource="quota:{project}", project=ALL_PROJECTS)
def set_quota(
    platform: Platform,
    actor: Actor,
    project: str,
    *,
    cpu_hours: float | None = None,
    gpu_hours: float | None = None,
    period: str | int | None = None,
    max_concurrent: int | None = None,
    weight: float | None = None,
) -> Quota:
    """Set some of ``project``'s limits (those given; the others keep their values).

    Raises:
        InvalidInputError: a negative or non-finite limit, a weight not above 0, a bad
            period, fewer than one concurrent job.
    """
    _limit(cpu_hours, "cpu-hours")
    _limit(gpu_hours, "gpu-hours")
    if weight is not None and not (math.isfinite(weight) and 0 < weight <= 1000):
        raise InvalidInputError(
            f"weight must be above 0 and at most 1000, not {weight!r}", hint="e.g. --weight 3"
        )
    if max_concurrent is not None and not 1 <= max_concurrent <= 100_000:
        raise InvalidInputError(
            f"concurrent-jobs must be at least 1, not {max_concurrent}",
            hint="e.g. --concurrent-jobs 4 (ghaf quotas clear removes every limit)",
        )
    period_s = parse_period(period) if period is not None else None
    session = current_session()
    row = session.get(ProjectQuotaRow, project)
    if row is None:
        row = ProjectQuotaRow(project=project, period_s=DEFAULT_PERIOD_S, weight=1.0)
        session.add(row)
    changes = {
        "cpu_hours": cpu_hours,
        "gpu_hours": gpu_hours,
        "period_s": period_s,
        "max_concurrent": max_concurrent,
        "weight": weight,
    }
    for key, value in changes.items():
        if value is not None:
            setattr(row, key, value)
    row.updated_by, row.updated_at = actor.name, utcnow()
    session.flush()
    current_operation().details.update({k: v for k, v in changes.items() if v is not None})
    return _to_quota(row)


@governed("quota.clear", resource="quota:{project}", project=ALL_PROJECTS)
def clear_quota(platform: Platform, actor: Actor, project: str) -> Quota:
    """Remove ``project``'s limits (unlimited again, weight 1); what they were.

    Raises:
        NotFoundError: the project has no quota.
    """
    session = current_session()
    row = session.get(ProjectQuotaRow, project)
    if row is None:
        raise NotFoundError(f"project {project!r} has no quota", hint="ghaf quotas show")
    before = _to_quota(row)
    session.delete(row)
    return before


def get_quota(platform: Platform, project: str) -> Quota:
    """``project``'s quota, or the unlimited default (weight 1) when none is set."""
    with platform.read_session() as session:
        row = session.get(ProjectQuotaRow, project)
        if row is None:
            return Quota(project, None, None, DEFAULT_PERIOD_S, None, 1.0)
        return _to_quota(row)


def list_quotas(platform: Platform) -> list[Quota]:
    """Every quota that is set, by project."""
    with platform.read_session() as session:
        rows = session.execute(select(ProjectQuotaRow).order_by(ProjectQuotaRow.project))
        return [_to_quota(row) for row in rows.scalars()]


def quota_report(platform: Platform, project: str) -> dict[str, Any]:
    """``project``'s quota with what it used this period: ``{...quota, "usage": {...}}``."""
    quota = get_quota(platform, project)
    since = utcnow() - timedelta(seconds=quota.period_s)
    return {**asdict(quota), "usage": asdict(project_usage(platform, project, since))}


def project_usage(
    platform: Platform, project: str, since: datetime, *, now: datetime | None = None
) -> Usage:
    """CPU-hours and GPU-hours ``project``'s jobs held since ``since``: each job's time
    running within the window x the CPUs and GPUs it requested (a running job counts up
    to ``now``).

    This reads the queue's own records; the cost records of runs, steps and batch jobs
    (``ghaf cost``) are the place to read measured usage once they hold it.
    """
    now = now or utcnow()
    cpu = gpu = 0.0
    running = 0
    query = select(QueuedJobRow).where(
        QueuedJobRow.project == project, QueuedJobRow.claimed_at.is_not(None)
    )
    with platform.read_session() as session:
        for row in session.execute(query).scalars():
            if row.status == "running":
                running += 1
            claimed = row.claimed_at or now  # never None: the query's condition
            end = row.finished_at or (now if row.status == "running" else claimed)
            held = (min(end, now) - max(claimed, since)).total_seconds() / 3600
            if held > 0:
                cpu += held * row.cpus
                gpu += held * row.gpus
    return Usage(project, since, cpu, gpu, running)


def check_quota(
    platform: Platform,
    project: str,
    *,
    cpus: float,
    gpus: float,
    now: datetime | None = None,
) -> None:
    """Refuse work that would hold CPUs or GPUs ``project`` has used up this period.

    Raises:
        PolicyViolationError: naming the quota, the usage and the fix.
    """
    quota = get_quota(platform, project)
    if quota.cpu_hours is None and quota.gpu_hours is None:
        return
    now = now or utcnow()
    used = project_usage(platform, project, now - timedelta(seconds=quota.period_s), now=now)
    for kind, asked, limit, spent in (
        ("GPU", gpus, quota.gpu_hours, used.gpu_hours),
        ("CPU", cpus, quota.cpu_hours, used.cpu_hours),
    ):
        if asked > 0 and limit is not None and spent >= limit:
            raise PolicyViolationError(
                f"project {project!r} is over its {kind}-hours quota: {spent:.2f} of "
                f"{limit:g} {kind}-hours used in the last {_period(quota.period_s)}",
                hint=f"wait until earlier work leaves the period, submit without {kind}s, "
                f"or ask a home-wide project admin to raise it: ghaf quotas set {project} "
                f"--{kind.lower()}-hours N",
            )


def _period(seconds: int) -> str:
    days, rest = divmod(seconds, 86_400)
    return f"{days} days" if not rest else f"{seconds / 3600:g} hours"
