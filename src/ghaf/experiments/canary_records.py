"""Canary records: a canary and each decision on it, as the services return them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ghaf.errors import InvalidInputError
from ghaf.experiments.rollout import RolloutPlan, parse_plan
from ghaf.experiments.tables import CanaryDecisionRow, CanaryRow

RUNNING, PAUSED, AWAITING = "running", "paused", "awaiting_approval"
PROMOTED, ROLLED_BACK = "promoted", "rolled_back"
ACTIVE = (RUNNING, PAUSED, AWAITING)
"""States in which the canary holds traffic and the evaluator looks at it."""
FINAL = (PROMOTED, ROLLED_BACK)
"""Nothing moves a canary out of these: start a new one."""
ACTIONS = (
    "start", "advance", "hold", "pause", "rollback", "promote", "await_approval",
    "resume",
)  # fmt: skip
"""What a decision did. ``hold`` keeps the step; ``pause`` stops the ramp until a person
resumes it; ``rollback`` and ``promote`` end the canary."""
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class Canary:
    """A candidate version ramped against the champion on a deployment: its plan, where
    the ramp is (``step`` index, ``weight`` percent), its state and why."""

    name: str
    project: str
    deployment: str
    champion: str
    candidate: str
    plan: dict[str, Any]
    status: str
    step: int
    weight: float
    reason: str | None
    revision: int
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    step_started_at: datetime
    finished_at: datetime | None

    @property
    def rollout(self) -> RolloutPlan:
        return parse_plan(self.plan, f"canary {self.name}'s plan")

    @property
    def model(self) -> str:
        return self.champion.rpartition(":")[0]

    def weights(self, weight: float, served: list[str]) -> dict[str, float]:
        """The deployment's weights with the candidate at ``weight`` percent (every
        other served version at 0)."""
        weights = dict.fromkeys(served, 0.0)
        weights[self.champion] = 100.0 - weight
        weights[self.candidate] = weight
        return weights


@dataclass(frozen=True)
class Check:
    """One guardrail's verdict in one window: ``pass``, ``breach``, ``inconclusive``
    (not enough evidence yet), ``missing`` (its source gave nothing) or ``nan``; the
    value, the threshold, the bound that decided it, and the sample sizes."""

    name: str
    status: str
    value: float | None
    threshold: float | None
    detail: str
    samples: dict[str, int] = field(default_factory=dict)
    bound: float | None = None
    source: str = ""


@dataclass(frozen=True)
class CanaryDecision:
    """A decision on a canary: what it did, at which step and weight (and the next), the
    window of evidence it read, every check with its numbers, why, and who."""

    canary: str
    seq: int
    action: str
    status: str
    step: int
    weight: float
    window_start: datetime | None
    window_end: datetime | None
    reasons: list[str]
    evidence: dict[str, Any] | None
    actor: str
    at: datetime

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list((self.evidence or {}).get("checks", []))


def check_canary_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidInputError(
            f"canary name {name!r} is invalid",
            hint="use letters, digits, '.', '_' or '-' (up to 128), starting with one of them",
        )
    return name


def to_canary(row: CanaryRow) -> Canary:
    return Canary(
        name=row.name,
        project=row.project,
        deployment=row.deployment,
        champion=row.champion,
        candidate=row.candidate,
        plan=json.loads(row.plan),
        status=row.status,
        step=row.step,
        weight=row.weight,
        reason=row.reason,
        revision=row.revision,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
        step_started_at=row.step_started_at,
        finished_at=row.finished_at,
    )


def to_decision(row: CanaryDecisionRow, canary: str) -> CanaryDecision:
    return CanaryDecision(
        canary=canary,
        seq=row.seq,
        action=row.action,
        status=row.status,
        step=row.step,
        weight=row.weight,
        window_start=row.window_start,
        window_end=row.window_end,
        reasons=json.loads(row.reasons),
        evidence=json.loads(row.evidence) if row.evidence else None,
        actor=row.actor,
        at=row.at,
    )
