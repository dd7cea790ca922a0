"""The live loop: one pass over every project of a home runs the monitors that are due,
evaluates the scheduled SLOs and moves the closed loop (retraining runs, their canaries).

``ghaf monitor run --loop`` runs it in a terminal; ``ghaf server`` runs it in the
background (:mod:`ghaf.server.live`), in one of its worker processes at a time. Everything
it reads and writes is in the metadata database, so a loop that stops and starts again,
here or in another process, picks up where the last one left off: monitors and SLOs by
their due times, retraining from the monitors' stored breaches (each acted on once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import select

from ghaf.errors import GhafError, PermissionDeniedError
from ghaf.logs import get_logger
from ghaf.metadata.base import utcnow
from ghaf.monitoring.records import MonitorRun
from ghaf.platform import Platform
from ghaf.retraining.records import RetrainRun
from ghaf.security.identity import Actor
from ghaf.slo.schedule import SLOPass

_log = get_logger(__name__)


@dataclass
class LivePass:
    """What one pass did, per kind of work (each a project's record)."""

    at: datetime
    monitors: list[MonitorRun] = field(default_factory=list)
    slos: list[tuple[str, SLOPass]] = field(default_factory=list)
    retraining: list[RetrainRun] = field(default_factory=list)
    shipped: int = 0
    retention: int | None = None
    """The retention run this pass made (its id), if it was due."""
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "monitors": [r.to_dict() for r in self.monitors],
            "slos": [{"project": p, **s.to_dict()} for p, s in self.slos],
            "retraining": [r.id for r in self.retraining],
            "shipped": self.shipped,
            "retention": self.retention,
            "errors": list(self.errors),
        }


def live_projects(platform: Platform) -> list[str]:
    """Projects with a monitor schedule, a scheduled SLO or a retraining policy."""
    from ghaf.monitoring.tables import MonitorScheduleRow
    from ghaf.retraining.tables import RetrainPolicyRow
    from ghaf.slo.tables import SLOScrapeRow

    found: set[str] = set()
    with platform.read_session() as session:
        for column in (MonitorScheduleRow.project, SLOScrapeRow.project, RetrainPolicyRow.project):
            found.update(session.execute(select(column).distinct()).scalars())
    return sorted(found)


class LiveLoop:
    """Passes of the live loop over ``projects`` (default: every live project, looked up
    at each pass) as ``actor``; ``retrain=False`` leaves breaches to people. With
    ``home_chores`` (the server's loop) a pass also ships the audit trail to the
    configured sinks and runs retention when it is due (``retention.run_every_hours``)."""

    def __init__(
        self,
        platform: Platform,
        actor: Actor,
        *,
        projects: list[str] | None = None,
        retrain: bool = True,
        home_chores: bool = False,
    ) -> None:
        self.platform, self.actor = platform, actor
        self.projects, self.retrain = projects, retrain
        self.home_chores = home_chores
        self._retrain_loops: dict[str, Any] = {}

    def close(self) -> None:
        for loop in self._retrain_loops.values():
            loop.close()
        self._retrain_loops.clear()

    def __enter__(self) -> LiveLoop:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def tick(self, now: datetime | None = None) -> LivePass:
        """One pass at ``now`` (default: the current time). A project whose work fails is
        logged and named in ``errors``; the other projects still run. A refusal of the
        loop's actor is raised (the loop cannot do its job)."""
        moment = now or utcnow()
        done = LivePass(moment)
        for project in self.projects or live_projects(self.platform):
            try:
                self._project_pass(project, moment, done)
            except PermissionDeniedError:
                raise
            except GhafError as exc:
                _log.warning("live loop pass failed", project=project, error=exc.headline)
                done.errors.append(f"{project}: {exc.headline}")
        if self.home_chores:
            self._chores(moment, done)
        return done

    def _chores(self, moment: datetime, done: LivePass) -> None:
        """Home-wide work: audit shipping (cheap when nothing is new), retention when due."""
        settings = self.platform.settings
        try:
            if settings.audit_shipping.sinks:
                from ghaf.shipping.shipper import ship_once

                done.shipped = ship_once(self.platform, self.actor, now=moment).shipped
            every = settings.retention.run_every_hours
            if every is not None and self._retention_due(moment, every):
                from ghaf.privacy import run_retention

                run_retention(self.platform, self.actor, now=moment)
                done.retention = self._last_retention()[0]
        except PermissionDeniedError:
            raise
        except GhafError as exc:
            _log.warning("live loop chore failed", error=exc.headline)
            done.errors.append(f"home: {exc.headline}")

    def _last_retention(self) -> tuple[int | None, datetime | None]:
        from ghaf.privacy import list_retention_runs

        runs = [r for r in list_retention_runs(self.platform, limit=20) if not r["dry_run"]]
        if not runs:
            return None, None
        return int(runs[0]["id"]), datetime.fromisoformat(runs[0]["ran_at"])

    def _retention_due(self, moment: datetime, every_hours: int) -> bool:
        _, last = self._last_retention()
        return last is None or (moment - last).total_seconds() >= every_hours * 3600

    def _project_pass(self, project: str, moment: datetime, done: LivePass) -> None:
        from ghaf.monitoring.monitors import run_due_monitors
        from ghaf.slo.schedule import run_due_slos

        platform = self.platform.in_project(project)
        done.monitors += run_due_monitors(platform, self.actor, now=moment)
        done.slos += [(project, p) for p in run_due_slos(platform, self.actor, now=moment)]
        if self.retrain:
            done.retraining += self._retrain_loop(project, platform).tick(moment)

    def _retrain_loop(self, project: str, platform: Platform) -> Any:
        from ghaf.retraining import RetrainLoop

        if project not in self._retrain_loops:
            self._retrain_loops[project] = RetrainLoop(platform, self.actor)
        return self._retrain_loops[project]
