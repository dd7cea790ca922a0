"""A/B experiments over deployments: create, start, stop, decide (governed), list, read.

Starting an experiment puts its sticky assignment on the deployment record (a new
revision, which running servers apply within seconds); stopping takes it off, so the
deployment serves by its own weights again. ``decide`` judges the experiment with the
statistics engine (:mod:`ghaf.experiments.stats`) from the prediction log and the
outcomes reported for it, and records the Decision (values, p-values, intervals, sample
sizes) in the record and the audit trail. States only move forward:
draft -> running -> stopped -> decided.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ghaf.errors import AlreadyExistsError, InvalidInputError, NotFoundError
from ghaf.experiments.analysis import analyze_experiment
from ghaf.experiments.canary_records import ACTIVE as CANARY_ACTIVE
from ghaf.experiments.records import (
    TRANSITIONS,
    Experiment,
    UnitSource,
    check_experiment_name,
    to_record,
)
from ghaf.experiments.stats.table import GuardrailSpec
from ghaf.experiments.tables import AbExperimentRow, CanaryRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.deployments import get_deployment, set_routing
from ghaf.serving.traffic import Assignment
from ghaf.spine import current_operation, current_session, governed

GUARDRAIL_METRICS = ("latency_ms",)
"""Per-unit metrics the prediction log gives a guardrail (the goal comes from outcomes)."""


def _variants(weights: Mapping[str, float], served: set[str], deployment: str) -> dict[str, float]:
    clean = {str(k): float(v) for k, v in weights.items()}
    if len(clean) < 2:
        raise InvalidInputError(
            "an experiment needs at least two variants",
            hint="e.g. --variant fraud:1=50 --variant fraud:2=50",
        )
    missing = sorted(set(clean) - served)
    if missing:
        raise InvalidInputError(
            f"variant(s) {', '.join(missing)} are not served by deployment {deployment!r}",
            hint=f"its versions: {', '.join(sorted(served))} (ghaf deployments update "
            f"{deployment} ... adds one)",
        )
    Assignment("check", "", clean)  # positive weights, not all zero
    return clean


@governed("traffic.experiment_create", resource="experiment:{name}")
def create_experiment(
    platform: Platform,
    actor: Actor,
    name: str,
    deployment: str,
    variants: Mapping[str, float],
    *,
    goal: str = "outcome",
    guardrails: Sequence[str] = ("latency_ms:lower",),
    holdout: float = 0.0,
    unit: str = "header",
    shadows: Sequence[str] = (),
    control: str | None = None,
    salt: str | None = None,
    project: str | None = None,
) -> Experiment:
    """Record a draft experiment on ``deployment`` (variants: concrete refs -> weights).

    Raises:
        AlreadyExistsError: an experiment ``name`` exists.
        NotFoundError: no deployment ``deployment`` in the project.
        InvalidInputError: a variant or shadow the deployment does not serve, fewer than
            two variants, a holdout outside [0, 1), a bad unit source or guardrail.
    """
    session = current_session()
    check_experiment_name(name)
    project = project or platform.default_project
    if session.execute(select(AbExperimentRow.id).where(AbExperimentRow.name == name)).first():
        raise AlreadyExistsError(f"experiment {name!r} exists", hint="pick another name")
    record = get_deployment(platform, deployment)
    if record.project != project:
        raise NotFoundError(
            f"deployment {deployment!r} does not exist in project {project!r}",
            hint="ghaf deployments list",
        )
    served = set(record.models) | ({record.shadow} if record.shadow else set())
    weights = _variants(variants, served, deployment)
    control = control or next(iter(weights))
    if control not in weights:
        raise InvalidInputError(
            f"control {control!r} is not one of the variants", hint=f"one of {', '.join(weights)}"
        )
    bad_shadows = sorted(set(shadows) - served)
    if bad_shadows or set(shadows) & set(weights):
        raise InvalidInputError(
            f"shadow(s) {', '.join(bad_shadows or sorted(set(shadows) & set(weights)))} must be "
            f"versions the deployment serves that are not live variants",
            hint=f"its versions: {', '.join(sorted(served))}",
        )
    salt = salt or secrets.token_hex(8)
    Assignment(name, salt, weights, holdout=holdout, control=control)  # checks the holdout
    source = UnitSource.parse(unit)
    for text in guardrails:
        if GuardrailSpec.parse(text).column not in GUARDRAIL_METRICS:
            raise InvalidInputError(
                f"guardrail {text!r}: the prediction log measures {', '.join(GUARDRAIL_METRICS)}",
                hint="e.g. --guardrail latency_ms:lower:5",
            )
    if not goal or len(goal) > 128:
        raise InvalidInputError("goal must be a metric name", hint="e.g. --goal conversion")
    now = utcnow()
    row = AbExperimentRow(
        name=name,
        project=project,
        deployment=deployment,
        variants=json.dumps(weights),
        control=control,
        shadows=json.dumps(list(shadows)),
        holdout=float(holdout),
        salt=salt,
        unit_kind=source.kind,
        unit_name=source.name,
        goal=goal,
        guardrails=json.dumps(list(guardrails)),
        status="draft",
        decision=None,
        revision=1,
        created_by=actor.name,
        created_at=now,
        updated_by=actor.name,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    current_operation().details.update({"deployment": deployment, "variants": weights})
    return to_record(row)


def _row(platform: Platform, name: str, *, lock: bool = False) -> AbExperimentRow:
    query = select(AbExperimentRow).where(AbExperimentRow.name == name)
    row = current_session().execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if row is None or row.project != platform.default_project:
        raise NotFoundError(
            f"experiment {name!r} does not exist in project {platform.default_project!r}",
            hint="ghaf experiments list",
        )
    return row


def _move(row: AbExperimentRow, actor: Actor, to: str) -> None:
    if to not in TRANSITIONS.get(row.status, ()):
        allowed = TRANSITIONS.get(row.status, ())
        raise InvalidInputError(
            f"experiment {row.name!r} is {row.status}: it cannot become {to}",
            hint=f"from {row.status} it may become {', '.join(allowed)}"
            if allowed
            else "a decided experiment is final; create a new one",
        )
    row.status = to
    row.revision += 1
    row.updated_by = actor.name
    row.updated_at = utcnow()
    current_operation().details["status"] = to


@governed("traffic.experiment_start", resource="experiment:{name}")
def start_experiment(platform: Platform, actor: Actor, name: str) -> Experiment:
    """Start assigning units: the deployment's record carries the experiment (a new
    revision that running servers apply within seconds).

    Raises:
        InvalidInputError: not a draft, or another experiment or a canary holds the
            deployment.
    """
    session = current_session()
    row = _row(platform, name, lock=True)
    other = session.execute(
        select(AbExperimentRow.name).where(
            AbExperimentRow.deployment == row.deployment,
            AbExperimentRow.status == "running",
            AbExperimentRow.name != name,
        )
    ).first()
    if other is not None:
        raise InvalidInputError(
            f"experiment {other[0]!r} already runs on deployment {row.deployment!r}",
            hint=f"stop it first: ghaf experiments stop {other[0]}",
        )
    canary = session.execute(
        select(CanaryRow.name).where(
            CanaryRow.deployment == row.deployment, CanaryRow.status.in_(CANARY_ACTIVE)
        )
    ).first()
    if canary is not None:
        raise InvalidInputError(
            f"canary {canary[0]!r} holds deployment {row.deployment!r}",
            hint=f"let it finish or roll it back: ghaf experiments canary rollback {canary[0]}",
        )
    _move(row, actor, "running")
    row.started_at = utcnow()
    record = to_record(row)
    deployed = set_routing(platform, row.deployment, record.routing())
    current_operation().details["deployment_revision"] = deployed.revision
    session.flush()
    return record


@governed("traffic.experiment_stop", resource="experiment:{name}")
def stop_experiment(platform: Platform, actor: Actor, name: str) -> Experiment:
    """Stop assigning units: the deployment serves by its own weights again."""
    row = _row(platform, name, lock=True)
    _move(row, actor, "stopped")
    row.stopped_at = utcnow()
    deployed = set_routing(platform, row.deployment, None)
    current_operation().details["deployment_revision"] = deployed.revision
    current_session().flush()
    return to_record(row)


@governed("traffic.experiment_decide", resource="experiment:{name}")
def decide_experiment(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    log_dir: Path | None = None,
    sequential: bool = True,
) -> Experiment:
    """Judge a stopped experiment from its prediction log and outcomes; record the
    Decision (every value, p-value, interval and sample size) in the record and audit.

    Raises:
        InvalidInputError: the experiment is not stopped, no prediction log at
            ``log_dir``, or a variant with no unit logged.
    """
    row = _row(platform, name, lock=True)
    if row.status != "stopped":
        _move(row, actor, "decided")  # raises with the allowed moves
    analysis = analyze_experiment(
        platform, to_record(row), log_dir or default_log_dir(platform), sequential=sequential
    )
    _move(row, actor, "decided")
    row.decision = json.dumps(analysis, sort_keys=True)
    decision = analysis["decision"]
    current_operation().details.update(
        {
            "verdict": decision["verdict"],
            "reasons": decision["reasons"],
            "sample_sizes": decision["sample_sizes"],
            "goal": decision["goal"],
            "srm": decision["srm"],
            "guardrails": decision["guardrails"],
        }
    )
    current_session().flush()
    return to_record(row)


def default_log_dir(platform: Platform) -> Path:
    """Where ``decide`` reads the prediction log unless told: ``HOME/predictions``."""
    return Path(platform.settings.home) / "predictions"


def get_experiment(platform: Platform, name: str) -> Experiment:
    """The experiment ``name`` of ``platform``'s project.

    Raises:
        NotFoundError: none.
    """
    with platform.read_session() as session:
        row = session.execute(
            select(AbExperimentRow).where(AbExperimentRow.name == name)
        ).scalar_one_or_none()
        if row is None or row.project != platform.default_project:
            raise NotFoundError(
                f"experiment {name!r} does not exist in project {platform.default_project!r}",
                hint="ghaf experiments list",
            )
        return to_record(row)


def experiment_project(platform: Platform, name: str) -> str | None:
    """The project of experiment ``name`` (names are unique across projects), or None."""
    with platform.read_session() as session:
        return session.execute(
            select(AbExperimentRow.project).where(AbExperimentRow.name == name)
        ).scalar_one_or_none()


def list_experiments(platform: Platform, project: str | None = None) -> list[Experiment]:
    """Experiments (of ``project``, or all), by name."""
    query = select(AbExperimentRow).order_by(AbExperimentRow.name)
    if project is not None:
        query = query.where(AbExperimentRow.project == project)
    with platform.read_session() as session:
        return [to_record(row) for row in session.execute(query).scalars()]


def experiment_status(
    platform: Platform, name: str, *, log_dir: Path | None = None, sequential: bool = True
) -> dict[str, Any]:
    """The record and, when a prediction log exists, an interim analysis (nothing stored)."""
    record = get_experiment(platform, name)
    doc: dict[str, Any] = {"experiment": record, "analysis": None, "shadow": None}
    directory = log_dir or default_log_dir(platform)
    try:
        doc["analysis"] = analyze_experiment(platform, record, directory, sequential=sequential)
    except InvalidInputError as exc:  # no log yet, or a variant with no unit yet
        doc["analysis_error"] = exc.headline
    if record.shadows and directory.is_dir():
        from ghaf.experiments.shadow import compare_shadows
        from ghaf.serving.predlog import prediction_log_keys, read_prediction_log

        log = read_prediction_log(directory, keys=prediction_log_keys(platform))
        doc["shadow"] = compare_shadows(log, record.control.rpartition(":")[0])
    return doc
