"""Gates on registered versions: evidence from the registry, verdicts stored on the version.

:func:`evaluate_gates` runs inside the governed operation that promotes a version (stage
transition, alias, deployment): it checks each policy on the version's recorded evaluation,
stores the verdicts in that operation's transaction and refreshes the model card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from ghaf.artifacts.scratch import scratch_dir
from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.evaluation.evaluate import EVALUATION_FILE, Evaluation
from ghaf.evaluation.gates import (
    GateEvidence,
    RuleResult,
    check_gate,
    evaluation_from_flat,
    evidence_from_dir,
)
from ghaf.evaluation.policy import parse_policy
from ghaf.metadata.base import utcnow
from ghaf.models.checks import Inspection, inspect_model_dir
from ghaf.platform import Platform
from ghaf.registry.base import ModelRef, ModelVersion, parse_ref
from ghaf.registry.card import with_gate_section
from ghaf.registry.code_policy import get_code_policy
from ghaf.registry.download import download_model
from ghaf.registry.gate_policies import policy_rows
from ghaf.registry.service import get_model_version, resolve_rows
from ghaf.registry.tables import GateVerdictRow
from ghaf.spine import current_operation, current_session


@dataclass(frozen=True)
class GateVerdict:
    """One policy version's verdict on one model version, rule by rule."""

    policy: str
    policy_version: int
    subject: str
    passed: bool
    rules: tuple[RuleResult, ...]
    purpose: str
    evaluated_by: str
    evaluated_at: datetime

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.rules if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "policy_version": self.policy_version,
            "subject": self.subject,
            "passed": self.passed,
            "purpose": self.purpose,
            "evaluated_by": self.evaluated_by,
            "evaluated_at": self.evaluated_at.isoformat(),
            "rules": [asdict(r) for r in self.rules],
        }


def recorded_evidence(platform: Platform, version: ModelVersion) -> GateEvidence:
    """What the registry recorded for ``version``: its ``evaluation.json`` when registered
    with one (else the metrics stored with it), signed at registration, pickle files
    scanned, approvals by people other than the author."""
    notes: list[str] = []
    evaluation: Evaluation | None = None
    entry = version.files.get(EVALUATION_FILE)
    if entry is not None:
        text = platform.artifacts.read_bytes(str(entry["digest"])).decode()
        try:
            evaluation = Evaluation.from_json(text)
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"{version.ref}'s {EVALUATION_FILE} is not a Ghaf evaluation: {exc}",
                hint="register a version with a valid evaluation",
            ) from exc
    elif version.metrics:
        evaluation = evaluation_from_flat(dict(version.metrics))
        notes.append(f"evaluated on the metrics recorded with {version.ref}")
    else:
        notes.append(f"{version.ref} has no recorded evaluation or metrics")
    inspection = _scan_version(platform, version)
    return GateEvidence(
        subject=version.ref,
        evaluation=evaluation,
        signed=bool(version.signed),
        scan_findings=inspection.findings,
        approvals=[a for a in version.approvals if a != version.created_by],
        notes=inspection.notes + notes,
    )


def _scan_version(platform: Platform, version: ModelVersion) -> Inspection:
    """Inspect the version's stored files (digests checked by the store) as a loader would:
    links, metadata naming code, formats by content, pickles, custom code and its policy."""
    with scratch_dir(platform.settings.home, "gate-") as root:
        for relative, entry in sorted(version.files.items()):
            target = (root / relative).resolve()
            if not target.is_relative_to(root.resolve()):
                return Inspection(version.flavor, [f"{relative!r} escapes the model directory"])
            target.parent.mkdir(parents=True, exist_ok=True)
            platform.artifacts.get(str(entry["digest"]), target)
        return inspect_model_dir(root, code_policy=get_code_policy(platform, version.project))


def evidence_for(platform: Platform, target: str) -> GateEvidence:
    """Evidence for ``MODEL:VERSION`` (or ``MODEL@alias``) in the registry, or a directory.

    A registered version is downloaded (digests and signature verified on the way);
    its approvals come from the registry.
    """
    path = Path(target)
    if path.is_dir():
        evidence = evidence_from_dir(path, platform.settings)
        _add_inspection(evidence, path, platform)
        return evidence
    version = get_model_version(platform, target)
    with scratch_dir(platform.settings.home, "gate-") as tmp:
        dest = download_model(platform, version.ref, tmp / "model")
        evidence = evidence_from_dir(dest, None)
        inspection = inspect_model_dir(dest, code_policy=get_code_policy(platform, version.project))
    evidence.subject = version.ref
    evidence.signed = bool(version.signed)  # the download verified it or raised
    evidence.approvals = [a for a in version.approvals if a != version.created_by]
    evidence.scan_findings = inspection.findings
    evidence.notes = inspection.notes
    if evidence.evaluation is None and version.metrics:
        evidence.evaluation = evaluation_from_flat(dict(version.metrics))
        evidence.notes.append(f"evaluated on the metrics recorded with {version.ref}")
    return evidence


def _add_inspection(evidence: GateEvidence, directory: Path, platform: Platform) -> None:
    """The scan evidence of a model directory: what a loader would refuse, and its labels.

    The code policy (of the settings' project) is read only for a model with custom code,
    so a directory is checked without a platform home otherwise.
    """
    inspection = inspect_model_dir(directory)
    if inspection.code is not None:
        inspection = inspect_model_dir(directory, code_policy=get_code_policy(platform))
    evidence.scan_findings = inspection.findings
    evidence.notes = inspection.notes + evidence.notes


