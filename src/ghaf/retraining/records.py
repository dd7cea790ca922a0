"""Records of the closed loop as its services return them: a deployment's retraining
policy, and each run of the loop with where it stands."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ghaf.experiments.rollout import RolloutPlan, parse_plan
from ghaf.pipelines.triggers import Limits
from ghaf.retraining.tables import RetrainPolicyRow, RetrainRunRow

DRIFT, QUALITY = "drift.detected", "model.quality"
SUBJECTS = (DRIFT, QUALITY)
"""The alerts (and the bus subjects the monitors publish them on) a policy may act on."""
SKIPPED, TRAINING, FAILED = "skipped", "training", "failed"
AWAITING, CANARY, PROMOTED, ROLLED_BACK = "awaiting_approval", "canary", "promoted", "rolled_back"
ACTIVE = (TRAINING, AWAITING, CANARY)
"""A run in one of these holds its deployment: another alert does not start a second."""
FINAL = (SKIPPED, FAILED, PROMOTED, ROLLED_BACK)


@dataclass(frozen=True)
class RetrainPolicy:
    """What an alert on ``deployment`` sets going: ``pipeline`` (``MODULE:ATTRIBUTE``, one
    of ``settings.pipelines``) with ``params``, at most once per ``cooldown_s`` and
    ``max_runs`` per ``window_s``; its registered candidate then ramps by ``plan``."""

    deployment: str
    project: str
    pipeline: str
    params: dict[str, Any]
    plan: dict[str, Any]
    alerts: tuple[str, ...]
    cooldown_s: float
    max_runs: int | None
    window_s: float
    enabled: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime

    @property
    def limits(self) -> Limits:
        return Limits(cooldown_s=self.cooldown_s, max_runs=self.max_runs, window_s=self.window_s)

    @property
    def rollout(self) -> RolloutPlan:
        return parse_plan(self.plan, f"the retraining plan of {self.deployment}")

    @property
    def trigger_key(self) -> str:
        """One key per deployment, whichever alert fired: the cooldown is the deployment's."""
        return f"retrain:{self.project}:{self.deployment}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetrainRun:
    """One alert the loop acted on, and how far it got (``status``: skipped, training,
    failed, awaiting_approval, canary, promoted, rolled_back; ``reason`` says why)."""

    id: int
    deployment: str
    project: str
    event: str
    subject: str
    model_version: str | None
    incident: str | None
    trigger: str
    status: str
    reason: str
    until: datetime | None
    pipeline_run: str | None
    candidate: str | None
    champion: str | None
    canary: str | None
    fired_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_policy(row: RetrainPolicyRow) -> RetrainPolicy:
    return RetrainPolicy(
        deployment=row.deployment,
        project=row.project,
        pipeline=row.pipeline,
        params=json.loads(row.params),
        plan=json.loads(row.plan),
        alerts=tuple(json.loads(row.alerts)),
        cooldown_s=row.cooldown_s,
        max_runs=row.max_runs,
        window_s=row.window_s,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def to_run(row: RetrainRunRow) -> RetrainRun:
    return RetrainRun(
        id=row.id,
        deployment=row.deployment,
        project=row.project,
        event=row.event,
        subject=row.subject,
        model_version=row.model_version,
        incident=row.incident,
        trigger=row.trigger,
        status=row.status,
        reason=row.reason,
        until=row.until,
        pipeline_run=row.pipeline_run,
        candidate=row.candidate,
        champion=row.champion,
        canary=row.canary,
        fired_at=row.fired_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
    )
