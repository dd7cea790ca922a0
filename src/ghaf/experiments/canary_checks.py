"""A canary's guardrails judged on one window of evidence, and the decision they make.

Each check ends ``pass``, ``breach``, ``inconclusive``, ``missing`` or ``nan``. A breach
needs evidence at the plan's confidence (a score bound past the threshold, and at least
:data:`MIN_BREACH_EVENTS` bad requests), so a rollback is never a coin flip; a pass
needs the step's samples and the measured value within its threshold (for quality: a
bound within it, as a non-inferiority test). The bounds are fixed-sample ones looked at
every window: a candidate right at a threshold may be rolled back by chance more often
than ``1 - confidence`` over a long step; one clearly inside it is not.
The decision fails closed, in this order:

1. any breach: **rollback** (whatever else is missing);
2. no traffic, a source that gave nothing, or a NaN: **pause** (never advance);
3. paused by a person or by an earlier gap: **hold** until resumed;
4. anything inconclusive (too few samples, too little time, labels pending): **hold**;
5. all pass: **advance** to the next step, or at the last one **promote** (which the
   release policy may turn into awaiting approval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.experiments.canary_evidence import Evidence, Side
from ghaf.experiments.canary_records import PAUSED, Check
from ghaf.experiments.rollout import QualitySLO, RolloutPlan
from ghaf.experiments.stats.proportions import newcombe_difference, wilson_interval
from ghaf.monitoring.prediction import score_drift

MIN_DRIFT_SAMPLES = 20
"""Fewest scores per side before a drift breach can be called (PSI is biased upward on
tiny samples)."""
MIN_BREACH_EVENTS = 3
"""Fewest failed (or slow) requests a breach rests on: one stray error in the first few
requests is evidence by the bound alone, but not the kind to roll back for."""
P99_SHARE = 0.01
"""p99 <= T  <=>  at most 1 % of answers take longer than T."""


@dataclass(frozen=True)
class Verdict:
    """What the checks decide: the action and every reason for it."""

    action: str
    reasons: list[str]


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def traffic_check(evidence: Evidence) -> Check:
    side = evidence.canary
    counted = side.requests if side.requests is not None else float(side.predictions)
    samples = side.samples()
    if not math.isfinite(counted):
        return Check("traffic", "nan", None, None, "the request counter is NaN", samples)
    if counted <= 0 and side.predictions == 0:
        return Check(
            "traffic", "missing", 0.0, None, "no traffic reached the candidate in the window",
            samples,
        )  # fmt: skip
    return Check("traffic", "pass", counted, None, f"{counted:.0f} requests", samples)


def step_check(evidence: Evidence, plan: RolloutPlan) -> Check:
    elapsed = (evidence.window_end - evidence.window_start).total_seconds()
    n = evidence.canary.predictions
    short = []
    if n < plan.min_samples:
        short.append(f"{n} of {plan.min_samples} answers")
    if elapsed < plan.min_time_s:
        short.append(f"{elapsed:.0f} s of {plan.min_time_s:.0f} s")
    status = "inconclusive" if short else "pass"
    detail = "the step needs " + " and ".join(short) if short else "the step has its samples"
    return Check("step", status, float(n), float(plan.min_samples), detail, {"predictions": n})


def error_rate_check(evidence: Evidence, plan: RolloutPlan, limit: float) -> Check:
    side, name = evidence.canary, "error_rate"
    if "metrics" in evidence.problems:
        return Check(name, "missing", None, limit, evidence.problems["metrics"], source="metrics")
    n, errors = side.requests, side.errors
    if n is None or errors is None or not (math.isfinite(n) and math.isfinite(errors)):
        return Check(name, "nan", None, limit, "a request counter is NaN", source="metrics")
    samples = {"requests": int(n), "errors": int(errors)}
    if n <= 0:
        if side.predictions > 0:
            detail = f"the metrics count no request of the candidate, the log {side.predictions}"
            return Check(name, "missing", None, limit, detail, samples, source="metrics")
        return Check(name, "inconclusive", None, limit, "no request yet", samples, source="metrics")
    rate = errors / n
    low, _ = wilson_interval(int(errors), int(n), plan.alpha)
    if low > limit and errors >= MIN_BREACH_EVENTS:
        status = "breach"
    elif n >= plan.min_samples and rate <= limit:
        status = "pass"
    else:
        status = "inconclusive"
    detail = f"{errors:.0f} of {n:.0f} requests failed ({rate:.2%}; lower bound {low:.2%})"
    return Check(name, status, rate, limit, detail, samples, low, "metrics")


def latency_check(evidence: Evidence, plan: RolloutPlan, limit: float) -> Check:
    name = "p99_latency_ms"
    if "prediction_log" in evidence.problems:
        problem = evidence.problems["prediction_log"]
        return Check(name, "missing", None, limit, problem, source="prediction_log")
    values = evidence.canary.latencies_ms
    n = int(values.size)
    if n == 0:
        return Check(name, "inconclusive", None, limit, "no answer logged yet", {"answers": 0})
    if np.isnan(values).any():
        return Check(name, "nan", None, limit, "a logged latency is NaN", {"answers": n})
    p99 = float(np.quantile(values, 0.99))
    over = int((values > limit).sum())
    low, _ = wilson_interval(over, n, plan.alpha)
    if low > P99_SHARE and over >= MIN_BREACH_EVENTS:
        status = "breach"
    elif n >= plan.min_samples and p99 <= limit:
        status = "pass"
    else:
        status = "inconclusive"
    detail = f"p99 {p99:.4g} ms; {over} of {n} answers over {limit:g} ms (lower bound {low:.2%})"
    samples = {"answers": n, "over": over}
    return Check(name, status, p99, limit, detail, samples, low, "prediction_log")


def _labels_check(canary: Side, champion: Side, quality: QualitySLO, alpha: float) -> Check:
    samples = {"canary_labels": canary.labelled, "champion_labels": champion.labelled}
    value = canary.successes / canary.labelled
    reference = champion.successes / champion.labelled
    diff, low, high = newcombe_difference(
        canary.successes, canary.labelled, champion.successes, champion.labelled, alpha
    )
    floor_low, floor_high = wilson_interval(canary.successes, canary.labelled, alpha)
    breach = high < -quality.max_drop
    ok = low >= -quality.max_drop
    detail = (
        f"{quality.kind} {value:.4g} vs the champion's {reference:.4g}: difference "
        f"{diff:+.4g} [{low:+.4g}, {high:+.4g}], tolerated -{quality.max_drop:g}"
    )
    if quality.min_value is not None:
        breach = breach or floor_high < quality.min_value
        ok = ok and floor_low >= quality.min_value
        detail += f"; floor {quality.min_value:g} (bounds {floor_low:.4g}..{floor_high:.4g})"
    status = "breach" if breach else "pass" if ok else "inconclusive"
    bound = high if breach else low
    threshold = reference - quality.max_drop
    return Check("quality", status, value, threshold, detail, samples, bound, "labels")


def _drift_check(
    canary: Side, champion: Side, quality: QualitySLO, plan: RolloutPlan, pending: str
) -> Check:
    limit = quality.max_psi
    samples = {
        "canary_scores": int(canary.scores.size),
        "champion_scores": int(champion.scores.size),
    }
    if limit is None:
        return Check("quality", "inconclusive", None, None, pending, samples, source="labels")
    for who, side in (("candidate", canary), ("champion", champion)):
        bad = int(np.isnan(side.scores).sum())
        if bad:
            detail = f"{bad} of the {who}'s {side.scores.size} scores are NaN"
            return Check("quality", "nan", None, limit, detail, samples, source="drift")
    if min(canary.scores.size, champion.scores.size) < MIN_DRIFT_SAMPLES:
        detail = f"{pending}; too few scores for the drift estimate"
        return Check("quality", "inconclusive", None, limit, detail, samples, source="drift")
    try:
        drift = score_drift(champion.scores, canary.scores, alpha=1.0 - plan.confidence)
    except InvalidInputError as exc:
        return Check("quality", "nan", None, limit, exc.headline, samples, source="drift")
    psi = _finite(drift.psi)
    if psi is None or not math.isfinite(drift.p_value):
        return Check(
            "quality", "nan", None, limit, "the drift estimate is NaN", samples, source="drift"
        )
    detail = (
        f"{pending}; score PSI {psi:.4g} (KS {drift.ks_statistic:.4g}, p {drift.p_value:.3g}) "
        f"against the champion, tolerated {limit:g}"
    )
    if psi > limit and drift.p_value < 1.0 - plan.confidence:
        status = "breach"
    elif psi <= limit and canary.scores.size >= plan.min_samples:
        status = "pass"
    else:
        status = "inconclusive"
    return Check("quality", status, psi, limit, detail, samples, drift.p_value, "drift")


def quality_check(
    evidence: Evidence, plan: RolloutPlan, quality: QualitySLO, *, last_step: bool
) -> Check:
    canary, champion = evidence.canary, evidence.champion
    if "prediction_log" in evidence.problems:
        problem = evidence.problems["prediction_log"]
        return Check("quality", "missing", None, None, problem, source="prediction_log")
    if min(canary.labelled, champion.labelled) >= quality.min_labels:
        return _labels_check(canary, champion, quality, plan.alpha)
    pending = (
        f"labels pending ({canary.labelled} of the candidate's, {champion.labelled} of the "
        f"champion's; {quality.min_labels} each needed)"
    )
    if canary.not_labels:
        pending += f"; {canary.not_labels} outcomes are not {quality.kind} labels"
    check = _drift_check(canary, champion, quality, plan, pending)
    if last_step and quality.labels_to_promote and check.status == "pass":
        detail = f"promotion needs labels: {pending}"
        return Check("quality", "inconclusive", check.value, check.threshold, detail,
                     check.samples, check.bound, check.source)  # fmt: skip
    return check


def run_checks(evidence: Evidence, plan: RolloutPlan, *, last_step: bool) -> list[Check]:
    """Every guardrail of ``plan`` on ``evidence``, plus traffic, the step's samples and
    the deployment's routing."""
    checks = [traffic_check(evidence), step_check(evidence, plan)]
    if "routing" in evidence.problems:
        checks.append(Check("routing", "missing", None, None, evidence.problems["routing"]))
    if plan.max_error_rate is not None:
        checks.append(error_rate_check(evidence, plan, plan.max_error_rate))
    if plan.max_p99_ms is not None:
        checks.append(latency_check(evidence, plan, plan.max_p99_ms))
    if plan.quality is not None:
        checks.append(quality_check(evidence, plan, plan.quality, last_step=last_step))
    return checks


def decide(checks: list[Check], status: str, *, last_step: bool) -> Verdict:
    """The action the checks call for on a canary in ``status`` (see the module)."""
    breaches = [c for c in checks if c.status == "breach"]
    if breaches:
        return Verdict("rollback", [f"{c.name} breached: {c.detail}" for c in breaches])
    gaps = [c for c in checks if c.status in ("missing", "nan")]
    if gaps:
        reasons = [f"{c.name} {c.status}: {c.detail}" for c in gaps]
        return Verdict("hold" if status == PAUSED else "pause", reasons)
    if status == PAUSED:
        return Verdict("hold", ["paused: a person resumes it (ghaf experiments canary resume)"])
    waits = [c for c in checks if c.status == "inconclusive"]
    if waits:
        return Verdict("hold", [f"{c.name}: {c.detail}" for c in waits])
    passed = [f"{c.name} passed: {c.detail}" for c in checks if c.name != "traffic"]
    return Verdict("promote" if last_step else "advance", passed)
