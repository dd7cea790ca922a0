"""Canaries: ramp a candidate version against the champion by a rollout plan, on evidence.

``start_canary`` gives the candidate the plan's first share of a deployment's traffic;
``evaluate_canary`` reads one window of evidence (serving counters, prediction log,
labelled outcomes), judges every guardrail (:mod:`ghaf.experiments.canary_checks`) and
acts: advance, hold, pause, roll back or promote. A person may pause, resume or roll
back. Traffic moves only through the deployment record (a new revision every ``ghaf
serve`` worker applies within seconds), and every move is one governed
``traffic.canary_*`` operation that records the decision with every value, threshold and
sample size it used. A rollback by the evaluator also opens an alert (and so an
incident) in the same transaction. Promotion moves the plan's alias under the release
policy; where the policy wants an approval that is missing, the canary waits in
``awaiting_approval`` and promotes on a later evaluation once it is there.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ghaf.access.authorize import authorize_read
from ghaf.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PolicyViolationError,
    name_taken,
)
from ghaf.experiments.canary_checks import Verdict, decide, run_checks
from ghaf.experiments.canary_evidence import Counters, Evidence, gather_evidence
from ghaf.experiments.canary_records import (
    ACTIVE,
    AWAITING,
    FINAL,
    PAUSED,
    PROMOTED,
    ROLLED_BACK,
    RUNNING,
    Canary,
    CanaryDecision,
    Check,
    check_canary_name,
    to_canary,
    to_decision,
)
from ghaf.experiments.rollout import RolloutPlan, parse_plan, plan_json
from ghaf.experiments.tables import AbExperimentRow, CanaryDecisionRow, CanaryRow
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.security.identity import Actor
from ghaf.serving.deployments import Deployment, get_deployment, set_weights
from ghaf.serving.scrape import ScrapeError
from ghaf.spine import current_operation, current_session, governed

ALERT = "CanaryRolledBack"
"""The alert a rollback by the evaluator opens (one fingerprint per canary)."""


def default_log_dir(platform: Platform) -> Path:
    """Where the evaluator reads the prediction log unless told: ``HOME/predictions``."""
    return Path(platform.settings.home) / "predictions"


# Reads ------------------------------------------------------------------------------


def _missing(platform: Platform, name: str) -> NotFoundError:
    return NotFoundError(
        f"canary {name!r} does not exist in project {platform.default_project!r}",
        hint="ghaf experiments canary list",
    )


def get_canary(platform: Platform, name: str) -> Canary:
    """The canary ``name`` of ``platform``'s project.

    Raises:
        NotFoundError: none (another project's reads as missing).
    """
    with platform.read_session() as session:
        row = session.execute(select(CanaryRow).where(CanaryRow.name == name)).scalar_one_or_none()
        if row is None or row.project != platform.default_project:
            raise _missing(platform, name)
        return to_canary(row)


def canary_project(platform: Platform, name: str) -> str | None:
    """The project of canary ``name`` (names are unique across projects), or None."""
    with platform.read_session() as session:
        return session.execute(
            select(CanaryRow.project).where(CanaryRow.name == name)
        ).scalar_one_or_none()


def list_canaries(platform: Platform, project: str | None = None) -> list[Canary]:
    """Canaries (of ``project``, or all), by name."""
    query = select(CanaryRow).order_by(CanaryRow.name)
    if project is not None:
        query = query.where(CanaryRow.project == project)
    with platform.read_session() as session:
        return [to_canary(row) for row in session.execute(query).scalars()]


def canary_decisions(platform: Platform, name: str, *, limit: int = 50) -> list[CanaryDecision]:
    """The canary's latest ``limit`` decisions, oldest first."""
    canary_id = _canary_id(platform, name)
    with platform.read_session() as session:
        rows = session.execute(
            select(CanaryDecisionRow)
            .where(CanaryDecisionRow.canary_id == canary_id)
            .order_by(CanaryDecisionRow.seq.desc())
            .limit(max(1, min(limit, 1000)))
        ).scalars()
        return [to_decision(row, name) for row in reversed(list(rows))]


def canary_status(platform: Platform, name: str, *, limit: int = 20) -> dict[str, Any]:
    """The canary, its deployment's revision and weights now, and its latest decisions."""
    canary = get_canary(platform, name)
    deployment = get_deployment(platform, canary.deployment)
    return {
        "canary": canary,
        "deployment": {
            "name": deployment.name,
            "revision": deployment.revision,
            "weights": deployment.models,
        },
        "decisions": canary_decisions(platform, name, limit=limit),
    }


def active_canary(platform: Platform, deployment: str) -> str | None:
    """The name of the canary that holds ``deployment``'s traffic, or None."""
    with platform.read_session() as session:
        return session.execute(
            select(CanaryRow.name).where(
                CanaryRow.deployment == deployment, CanaryRow.status.in_(ACTIVE)
            )
        ).scalar_one_or_none()


def _canary_id(platform: Platform, name: str) -> int:
    with platform.read_session() as session:
        row = session.execute(
            select(CanaryRow.id, CanaryRow.project).where(CanaryRow.name == name)
        ).first()
    if row is None or row.project != platform.default_project:
        raise _missing(platform, name)
    return int(row.id)


def _baseline(platform: Platform, name: str) -> Counters | None:
    with platform.read_session() as session:
        text = session.execute(
            select(CanaryRow.baseline).where(CanaryRow.name == name)
        ).scalar_one_or_none()
    return json.loads(text) if text else None


# Writes ------------------------------------------------------------------------------


def _row(platform: Platform, name: str) -> CanaryRow:
    row = (
        current_session()
        .execute(select(CanaryRow).where(CanaryRow.name == name).with_for_update())
        .scalar_one_or_none()
    )
    if row is None or row.project != platform.default_project:
        raise _missing(platform, name)
    return row


def _clean(value: Any) -> Any:
    """``value`` with NaN and infinities as None (the record is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _record(
    row: CanaryRow,
    actor: Actor,
    action: str,
    reasons: list[str],
    evidence: dict[str, Any] | None,
    now: datetime,
    window: tuple[datetime, datetime] | None = None,
) -> CanaryDecision:
    """Append a decision on ``row`` (as it stands after the action) to the trail."""
    session = current_session()
    seq = session.execute(
        select(func.coalesce(func.max(CanaryDecisionRow.seq), 0)).where(
            CanaryDecisionRow.canary_id == row.id
        )
    ).scalar_one()
    decision = CanaryDecisionRow(
        canary_id=row.id,
        seq=int(seq) + 1,
        action=action,
        status=row.status,
        step=row.step,
        weight=row.weight,
        window_start=window[0] if window else None,
        window_end=window[1] if window else None,
        reasons=json.dumps(reasons),
        evidence=json.dumps(_clean(evidence), sort_keys=True) if evidence is not None else None,
        actor=actor.name,
        at=now,
    )
    session.add(decision)
    session.flush()
    checks = (evidence or {}).get("checks", [])
    current_operation().details.update(
        {
            "action": action,
            "status": row.status,
            "step": row.step,
            "weight": row.weight,
            "reasons": reasons,
            "checks": _clean(
                [{k: c.get(k) for k in ("name", "status", "value", "threshold")} for c in checks]
            ),
        }
    )
    return to_decision(decision, row.name)


def _touch(row: CanaryRow, actor: Actor, now: datetime) -> None:
    row.revision += 1
    row.updated_by = actor.name
    row.updated_at = now


def _served(deployment: Deployment) -> list[str]:
    return list(deployment.models)


def _move_traffic(platform: Platform, row: CanaryRow, weight: float, served: list[str]) -> int:
    canary = to_canary(row)
    return set_weights(platform, row.deployment, canary.weights(weight, served)).revision


def _held(canary: str, deployment: str) -> InvalidInputError:
    return InvalidInputError(
        f"canary {canary!r} already holds deployment {deployment!r}",
        hint=f"roll it back or let it finish: ghaf experiments canary rollback {canary}",
    )


def _deployment_in(platform: Platform, name: str, project: str) -> Deployment:
    """The deployment ``name`` of ``project``; one answer whether it is another
    project's or nobody's."""
    missing = NotFoundError(
        f"deployment {name!r} does not exist in project {project!r}",
        hint="ghaf deployments list",
    )
    try:
        record = get_deployment(platform, name)
    except NotFoundError:
        raise missing from None
    if record.project != project:
        raise missing
    return record


def _champion_of(record: Deployment, champion: str | None) -> str:
    if champion is not None:
        return champion
    live = [ref for ref, weight in record.models.items() if weight > 0]
    if len(live) != 1:
        shares = ", ".join(f"{ref} ({w:g})" for ref, w in record.models.items())
        raise InvalidInputError(
            f"deployment {record.name!r} serves {shares}: which one is the champion?",
            hint="name it: --champion NAME:VERSION",
        )
    return live[0]


def _scrape_baseline(platform: Platform, plan: RolloutPlan) -> Counters | None:
    if not plan.metrics:
        return None
    from ghaf.experiments.canary_evidence import scrape_all
    from ghaf.serving.scrape import check_allowed

    for target in plan.metrics:  # before a byte is fetched
        check_allowed(target, platform.settings.server.fetch_allow)

    try:
        return scrape_all(plan.metrics)
    except ScrapeError as exc:
        raise InvalidInputError(
            f"the canary's metrics gave no counters: {exc}",
            hint="serve with --metrics-public and list each ghaf serve's base URL in metrics",
        ) from None


def start_canary(
    platform: Platform,
    actor: Actor,
    name: str,
    deployment: str,
    candidate: str,
    plan: RolloutPlan | Mapping[str, Any] | None = None,
    *,
    champion: str | None = None,
    project: str | None = None,
    now: datetime | None = None,
) -> Canary:
    """Start ramping ``candidate`` against the champion on ``deployment`` by ``plan``:
    it takes the first step's share of the traffic at once.

    ``now`` sets the canary's clock (its windows start then): for replaying logged
    traffic, with the same ``now`` given to :func:`evaluate_canary`; default: the time.

    The champion is the one version the deployment gives traffic unless named; both
    must be versions the deployment serves (so running servers have them loaded).

    Raises:
        AlreadyExistsError: a canary ``name`` exists.
        NotFoundError: no deployment ``deployment`` in the project.
        InvalidInputError: a bad plan (the field named), a version the deployment does
            not serve, another canary or an experiment on the deployment, or a metrics
            target that gives no counters.
    """
    check_canary_name(name)
    rollout = parse_plan(dict(plan) if isinstance(plan, Mapping) else plan or {}, "plan")
    project = project or platform.default_project
    # before anything is read or fetched for the caller (the spine checks again)
    authorize_read(platform, actor, "traffic.canary_start", f"canary:{name}", project)
    record = _deployment_in(platform, deployment, project)
    holder = active_canary(platform, deployment)
    if holder is not None:
        raise _held(holder, deployment)
    champion = _champion_of(record, champion)
    for role, ref in (("champion", champion), ("candidate", candidate)):
        if ref not in record.models:
            raise InvalidInputError(
                f"{role} {ref} is not served by deployment {deployment!r}",
                hint=f"it serves {', '.join(record.models)}; serve the candidate beside the "
                f"champion first (ghaf serve {champion} {candidate} ...)",
            )
    if champion == candidate:
        raise InvalidInputError(
            f"{candidate} is the champion", hint="canary another version against it"
        )
    baseline = _scrape_baseline(platform, rollout)
    return _start(
        platform.in_project(project), actor, name, project, record, champion, candidate,
        rollout, baseline, now or utcnow(),
    )  # fmt: skip


@governed("traffic.canary_start", resource="canary:{name}", project="{project}")
def _start(
    platform: Platform,
    actor: Actor,
    name: str,
    project: str,
    record: Deployment,
    champion: str,
    candidate: str,
    plan: RolloutPlan,
    baseline: Counters | None,
    now: datetime,
) -> Canary:
    session = current_session()
    owner = session.execute(
        select(CanaryRow.project).where(CanaryRow.name == name)
    ).scalar_one_or_none()
    if owner is not None:
        raise (
            name_taken("canary", name)
            if owner != project
            else AlreadyExistsError(f"canary {name!r} exists", hint="pick another name")
        )
    other = session.execute(
        select(CanaryRow.name).where(
            CanaryRow.deployment == record.name, CanaryRow.status.in_(ACTIVE)
        )
    ).first()
    if other is not None:
        raise _held(other[0], record.name)
    running = session.execute(
        select(AbExperimentRow.name).where(
            AbExperimentRow.deployment == record.name, AbExperimentRow.status == "running"
        )
    ).first()
    if running is not None or record.routing is not None:
        which = (
            running[0] if running else record.routing.get("experiment") if record.routing else ""
        )
        raise InvalidInputError(
            f"experiment {which!r} routes deployment {record.name!r}",
            hint=f"stop it first: ghaf experiments stop {which}",
        )
    row = CanaryRow(
        name=name,
        project=project,
        deployment=record.name,
        champion=champion,
        candidate=candidate,
        plan=plan_json(plan),
        status=RUNNING,
        step=0,
        weight=plan.steps[0],
        reason=None,
        baseline=json.dumps(baseline) if baseline is not None else None,
        revision=1,
        created_by=actor.name,
        created_at=now,
        updated_by=actor.name,
        updated_at=now,
        step_started_at=now,
        finished_at=None,
    )
    session.add(row)
    session.flush()
    revision = _move_traffic(platform, row, plan.steps[0], _served(record))
    reasons = [f"{candidate} takes {plan.steps[0]:g}% of {record.name} from {champion}"]
    evidence = {"deployment_revision": revision, "plan": plan.to_dict()}
    _record(row, actor, "start", reasons, evidence, now)
    return to_canary(row)


def _routing_problem(canary: Canary, record: Deployment) -> str | None:
    """Why the deployment no longer routes as the canary set it, or None."""
    if record.routing is not None:
        return f"experiment {record.routing.get('experiment')!r} now routes the deployment"
    expected = canary.weights(canary.weight, _served(record))
    if any(abs(record.models.get(ref, 0.0) - w) > 1e-9 for ref, w in expected.items()):
        return (
            f"the deployment's weights changed outside the canary (revision {record.revision} "
            f"by {record.updated_by}: {record.models})"
        )
    return None


def _promotion_blockers(platform: Platform, canary: Canary, plan: RolloutPlan) -> list[str]:
    """What the release policy still wants before the candidate takes the plan's alias."""
    if plan.promote_alias is None:
        return []
    from ghaf.registry.release import get_release_policy, missing_requirements
    from ghaf.registry.service import get_model_version

    version = get_model_version(platform, canary.candidate)
    policy = get_release_policy(platform, version.project).policy
    if not policy.protects(alias=plan.promote_alias):
        return []
    missing = missing_requirements(platform, version, policy, evaluate_gates=False)
    return [
        f"{canary.candidate} may not take the protected alias {plan.promote_alias!r} yet: "
        f"the release policy requires it to be {'; '.join(missing)}"
    ] if missing else []  # fmt: skip


def _evidence_doc(
    evidence: Evidence, checks: list[Check], record: Deployment, plan: RolloutPlan, step: int
) -> dict[str, Any]:
    return {
        "checks": [asdict(c) for c in checks],
        "samples": {
            "candidate": evidence.canary.samples(),
            "champion": evidence.champion.samples(),
        },
        "window": {
            "start": evidence.window_start.isoformat(),
            "end": evidence.window_end.isoformat(),
            "seconds": (evidence.window_end - evidence.window_start).total_seconds(),
        },
        "problems": dict(evidence.problems),
        "weights": dict(record.models),
        "deployment_revision": record.revision,
        "step_weight": plan.steps[step],
        "confidence": plan.confidence,
    }


def evaluate_canary(
    platform: Platform,
    actor: Actor,
    name: str,
    *,
    log_dir: Path | None = None,
    now: datetime | None = None,
) -> CanaryDecision:
    """Judge one window of evidence and act on it (see :mod:`ghaf.experiments.canary_checks`
    for the order: breach -> rollback, a gap -> pause, evidence -> advance or promote).

    Args:
        log_dir: the prediction log the servers write (default ``HOME/predictions``).

    Raises:
        NotFoundError: no canary ``name`` in the project.
        InvalidInputError: the canary is promoted or rolled back, or it changed while
            the evidence was read (evaluate again).
    """
    canary = get_canary(platform, name)
    authorize_read(platform, actor, "traffic.canary_evaluate", f"canary:{name}", canary.project)
    if canary.status in FINAL:
        raise InvalidInputError(
            f"canary {name!r} is {canary.status}: it is final", hint="start a new canary"
        )
    plan = canary.rollout
    record = get_deployment(platform, canary.deployment)
    now = now or utcnow()
    evidence = gather_evidence(
        platform, canary, plan, log_dir or default_log_dir(platform), _baseline(platform, name),
        now, _routing_problem(canary, record),
    )  # fmt: skip
    last = canary.step >= len(plan.steps) - 1
    checks = run_checks(evidence, plan, last_step=last)
    verdict = decide(checks, canary.status, last_step=last)
    if verdict.action == "promote":
        blockers = _promotion_blockers(platform, canary, plan)
        if blockers:
            verdict = Verdict("await_approval", blockers + verdict.reasons)
    doc = _evidence_doc(evidence, checks, record, plan, canary.step)
    args = (canary.revision, _served(record), evidence.counters, doc, now)
    try:
        return _apply(platform, actor, name, verdict, *args)
    except (PermissionDeniedError, PolicyViolationError) as exc:
        if verdict.action != "promote":
            raise
        waiting = Verdict(
            "await_approval", [f"promotion refused: {exc.headline}", *verdict.reasons]
        )
        return _apply(platform, actor, name, waiting, *args)


def _alert(platform: Platform, actor: Actor, row: CanaryRow, reasons: list[str]) -> dict[str, Any]:
    """Open (or count on) the canary's alert; what happened, for the decision."""
    from ghaf.alerts import Alert
    from ghaf.incidents import ingest_alerts

    alert = Alert(
        name=ALERT,
        labels={"canary": row.name, "deployment": row.deployment},
        severity="critical",
        summary=f"canary {row.candidate} on {row.deployment} rolled back: " + "; ".join(reasons),
        source="ghaf-canary",
        deployment=row.deployment,
        model_version=row.candidate,
    )
    try:
        result = ingest_alerts(platform, actor, [alert])
    except PermissionDeniedError as exc:  # the rollback stands; say why there is no alert
        return {"fingerprint": alert.fingerprint, "opened": [], "error": exc.headline}
    return {"fingerprint": alert.fingerprint, "opened": result.opened, "updated": result.updated}


@governed("traffic.canary_evaluate", resource="canary:{name}")
def _apply(
    platform: Platform,
    actor: Actor,
    name: str,
    verdict: Verdict,
    revision: int,
    served: list[str],
    counters: Counters | None,
    evidence: dict[str, Any],
    now: datetime,
) -> CanaryDecision:
    row = _row(platform, name)
    if row.revision != revision:
        raise InvalidInputError(
            f"canary {name!r} changed while it was evaluated (revision {revision} is now "
            f"{row.revision})",
            hint="evaluate again",
        )
    plan = parse_plan(json.loads(row.plan))
    window = (row.step_started_at, now)
    action = verdict.action
    if action != "hold":
        _touch(row, actor, now)
    if action == "rollback":
        row.status, row.reason, row.finished_at = ROLLED_BACK, "; ".join(verdict.reasons), now
        evidence["deployment_revision"] = _move_traffic(platform, row, 0.0, served)
        row.weight = 0.0
        evidence["alert"] = _alert(platform, actor, row, verdict.reasons)
    elif action == "pause":
        row.status, row.reason = PAUSED, "; ".join(verdict.reasons)
    elif action == "advance":
        row.step += 1
        row.weight = plan.steps[row.step]
        row.step_started_at = now
        row.baseline = json.dumps(counters) if counters is not None else None
        row.reason = None
        evidence["deployment_revision"] = _move_traffic(platform, row, row.weight, served)
        evidence["next_weight"] = row.weight
    elif action == "await_approval":
        row.status, row.reason = AWAITING, "; ".join(verdict.reasons)
    elif action == "promote":
        evidence["deployment_revision"] = _move_traffic(platform, row, 100.0, served)
        row.weight = 100.0
        row.status, row.reason, row.finished_at = PROMOTED, None, now
        if plan.promote_alias is not None:
            from ghaf.registry import set_alias

            model, _, version = row.candidate.rpartition(":")
            set_alias(platform, actor, model, plan.promote_alias, int(version))
            evidence["alias"] = f"{model}@{plan.promote_alias} -> {row.candidate}"
    return _record(row, actor, action, verdict.reasons, evidence, now, window)


@governed("traffic.canary_pause", resource="canary:{name}")
def pause_canary(platform: Platform, actor: Actor, name: str, reason: str) -> CanaryDecision:
    """Stop the ramp where it is (traffic stays as it is) until a person resumes it.

    Raises:
        InvalidInputError: the canary is not running or awaiting approval; no reason.
    """
    row = _row(platform, name)
    reason = _reason(reason)
    if row.status not in (RUNNING, AWAITING):
        raise InvalidInputError(
            f"canary {name!r} is {row.status}: only a running canary pauses",
            hint="ghaf experiments canary status " + name,
        )
    now = utcnow()
    _touch(row, actor, now)
    row.status, row.reason = PAUSED, f"paused by {actor.name}: {reason}"
    return _record(row, actor, "pause", [row.reason], None, now)


def resume_canary(platform: Platform, actor: Actor, name: str) -> CanaryDecision:
    """Resume a paused canary: its step starts again from now (the evidence, too).

    Raises:
        InvalidInputError: not paused, or a metrics target gives no counters.
    """
    canary = get_canary(platform, name)
    authorize_read(platform, actor, "traffic.canary_resume", f"canary:{name}", canary.project)
    if canary.status != PAUSED:
        raise InvalidInputError(
            f"canary {name!r} is {canary.status}: only a paused canary resumes",
            hint="ghaf experiments canary status " + name,
        )
    baseline = _scrape_baseline(platform, canary.rollout)
    return _resume(platform, actor, name, canary.revision, baseline)


@governed("traffic.canary_resume", resource="canary:{name}")
def _resume(
    platform: Platform, actor: Actor, name: str, revision: int, baseline: Counters | None
) -> CanaryDecision:
    row = _row(platform, name)
    if row.status != PAUSED or row.revision != revision:
        raise InvalidInputError(
            f"canary {name!r} changed while it was resumed", hint="look again and resume"
        )
    now = utcnow()
    before = row.reason
    _touch(row, actor, now)
    row.status, row.reason, row.step_started_at = RUNNING, None, now
    row.baseline = json.dumps(baseline) if baseline is not None else None
    reasons = [f"resumed by {actor.name} at step {row.step + 1} ({row.weight:g}%)"]
    return _record(row, actor, "resume", reasons, {"paused_because": before}, now)


@governed("traffic.canary_rollback", resource="canary:{name}")
def rollback_canary(platform: Platform, actor: Actor, name: str, reason: str) -> CanaryDecision:
    """Give every request back to the champion now, by a person's decision.

    Raises:
        InvalidInputError: the canary is already promoted or rolled back; no reason.
    """
    row = _row(platform, name)
    reason = _reason(reason)
    if row.status not in ACTIVE:
        raise InvalidInputError(
            f"canary {name!r} is {row.status}: it is final", hint="start a new canary"
        )
    served = _served(get_deployment(platform, row.deployment))
    now = utcnow()
    _touch(row, actor, now)
    row.status, row.reason, row.finished_at = (
        ROLLED_BACK,
        f"rolled back by {actor.name}: {reason}",
        now,
    )
    revision = _move_traffic(platform, row, 0.0, served)
    row.weight = 0.0
    return _record(row, actor, "rollback", [row.reason], {"deployment_revision": revision}, now)


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason or len(reason) > 2000:
        raise InvalidInputError(
            "a reason is needed (at most 2000 characters)", hint='e.g. --reason "INC-42: p99 up"'
        )
    return reason