def evaluate_gates(
    platform: Platform,
    version: ModelVersion,
    names: Sequence[str] | None = None,
    *,
    purpose: str = "stage production",
) -> list[GateVerdict]:
    """Check gate policies on ``version`` and store their verdicts on it.

    Runs inside the governed operation that promotes the version (its transaction, so a
    refused promotion rolls the verdicts back with it; the operation's audit record keeps
    them under ``gates``). Never raises on a failing rule: see :func:`refuse_failed_gates`.

    Args:
        names: ``NAME`` or ``NAME:VERSION`` of stored policies; None: every policy attached
            to the model or its project, at the pinned version.
        purpose: what the verdict is for, e.g. ``stage production`` or ``alias champion``.
    """
    session = current_session()
    operation = current_operation()
    model, row = resolve_rows(session, ModelRef(version.name, version=version.version))
    policies = policy_rows(session, names=names, model=model.name, project=model.project)
    if not policies:
        return []
    evidence = recorded_evidence(platform, version)
    now = utcnow()
    verdicts = []
    for stored in policies:
        ref = f"{stored.name}:{stored.version}"
        rules = parse_policy(stored.text, f"gate policy {ref}").model_copy(
            update={"name": stored.name}
        )
        report = check_gate(rules, evidence)
        verdict = GateVerdict(
            policy=stored.name,
            policy_version=stored.version,
            subject=version.ref,
            passed=report.passed,
            rules=tuple(report.results),
            purpose=purpose,
            evaluated_by=operation.actor.name,
            evaluated_at=now,
        )
        session.add(
            GateVerdictRow(
                version_id=row.id,
                policy=stored.name,
                policy_version=stored.version,
                passed=verdict.passed,
                rules=json.dumps([asdict(r) for r in verdict.rules]),
                purpose=purpose,
                evaluated_by=verdict.evaluated_by,
                evaluated_at=now,
            )
        )
        verdicts.append(verdict)
    session.flush()
    row.card = with_gate_section(
        row.card, _latest_per_policy(_verdicts(session, row.id, model.name, row.version))
    )
    row.updated_at = now
    session.flush()
    operation.details["gates"] = [_summary(v) for v in verdicts]
    return verdicts


def refuse_failed_gates(verdicts: Sequence[GateVerdict]) -> None:
    """Raise when any verdict failed, naming each failing rule's measured value and threshold.

    Raises:
        PolicyViolationError: one or more gates failed.
    """
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return
    parts = []
    for verdict in failed:
        rules = "; ".join(_failure_text(r) for r in verdict.failures)
        parts.append(f"gate {verdict.policy}:{verdict.policy_version} failed: {rules}")
    subject = failed[0].subject
    raise PolicyViolationError(
        f"{subject} is refused for {failed[0].purpose}: " + " | ".join(parts),
        hint=f"ghaf gate check {subject} --policy {failed[0].policy} shows every rule",
    )


def _failure_text(rule: RuleResult) -> str:
    bar = f" (threshold {rule.threshold})" if rule.threshold else ""
    if rule.measured is None:
        return f"{rule.rule}: {rule.reason}{bar}"
    return f"{rule.rule} measured {_value(rule.measured)}{bar}"


def _value(value: float | str) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _summary(verdict: GateVerdict) -> dict[str, Any]:
    return {
        "policy": f"{verdict.policy}:{verdict.policy_version}",
        "passed": verdict.passed,
        "failed": [
            {"rule": r.rule, "threshold": r.threshold, "measured": r.measured}
            for r in verdict.failures
        ],
    }


def _verdicts(session: Any, version_id: int, name: str, number: int) -> list[GateVerdict]:
    rows = session.execute(
        select(GateVerdictRow)
        .where(GateVerdictRow.version_id == version_id)
        .order_by(GateVerdictRow.id)
    ).scalars()
    return [
        GateVerdict(
            policy=row.policy,
            policy_version=row.policy_version,
            subject=f"{name}:{number}",
            passed=row.passed,
            rules=tuple(RuleResult(**rule) for rule in json.loads(row.rules)),
            purpose=row.purpose,
            evaluated_by=row.evaluated_by,
            evaluated_at=row.evaluated_at,
        )
        for row in rows
    ]


def _latest_per_policy(verdicts: Sequence[GateVerdict]) -> list[GateVerdict]:
    latest: dict[str, GateVerdict] = {}
    for verdict in verdicts:  # oldest first, so the newest stays
        latest[verdict.policy] = verdict
    return sorted(latest.values(), key=lambda v: v.policy)


def gate_verdicts(platform: Platform, ref: str, *, latest: bool = False) -> list[GateVerdict]:
    """The verdicts stored on the version ``ref`` names, oldest first.

    Args:
        latest: only the newest verdict of each policy (what the model card shows).
    """
    with platform.read_session() as session:
        model, row = resolve_rows(session, parse_ref(ref))
        verdicts = _verdicts(session, row.id, model.name, row.version)
    return _latest_per_policy(verdicts) if latest else verdicts
