"""One model version's window of predictions judged against its reference: feature drift,
data quality, prediction drift, performance on the labels that came in, and CBPE's
estimate of it. Pure computation: what to store and alert is the caller's."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ghaf.monitoring.base import DriftOptions
from ghaf.monitoring.cbpe import estimate_binary, fit_calibration, realized_binary
from ghaf.monitoring.drift import compare_profiles
from ghaf.monitoring.prediction import score_drift
from ghaf.monitoring.profile import Profile, build_profile
from ghaf.monitoring.quality import QualityReport, check_quality
from ghaf.monitoring.records import MonitorOptions
from ghaf.monitoring.references import Reference
from ghaf.monitoring.scoring import score_vector
from ghaf.serving.predlog import PredictionWindow

MIN_COVERAGE_FOR_REALIZED = 0.5
"""Share of a window's rows with labels from which thresholds judge the realized metric
rather than the estimate."""


@dataclass
class Evaluation:
    """What one window showed (JSON-ready parts)."""

    status: str
    breaches: list[str] = field(default_factory=list)
    drifted_features: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    performance: dict[str, Any] | None = None
    labels: int = 0
    note: str = ""


def clean(value: Any) -> Any:
    """``value`` with NaN and infinities as None (JSON has neither), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return clean(value.item())
    return value


def _subset(profile: Profile, names: list[str]) -> Profile:
    """The profile over ``names`` only (the sample and its sorted columns are shared)."""
    return replace(profile, columns={n: profile.columns[n] for n in names})


def _quality_breached(report: QualityReport, options: MonitorOptions) -> list[str]:
    found = list(report.violations)
    for column in report.columns:
        found += [f"{column.column}: {p}" for p in column.problems]
        if column.out_of_range_rate > options.max_out_of_range:
            found.append(
                f"{column.column}: {column.out_of_range_rate:.1%} outside the reference range"
            )
        if column.unseen_rate > options.max_unseen:
            found.append(f"{column.column}: {column.unseen_rate:.1%} unseen categories")
    return found


def performance_of(
    scores: np.ndarray, binary: bool, labels: np.ndarray, options: MonitorOptions
) -> dict[str, Any] | None:
    """Realized metrics on the labelled rows (None without any): accuracy, ROC AUC and
    log loss of a binary classifier, else mean absolute and root mean squared error."""
    known = ~np.isnan(labels)
    if not known.any():
        return None
    p, y = scores[known], labels[known]
    if binary and np.isin(y, (0.0, 1.0)).all():
        realized = realized_binary(np.clip(p, 0.0, 1.0), y, threshold=options.threshold)
        found: dict[str, Any] = clean(asdict(realized))
        return found
    error = p - y
    return {
        "rows": int(y.size),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
    }


def performance_breaches(
    performance: dict[str, Any] | None,
    estimate: dict[str, Any] | None,
    coverage: float,
    options: MonitorOptions,
) -> list[str]:
    """Which thresholds the realized metric (enough labels) or else the estimate fails."""
    source = performance if performance and coverage >= MIN_COVERAGE_FOR_REALIZED else estimate
    if not source:
        return []
    found = []
    what = "realized" if source is performance else "estimated"
    for key, floor in (("accuracy", options.min_accuracy), ("roc_auc", options.min_auc)):
        value = source.get(key)
        if floor is not None and value is not None and value < floor:
            found.append(f"{what} {key} {value:.3f} < {floor}")
    return found


def evaluate_window(
    window: PredictionWindow,
    reference: Reference,
    labels: np.ndarray,
    options: MonitorOptions,
    *,
    name: str,
) -> Evaluation:
    """Judge ``window`` (``labels``: one per row, NaN where none came in yet)."""
    if reference.features is None:
        return Evaluation("no reference", note=reference.note)
    if window.rows < options.min_rows:
        return Evaluation(
            "insufficient data",
            labels=int((~np.isnan(labels)).sum()),
            note=f"{window.rows} predictions, fewer than min_rows={options.min_rows}",
        )
    columns = window.features.column_names
    shared = [c for c in reference.features.columns if c in columns]
    notes = [reference.note] if reference.note else []
    unknown = [c for c in columns if c not in reference.features.columns]
    if unknown:
        notes.append(f"not in the reference, not compared: {', '.join(unknown)}")
    reference_profile = _subset(reference.features, shared)
    current = window.features.select(shared)
    drift = compare_profiles(
        reference_profile,
        build_profile(current, seed=0),
        DriftOptions(alpha=options.alpha, domain_classifier=False),
        reference_name=reference.feature_ref or "reference",
        current_name=name,
    )
    drifted = [
        c.column
        for c in drift.columns
        if c.drifted and c.distances.get("psi", 0.0) >= options.min_psi
    ]
    quality = check_quality(
        current, reference=reference_profile, max_missing_increase=options.max_missing_increase
    )
    quality_problems = _quality_breached(quality, options)
    report: dict[str, Any] = {
        "reference": reference.feature_ref,
        "reference_scores": reference.scores_ref,
        "drift": {
            "alpha": options.alpha,
            "min_psi": options.min_psi,
            "reference_rows": drift.reference_rows,
            "columns": [
                {
                    "column": c.column,
                    "kind": c.kind,
                    "method": c.method,
                    "verdict": c.verdict,
                    "statistic": c.statistic,
                    "adjusted_p": c.adjusted_p,
                    "psi": c.distances.get("psi"),
                    "js": c.distances.get("js"),
                    "alarm": c.column in drifted,
                    "note": c.note,
                }
                for c in drift.columns
            ],
        },
        "quality": {**quality.to_dict(), "problems": quality_problems},
        "prediction_drift": None,
        "estimate": None,
        "binary": False,
    }
    breaches = []
    if drifted:
        breaches.append("drift")
    if quality_problems:
        breaches.append("quality")
    scored = score_vector(window.outputs)
    labelled = int((~np.isnan(labels)).sum())
    performance = None
    if scored is not None:
        scores, binary = scored
        report["binary"] = binary
        if reference.scores is not None and reference.scores.size:
            moved = score_drift(reference.scores, scores, alpha=options.alpha)
            flagged = moved.drifted and moved.psi >= options.min_psi
            report["prediction_drift"] = {**asdict(moved), "alarm": flagged}
            if flagged:
                breaches.append("prediction_drift")
        performance = performance_of(scores, binary, labels, options)
        if binary and np.all((scores >= 0) & (scores <= 1)):
            known = ~np.isnan(labels)
            calibration = (
                fit_calibration(scores[known], labels[known])
                if np.isin(labels[known], (0.0, 1.0)).all()
                else None
            )
            estimate = estimate_binary(scores, threshold=options.threshold, calibration=calibration)
            report["estimate"] = asdict(estimate)
        coverage = labelled / window.rows if window.rows else 0.0
        if performance_breaches(performance, report["estimate"], coverage, options):
            breaches.append("performance")
    return Evaluation(
        "breached" if breaches else "ok",
        breaches=breaches,
        drifted_features=drifted,
        report=clean(report),
        performance=performance,
        labels=labelled,
        note="; ".join(notes),
    )
