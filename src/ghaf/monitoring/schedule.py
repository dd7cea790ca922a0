"""Monitor schedules: which deployment, how often, over what window, against what
reference (``monitoring.schedule``), and which of them are due."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.monitoring.records import MonitorOptions, MonitorSchedule, schedule_record
from ghaf.monitoring.tables import MonitorScheduleRow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed

MIN_SECONDS = 5
SETTLE_S = 2.0
"""How long after a window ends its run waits, so the log's last writes are on disk (the
serving logger flushes every 0.5 s)."""
MAX_BACKLOG = 24
"""Windows a monitor that fell behind catches up one run at a time; further behind, it
skips to the latest whole window (and says how many it skipped)."""
MAX_INTERVAL_S = 7 * 86_400
MAX_WINDOW_S = 31 * 86_400
_MISSING_HINT = "ghaf monitor schedule DEPLOYMENT --every 5m --window 1h"


def default_log_dir(platform: Platform) -> Path:
    """Where ``ghaf serve`` logs are read unless a schedule says: ``HOME/predictions``."""
    return Path(platform.settings.home) / "predictions"


def parse_duration(text: str | int | float, what: str) -> int:
    """Seconds from ``90``, ``90s``, ``5m``, ``2h`` or ``1d``.

    Raises:
        InvalidInputError: naming ``what`` and the accepted forms.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        return int(text)
    value = str(text).strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    scale = units.get(value[-1:], 0)
    number = value[:-1] if scale else value
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        raise InvalidInputError(
            f"{what} {text!r} is not a duration", hint="e.g. 90s, 5m, 2h or 1d"
        ) from None
    return int(seconds)


def _bounded(seconds: int, what: str, top: int) -> int:
    if not MIN_SECONDS <= seconds <= top:
        raise InvalidInputError(
            f"{what} of {seconds} s is out of range",
            hint=f"use {MIN_SECONDS} s to {top // 86_400} days",
        )
    return seconds


def deployment_models(platform: Platform, deployment: str, project: str) -> list[str]:
    """The model names the deployment record serves, if it is ``project``'s.

    Raises:
        NotFoundError: no such deployment in ``project`` (another project's reads the same).
    """
    from ghaf.serving.deployments import get_deployment

    missing = NotFoundError(
        f"deployment {deployment!r} does not exist in project {project!r}",
        hint="serve a registered model first (ghaf serve MODEL@ALIAS records the deployment)",
    )
    try:
        record = get_deployment(platform, deployment)
    except NotFoundError:
        raise missing from None
    if record.project != project:
        raise missing
    names = [ref.rpartition(":")[0] for ref in record.models]
    if record.shadow:
        names.append(record.shadow.rpartition(":")[0])
    return list(dict.fromkeys(names))


def _pinned_reference(platform: Platform, reference: str, project: str) -> str:
    from ghaf.monitoring.store import get_profile

    if not reference.startswith("profile:"):
        raise InvalidInputError(
            f"reference {reference!r} is not a stored profile",
            hint="store one (ghaf monitor profile DATA --name NAME) and pass profile:NAME[@V]",
        )
    stored = get_profile(platform, reference.removeprefix("profile:"), project=project)
    return f"profile:{stored.name}@{stored.version}"


