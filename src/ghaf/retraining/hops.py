"""The closed loop's writes: each hop is one governed operation
(``deployment.retrain_trigger|record|gates|deploy``) that moves the run's record and adds
the hop, with its time, to the incident's timeline (``incident.record``, in the same
transaction), so the audit trail holds every hop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from ghaf.errors import NotFoundError
from ghaf.metadata.base import utcnow
from ghaf.platform import Platform
from ghaf.retraining.records import FINAL, RetrainRun, to_run
from ghaf.retraining.tables import RetrainRunRow
from ghaf.security.identity import Actor
from ghaf.spine import current_operation, current_session, governed


def _record_on_incident(
    platform: Platform, actor: Actor, incident: str | None, kind: str, details: dict[str, Any],
    at: datetime,
) -> None:  # fmt: skip
    if incident is None:
        return
    from ghaf.incidents.lifecycle import record_event

    record_event(platform, actor, incident, kind, details, at=at)


@governed("deployment.retrain_trigger", resource="deployment:{deployment}")
def open_run(
    platform: Platform,
    actor: Actor,
    deployment: str,
    *,
    event: str,
    subject: str,
    model_version: str | None,
    incident: str | None,
    trigger: str,
    status: str,
    reason: str,
    until: datetime | None,
    champion: str | None,
    at: datetime,
) -> RetrainRun:
    """Record that an alert reached the loop (fired or skipped: ``status``), and the
    ``trigger`` hop on its incident."""
    session = current_session()
    row = RetrainRunRow(
        project=platform.default_project,
        deployment=deployment,
        event=event,
        subject=subject,
        model_version=model_version,
        incident=incident,
        trigger=trigger,
        status=status,
        reason=reason,
        until=until,
        champion=champion,
        fired_at=at,
        updated_at=at,
        finished_at=at if status in FINAL else None,
    )
    session.add(row)
    session.flush()
    details = {
        "run": row.id,
        "alert": subject,
        "fired": status not in FINAL,
        "reason": reason,
        "trigger": trigger,
        "until": until.isoformat() if until else None,
    }
    _record_on_incident(platform, actor, incident, "trigger", details, at)
    current_operation().details.update({"hop": "trigger", **details, "incident": incident})
    return to_run(row)


def _row(platform: Platform, deployment: str, run_id: int) -> RetrainRunRow:
    row = (
        current_session()
        .execute(select(RetrainRunRow).where(RetrainRunRow.id == run_id).with_for_update())
        .scalar_one_or_none()
    )
    if row is None or row.project != platform.default_project or row.deployment != deployment:
        raise NotFoundError(f"retraining run {run_id} of {deployment!r} does not exist")
    return row


def _move(
    platform: Platform,
    actor: Actor,
    row: RetrainRunRow,
    kind: str,
    details: dict[str, Any],
    at: datetime,
    status: str | None,
    reason: str | None,
    fields: dict[str, Any],
) -> RetrainRun:
    """Move the run (inside the operation) and put the hop on its incident."""
    for name, value in fields.items():
        setattr(row, name, value)
    if status is not None:
        row.status = status
        if status in FINAL:
            row.finished_at = at
    if reason is not None:
        row.reason = reason[:4000]
    row.updated_at = utcnow()
    current_session().flush()
    _record_on_incident(platform, actor, row.incident, kind, {"run": row.id, **details}, at)
    current_operation().details.update(
        {"hop": kind, "run": row.id, "run_status": row.status, "incident": row.incident, **details}
    )
    return to_run(row)


@governed("deployment.retrain_record", resource="deployment:{deployment}")
def record_hop(
    platform: Platform,
    actor: Actor,
    deployment: str,
    run_id: int,
    kind: str,
    details: dict[str, Any],
    *,
    at: datetime,
    status: str | None = None,
    reason: str | None = None,
    pipeline_run: str | None = None,
    candidate: str | None = None,
    champion: str | None = None,
    canary: str | None = None,
    next_check_at: datetime | None = None,
) -> RetrainRun:
    """Add hop ``kind`` (``details``, at ``at``) to run ``run_id``'s incident and move the
    run: its ``status`` and ``reason``, and those of ``pipeline_run``, ``candidate``,
    ``champion``, ``canary`` and ``next_check_at`` that are given.

    Raises:
        NotFoundError: no such run of ``deployment`` in the platform's project.
    """
    row = _row(platform, deployment, run_id)
    given = {
        "pipeline_run": pipeline_run,
        "candidate": candidate,
        "champion": champion,
        "canary": canary,
        "next_check_at": next_check_at,
    }
    fields = {name: value for name, value in given.items() if value is not None}
    return _move(platform, actor, row, kind, details, at, status, reason, fields)


def record_registration(
    platform: Platform,
    actor: Actor,
    deployment: str,
    run_id: int,
    candidate: str,
    pipeline_gate: dict[str, Any] | None,
    *,
    at: datetime,
) -> RetrainRun:
    """The registered candidate: the ``register`` hop, then the ``gate`` hop (see
    :func:`run_gates`)."""
    from ghaf.registry.service import get_model_version

    version = get_model_version(platform, candidate)
    registered = {
        "candidate": version.ref,
        "signed": version.signed,
        "metrics": {k: v for k, v in sorted(version.metrics.items()) if k in _SHOWN_METRICS},
        "lineage": list(version.lineage)[:3],
    }
    record_hop(
        platform, actor, deployment, run_id, "register", registered, at=at, candidate=version.ref
    )
    return run_gates(platform, actor, deployment, run_id, pipeline_gate, at=at)


@governed("deployment.retrain_gates", resource="deployment:{deployment}")
def run_gates(
    platform: Platform,
    actor: Actor,
    deployment: str,
    run_id: int,
    pipeline_gate: dict[str, Any] | None,
    *,
    at: datetime,
) -> RetrainRun:
    """The gates of the run's candidate: the pipeline's own verdict and every gate policy
    attached to the model or project, run now on the version (their verdicts stored on
    it, in this operation); a failing one ends the run."""
    from ghaf.registry.gates import evaluate_gates
    from ghaf.registry.service import get_model_version
    from ghaf.retraining.records import FAILED

    row = _row(platform, deployment, run_id)
    if row.candidate is None:
        raise NotFoundError(f"retraining run {run_id} has no candidate to gate")
    version = get_model_version(platform, row.candidate)
    verdicts = evaluate_gates(platform, version, None, purpose="retraining candidate")
    attached = [
        {"policy": f"{v.policy}:{v.policy_version}", "passed": v.passed,
         "failures": [f"{r.rule}: {r.reason}" for r in v.failures]}
        for v in verdicts
    ]  # fmt: skip
    own = bool((pipeline_gate or {}).get("passed", True))
    passed = own and all(v.passed for v in verdicts)
    gate = {"candidate": version.ref, "passed": passed, "pipeline": pipeline_gate,
            "attached": attached}  # fmt: skip
    failed = [str(a["policy"]) for a in attached if not a["passed"]]
    failed += [] if own else ["of the pipeline"]
    return _move(
        platform, actor, row, "gate", gate, at,
        None if passed else FAILED, None if passed else f"gate {', '.join(failed)} failed", {},
    )  # fmt: skip


_SHOWN_METRICS = ("auc", "champion_auc", "auc_improvement", "pr_auc", "brier", "log_loss")


@governed("deployment.retrain_deploy", resource="deployment:{deployment}")
def deploy_candidate(
    platform: Platform, actor: Actor, deployment: str, run_id: int, *, at: datetime
) -> RetrainRun:
    """Serve the run's candidate beside the deployment's versions at no traffic (a new
    revision; the release policy is checked again, the gates run) and record ``deploy``.
    Running servers apply weights live but load a new version only when restarted with it.

    Raises:
        PolicyViolationError: the release policy refuses the candidate.
    """
    from ghaf.serving.deployments import get_deployment, update_deployment

    row = _row(platform, deployment, run_id)
    if row.candidate is None:
        raise NotFoundError(f"retraining run {run_id} has no candidate to deploy")
    record = get_deployment(platform, deployment)
    revision = record.revision
    if row.candidate not in record.models:
        models = {**record.models, row.candidate: 0.0}
        revision = update_deployment(platform, actor, deployment, models=models).revision
    served = sorted({*record.models, row.candidate})
    model = row.candidate.rpartition(":")[0]
    details = {
        "candidate": row.candidate,
        "revision": revision,
        "weight": 0.0,
        "serves": served,
        "note": f"a running ghaf serve loads {row.candidate} when restarted with it: "
        f"ghaf serve {' '.join(served)} --deployment {deployment}",
        "model": model,
    }
    return _move(platform, actor, row, "deploy", details, at, None, None, {})
