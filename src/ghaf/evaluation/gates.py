"""Gates: check a model's evidence against a policy; one readable reason per rule; JUnit XML.

Pure: the evidence comes from a model directory or from the caller (the registry builds
it from a registered version in ``ghaf.registry.gates``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET  # nosec B405 - only writes XML

from ghaf.errors import GhafError, InvalidInputError, NotFoundError
from ghaf.evaluation.evaluate import EVALUATION_FILE, Evaluation
from ghaf.evaluation.policy import Bound, GatePolicy
from ghaf.security.pickles import check_pickle_file
from ghaf.security.signing import verify_model_dir
from ghaf.settings import GhafSettings

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


@dataclass
class GateEvidence:
    """What a gate looks at for one model: its evaluation, signature, scan and approvals."""

    subject: str
    evaluation: Evaluation | None
    signed: bool | None = None
    """True: a signature verified; False: none or broken; None: cannot tell."""
    scan_findings: list[str] = field(default_factory=list)
    approvals: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome with the reason in words, the threshold and the measured value."""

    rule: str
    passed: bool
    reason: str
    threshold: str | None = None
    """The bar in words, e.g. ``>= 0.75`` or ``signed``."""
    measured: float | str | None = None
    """What the evidence showed (None: missing from the evaluation)."""


@dataclass
class GateReport:
    """All rules of a policy checked against one subject."""

    policy: str
    subject: str
    results: list[RuleResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.results if not r.passed]

    def to_junit(self) -> str:
        """JUnit XML: one testsuite (the policy), one testcase per rule."""
        suite = ET.Element(
            "testsuite",
            name=f"gate:{self.policy}",
            tests=str(len(self.results)),
            failures=str(len(self.failures)),
            errors="0",
        )
        for result in self.results:
            case = ET.SubElement(suite, "testcase", classname=self.subject, name=result.rule)
            if not result.passed:
                ET.SubElement(case, "failure", message=result.reason).text = result.reason
            else:
                ET.SubElement(case, "system-out").text = result.reason
        suites = ET.Element("testsuites")
        suites.append(suite)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _threshold(bound: Bound) -> str:
    if bound.min is not None and bound.max is not None:
        return f"{bound.min:g} <= x <= {bound.max:g}"
    return f">= {bound.min:g}" if bound.min is not None else f"<= {bound.max:g}"


def _bound(rule: str, value: float | None, bound: Bound) -> RuleResult:
    bar = _threshold(bound)
    if value is None or math.isnan(value):
        return RuleResult(rule, False, f"{rule} is missing from the evaluation", bar)
    value = float(value)
    if bound.min is not None and value < bound.min:
        reason = f"{rule} = {value:.4g} is below the minimum {bound.min:g}"
        return RuleResult(rule, False, reason, bar, value)
    if bound.max is not None and value > bound.max:
        reason = f"{rule} = {value:.4g} is above the maximum {bound.max:g}"
        return RuleResult(rule, False, reason, bar, value)
    return RuleResult(rule, True, f"{rule} = {value:.4g} within bounds", bar, value)


def check_gate(policy: GatePolicy, evidence: GateEvidence) -> GateReport:
    """Check every rule of ``policy``; never raises on a failing rule (see the report)."""
    results: list[RuleResult] = []
    evaluation = evidence.evaluation
    flat = evaluation.flat_metrics() if evaluation is not None else {}
    for name, bound in policy.metrics.items():
        results.append(_bound(f"metric {name}", flat.get(name), bound))
    fairness = evaluation.fairness if evaluation is not None else {}
    for name, bound in policy.fairness.items():
        attribute, _, measure = name.rpartition(".")
        targets = [attribute] if attribute else sorted(fairness)
        if not targets:
            results.append(
                RuleResult(
                    f"fairness {name}",
                    False,
                    "the evaluation has no fairness results",
                    _threshold(bound),
                )
            )
        for target in targets:
            value = fairness.get(target, {}).get(measure)
            results.append(_bound(f"fairness {target}.{measure}", value, bound))
    if policy.champion is not None:
        results.append(_champion(policy, evaluation))
    need = policy.require
    if need.signature:
        ok = evidence.signed is True
        reason = "signature verified" if ok else "the model is not signed (or did not verify)"
        measured = {True: "signed", False: "not signed", None: "unknown"}[evidence.signed]
        results.append(RuleResult("signature", ok, reason, "signed", measured))
    if need.clean_scan:
        findings = len(evidence.scan_findings)
        if findings:
            reason = "; ".join(evidence.scan_findings)
            results.append(RuleResult("clean scan", False, reason, "0 findings", findings))
        else:
            results.append(
                RuleResult("clean scan", True, "no unsafe content found", "0 findings", 0)
            )
    if need.approvals:
        count = len(set(evidence.approvals))
        results.append(
            RuleResult(
                "approvals",
                count >= need.approvals,
                f"{count} approval(s) of {need.approvals} required"
                + (f" ({', '.join(sorted(set(evidence.approvals)))})" if count else ""),
                f">= {need.approvals}",
                count,
            )
        )
    return GateReport(policy.name, evidence.subject, results)


