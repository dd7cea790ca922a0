"""From test results to a verdict, failing closed.

Rules, in order (each adds its reason to the decision):

1. A guardrail (latency, error rate, a model-quality metric) whose interval lies wholly
   on the worse side of its tolerated margin **stops** the experiment: stopping is always
   safe, so this holds even when the evidence is otherwise blocked.
2. No sample-ratio check, a mismatch (p < 0.001), or a NaN anywhere in the goal or a
   guardrail **blocks**: the data is broken and no verdict may rest on it.
3. No goal data, under two units in a variant, or no spread at all (every value the
   same, so no standard error): **keep running**.
4. The goal (its p-value Holm- or BH-adjusted with any secondary metrics) significantly
   worse: **stop**; significantly better: **ship**, only if every guardrail has data
   and passes and, for a fixed-horizon test, the planned sample size is reached.
5. Otherwise **keep running**, or **stop** once the planned (maximum) sample size is
   reached with no significant lift.

Nothing missing, NaN or empty ever ships.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ghaf.experiments.stats.fixed import FixedResult
from ghaf.experiments.stats.groups import check_alpha, jsonable
from ghaf.experiments.stats.multiple import Adjusted, Method, adjust
from ghaf.experiments.stats.sequential import SequentialResult
from ghaf.experiments.stats.srm import SrmResult

TestResult = FixedResult | SequentialResult
Verdict = Literal["ship", "stop", "keep_running", "blocked"]


@dataclass(frozen=True)
class Guardrail:
    """A metric that must not get worse, kept apart from the goal.

    ``result`` None means the metric is missing. ``margin`` is the worsening tolerated,
    in the metric's own unit (e.g. 5 ms of latency); the guardrail is breached when the
    whole interval of the lift lies beyond it on the worse side.
    """

    name: str
    result: TestResult | None
    higher_is_better: bool = False
    margin: float = 0.0


@dataclass(frozen=True)
class GuardrailCheck:
    """How one guardrail stood: ok, breach, no_data or invalid, and why."""

    name: str
    status: Literal["ok", "breach", "no_data", "invalid"]
    reason: str
    higher_is_better: bool
    margin: float
    result: TestResult | None


@dataclass(frozen=True)
class Decision:
    """The verdict, its reasons, and every value, p-value, interval and sample size used."""

    verdict: Verdict
    reasons: tuple[str, ...]
    goal_name: str
    goal: TestResult | None
    goal_higher_is_better: bool
    goal_p_value_used: float | None
    correction: Adjusted | None
    guardrails: tuple[GuardrailCheck, ...]
    srm: SrmResult | None
    alpha: float
    planned_n: int | None
    sample_sizes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def _numbers(result: TestResult) -> tuple[float, ...]:
    return (result.absolute_lift, result.p_value, result.ci.low, result.ci.high)


State = Literal["empty", "broken", "flat", "ok"]


def _state(result: TestResult) -> State:
    """empty: under two units in a variant; broken: a NaN or infinity among the data's
    means and variances; flat: finite data with no spread (every value the same in each
    variant), so the test has no standard error; ok otherwise."""
    c, t = result.control, result.treatment
    if min(c.n, t.n) < 2:
        return "empty"
    if not all(math.isfinite(v) for v in (c.mean, c.variance, t.mean, t.variance)):
        return "broken"
    if not all(math.isfinite(v) for v in _numbers(result)):
        return "flat"
    return "ok"


def check_guardrail(guardrail: Guardrail) -> GuardrailCheck:
    """Judge one guardrail on its own (no correction: a guardrail errs toward stopping).

    A flat guardrail (say no errors at all in either variant) has an exact lift, judged
    against the margin as it is."""
    g, r = guardrail, guardrail.result

    def made(status: Literal["ok", "breach", "no_data", "invalid"], why: str) -> GuardrailCheck:
        return GuardrailCheck(g.name, status, why, g.higher_is_better, g.margin, r)

    state = "empty" if r is None else _state(r)
    if r is None or state == "empty":
        return made("no_data", f"guardrail {g.name} has no data (under two units in a variant)")
    if state == "broken":
        return made("invalid", f"guardrail {g.name} is not a number (NaN): fix its data")
    flat = state == "flat"
    if g.higher_is_better:
        bound = r.absolute_lift if flat else r.ci.high
        breach, side = bound < -g.margin, "below"
    else:
        bound = r.absolute_lift if flat else r.ci.low
        breach, side = bound > g.margin, "above"
    limit = -g.margin if g.higher_is_better else g.margin
    what = "the exact lift (no spread in either variant)" if flat else "the lift's interval bound"
    if breach:
        return made(
            "breach",
            f"guardrail {g.name} breached: {what} {bound:.6g} lies {side} the tolerated "
            f"{limit:.6g}",
        )
    return made("ok", f"guardrail {g.name} holds ({what} {bound:.6g} vs {limit:.6g})")


def decide(
    goal: TestResult | None,
    guardrails: Sequence[Guardrail] = (),
    *,
    srm: SrmResult | None,
    goal_name: str = "goal",
    higher_is_better: bool = True,
    secondary: Mapping[str, TestResult] | None = None,
    correction: Method = "holm",
    planned_n: int | None = None,
    alpha: float = 0.05,
) -> Decision:
    """Decide on an experiment from its goal, guardrails and sample-ratio check.

    ``planned_n`` is the units per variant the test was planned for: a fixed-horizon
    test decides only there; either test stops there without a significant lift.
    """
    check_alpha(alpha)
    checks = tuple(check_guardrail(g) for g in guardrails)
    reasons: list[str] = [c.reason for c in checks]
    sizes = (
        {goal.control.name: goal.control.n, goal.treatment.name: goal.treatment.n}
        if goal is not None
        else {}
    )

    def made(
        verdict: Verdict, p_used: float | None = None, adjusted: Adjusted | None = None
    ) -> Decision:
        return Decision(
            verdict=verdict,
            reasons=tuple(reasons),
            goal_name=goal_name,
            goal=goal,
            goal_higher_is_better=higher_is_better,
            goal_p_value_used=p_used,
            correction=adjusted,
            guardrails=checks,
            srm=srm,
            alpha=alpha,
            planned_n=planned_n,
            sample_sizes=sizes,
        )

    if any(c.status == "breach" for c in checks):
        return made("stop")
    if srm is None:
        reasons.insert(0, "no sample-ratio check: a decision needs the variants' unit counts")
        return made("blocked")
    if srm.mismatch:
        reasons.insert(
            0,
            f"sample-ratio mismatch: counts {dict(zip(srm.variants, srm.counts, strict=True))} "
            f"against planned weights {dict(zip(srm.variants, srm.weights, strict=True))}, "
            f"chi-square p = {srm.p_value:.3g} < {srm.threshold}: fix assignment or logging",
        )
        return made("blocked")
    state = "empty" if goal is None else _state(goal)
    if goal is None or state == "empty":
        reasons.insert(0, f"goal {goal_name} has under two units in some variant yet")
        return made("keep_running")
    if state == "broken" or any(c.status == "invalid" for c in checks):
        if state == "broken":
            reasons.insert(0, f"goal {goal_name} is not a number (NaN): fix its data")
        return made("blocked")
    family = {goal_name: goal, **(secondary or {})}
    broken = [n for n, r in family.items() if _state(r) == "broken"]
    if broken:
        reasons.insert(0, f"metrics {broken} are not numbers (NaN): fix their data")
        return made("blocked")
    unready = [n for n, r in family.items() if _state(r) != "ok"]
    if unready:
        reasons.insert(
            0, f"metrics {unready} have too few units or no spread yet: no test is possible"
        )
        return made("keep_running")
    adjusted = adjust(
        [r.p_value for r in family.values()], method=correction, alpha=alpha, names=list(family)
    )
    p_used = adjusted.adjusted[0]
    reached = planned_n is not None and min(goal.control.n, goal.treatment.n) >= planned_n
    better = (goal.absolute_lift > 0) == higher_is_better
    label = (
        f"goal {goal_name}: lift {goal.absolute_lift:.6g}, "
        f"p = {p_used:.4g} ({correction} over {len(family)})"
    )
    if p_used <= alpha and not better:
        reasons.insert(0, f"{label}: significantly worse")
        return made("stop", p_used, adjusted)
    if p_used <= alpha:
        if isinstance(goal, FixedResult) and planned_n is not None and not reached:
            reasons.insert(
                0,
                f"{label}: a fixed-horizon test decides only at its planned {planned_n} units "
                "per variant (looking earlier inflates errors; use the sequential test)",
            )
            return made("keep_running", p_used, adjusted)
        missing = [c.name for c in checks if c.status == "no_data"]
        if missing:
            reasons.insert(
                0, f"{label}: significantly better, but guardrails {missing} have no data"
            )
            return made("keep_running", p_used, adjusted)
        reasons.insert(0, f"{label}: significantly better and every guardrail holds")
        return made("ship", p_used, adjusted)
    if reached:
        reasons.insert(
            0, f"{label}: no significant lift at the planned {planned_n} units per variant"
        )
        return made("stop", p_used, adjusted)
    reasons.insert(0, f"{label}: not significant at alpha {alpha} yet")
    return made("keep_running", p_used, adjusted)