@governed("monitoring.schedule", resource="monitor:{deployment}")
def schedule_monitor(
    platform: Platform,
    actor: Actor,
    deployment: str,
    *,
    every: str | int = 300,
    window: str | int | None = None,
    reference: str | None = None,
    log_dir: Path | str | None = None,
    options: MonitorOptions | Mapping[str, Any] | None = None,
    enabled: bool = True,
    start_at: datetime | None = None,
    project: str | None = None,
) -> MonitorSchedule:
    """Create or replace the monitor of ``deployment``: it runs every ``every`` over the
    last ``window`` (default: ``every``) of the prediction log in ``log_dir`` (default
    ``HOME/predictions``), against ``reference`` (``profile:NAME[@V]``, pinned to its
    version) or else each model version's training profile. First due at ``start_at``
    (default: now).

    Raises:
        NotFoundError: no deployment ``deployment`` in the project, or no such profile.
        InvalidInputError: an interval, window or option out of range.
    """
    here = current_operation().project
    session = current_session()
    interval_s = _bounded(parse_duration(every, "--every"), "the interval", MAX_INTERVAL_S)
    window_s = _bounded(
        parse_duration(window if window is not None else interval_s, "--window"),
        "the window",
        MAX_WINDOW_S,
    )
    chosen = (
        options
        if isinstance(options, MonitorOptions)
        else MonitorOptions.from_dict(dict(options or {}))
    )
    models = deployment_models(platform, deployment, here)
    pinned = _pinned_reference(platform, reference, here) if reference else None
    directory = str(Path(log_dir) if log_dir is not None else default_log_dir(platform))
    if len(directory) > 1024:
        raise InvalidInputError(
            "the log directory path is too long", hint="at most 1024 characters"
        )
    now = utcnow()
    row = session.execute(
        select(MonitorScheduleRow).where(
            MonitorScheduleRow.project == here, MonitorScheduleRow.deployment == deployment
        )
    ).scalar_one_or_none()
    if row is None:
        row = MonitorScheduleRow(
            project=here, deployment=deployment, created_by=actor.name, created_at=now
        )
        session.add(row)
    row.model = models[0]
    row.reference = pinned
    row.log_dir = directory
    row.interval_s = interval_s
    row.window_s = window_s
    row.options = json.dumps(chosen.to_dict(), sort_keys=True)
    row.enabled = enabled
    row.next_run_at = start_at or now
    row.updated_by = actor.name
    row.updated_at = now
    session.flush()
    current_operation().details.update(
        {"every_s": interval_s, "window_s": window_s, "reference": pinned, "enabled": enabled}
    )
    return schedule_record(row)


def get_schedule(platform: Platform, deployment: str) -> MonitorSchedule:
    """The monitor of ``deployment`` in ``platform``'s project.

    Raises:
        NotFoundError: none is scheduled.
    """
    with platform.read_session() as session:
        row = session.execute(
            select(MonitorScheduleRow).where(
                MonitorScheduleRow.project == platform.default_project,
                MonitorScheduleRow.deployment == deployment,
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFoundError(
                f"no monitor is scheduled for deployment {deployment!r}", hint=_MISSING_HINT
            )
        return schedule_record(row)


def list_schedules(
    platform: Platform, *, projects: Collection[str] | None = None
) -> list[MonitorSchedule]:
    """Monitor schedules (of ``projects``; default: ``platform``'s project), by deployment."""
    wanted = list(projects) if projects is not None else [platform.default_project]
    with platform.read_session() as session:
        rows = session.execute(
            select(MonitorScheduleRow)
            .where(MonitorScheduleRow.project.in_(wanted))
            .order_by(MonitorScheduleRow.project, MonitorScheduleRow.deployment)
        ).scalars()
        return [schedule_record(row) for row in rows]


def due_schedules(platform: Platform, now: datetime | None = None) -> list[MonitorSchedule]:
    """The enabled schedules of ``platform``'s project whose next window ended at least
    :data:`SETTLE_S` before ``now``, most overdue first."""
    ready = (now or utcnow()) - timedelta(seconds=SETTLE_S)
    with platform.read_session() as session:
        rows = session.execute(
            select(MonitorScheduleRow)
            .where(MonitorScheduleRow.project == platform.default_project)
            .where(MonitorScheduleRow.enabled.is_(True), MonitorScheduleRow.next_run_at <= ready)
            .order_by(MonitorScheduleRow.next_run_at)
        ).scalars()
        return [schedule_record(row) for row in rows]


def next_due(platform: Platform) -> datetime | None:
    """When the next enabled schedule of ``platform``'s project is due (None: none)."""
    with platform.read_session() as session:
        return session.execute(
            select(MonitorScheduleRow.next_run_at)
            .where(MonitorScheduleRow.project == platform.default_project)
            .where(MonitorScheduleRow.enabled.is_(True))
            .order_by(MonitorScheduleRow.next_run_at)
            .limit(1)
        ).scalar_one_or_none()


def schedule_projects(platform: Platform) -> list[str]:
    """The projects that hold a monitor schedule."""
    with platform.read_session() as session:
        return list(session.execute(select(MonitorScheduleRow.project).distinct()).scalars())


def due_window_end(schedule: MonitorSchedule, now: datetime) -> tuple[datetime, int]:
    """(end of the window a due run covers, windows skipped): windows follow each other
    (each ends one interval after the last), so every logged prediction falls in one;
    more than :data:`MAX_BACKLOG` windows behind, the run skips to the latest whole one."""
    ready = now - timedelta(seconds=SETTLE_S)
    behind = int((ready - schedule.next_run_at).total_seconds() // schedule.interval_s)
    if behind <= MAX_BACKLOG:
        return schedule.next_run_at, 0
    return schedule.next_run_at + timedelta(seconds=behind * schedule.interval_s), behind