def _champion(policy: GatePolicy, evaluation: Evaluation | None) -> RuleResult:
    rule = policy.champion
    if rule is None:
        return RuleResult("champion", True, "the policy has no champion rule")
    bar = f"{rule.metric} CI low > {rule.min_improvement:+g} at {rule.confidence:.0%}"
    comparison = evaluation.comparison if evaluation is not None else None
    if comparison is None:
        if rule.allow_no_champion:
            return RuleResult("champion", True, "no champion to compare against", bar)
        return RuleResult("champion", False, "the evaluation has no champion comparison", bar)
    # Flat metrics stored on a version keep numbers only: the metric's name may be gone.
    metric = comparison.get("metric")
    if metric != rule.metric:
        said = f"is on {metric}" if metric else "does not name its metric"
        return RuleResult(
            "champion", False, f"the comparison {said}, the policy asks for {rule.metric}", bar
        )
    confidence = float(comparison.get("confidence", 0.0))
    if confidence < rule.confidence:
        return RuleResult(
            "champion",
            False,
            f"the comparison's confidence {confidence:g} is below the policy's {rule.confidence:g}",
            bar,
        )
    low = float(comparison["ci_low"])
    text = (
        f"{rule.metric} improvement {comparison['improvement']:+.4g} "
        f"({confidence:.0%} CI {low:+.4g} to {comparison['ci_high']:+.4g})"
    )
    if low <= rule.min_improvement:
        return RuleResult(
            "champion",
            False,
            f"{text}: the interval does not lie above the required {rule.min_improvement:+g}",
            bar,
            low,
        )
    return RuleResult("champion", True, text, bar, low)


def _scan_dir(directory: Path) -> list[str]:
    findings = []
    for path in sorted(directory.rglob("*")):
        if path.suffix not in PICKLE_SUFFIXES:
            continue
        try:
            check_pickle_file(path)
        except GhafError as exc:
            findings.append(f"{path.name}: {exc.headline}")
    return findings


def _verify_signature(settings: GhafSettings | None, directory: Path) -> bool | None:
    if not (directory / "model.sig").is_file():
        return False
    if settings is None:
        return None
    try:
        verify_model_dir(settings, directory)
    except Exception:  # noqa: BLE001 - any failure to verify is "not signed"
        return False
    return True


def evidence_from_dir(directory: Path, settings: GhafSettings | None = None) -> GateEvidence:
    """Evidence for a model directory: its ``evaluation.json``, signature and pickle scan.

    With ``settings`` the signature is verified against the platform's trusted keys;
    without, a present signature reads as "cannot tell".
    """
    if not directory.is_dir():
        raise NotFoundError(
            f"model directory {directory} does not exist",
            hint="pass MODEL:VERSION of a registered model or a model directory",
        )
    path = directory / EVALUATION_FILE
    evaluation = None
    notes = []
    if path.is_file():
        try:
            evaluation = Evaluation.from_json(path.read_text())
        except (ValueError, TypeError) as exc:
            raise InvalidInputError(
                f"{path} is not a Ghaf evaluation: {exc}", hint="re-run the evaluation"
            ) from exc
    else:
        notes.append(f"no {EVALUATION_FILE} in {directory}")
    return GateEvidence(
        subject=str(directory),
        evaluation=evaluation,
        signed=_verify_signature(settings, directory),
        scan_findings=_scan_dir(directory),
        notes=notes,
    )


def evaluation_from_flat(metrics: dict[str, float], task: str = "classification") -> Evaluation:
    """Rebuild an :class:`Evaluation` from flat metrics (as stored on a registered version)."""
    plain: dict[str, float] = {}
    fairness: dict[str, dict[str, Any]] = {}
    comparison: dict[str, Any] = {}
    robust: dict[str, float] = {}
    for key, value in metrics.items():
        head, _, rest = key.partition(".")
        if head == "fairness" and "." in rest:
            attribute, _, measure = rest.rpartition(".")
            fairness.setdefault(attribute, {})[measure] = value
        elif head == "comparison" and rest:
            comparison[rest] = value
        elif head == "robustness" and rest:
            robust[rest] = value
        else:
            plain[key] = value
    return Evaluation(
        task=task,
        metrics=plain,
        fairness=fairness,
        robustness=robust,
        comparison=comparison or None,
    )
