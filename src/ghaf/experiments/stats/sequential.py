"""An always-valid test: the mixture sequential probability ratio test (mSPRT).

Johari, Koomen, Pekelis and Walsh, "Always Valid Inference: Continuous Monitoring of A/B
Tests" (Operations Research, 2022). For the lift estimate D with variance V (the sum of
each variant's variance over its units) and a normal mixing distribution N(0, tau^2)
over the true lift, the mixture likelihood ratio against "no lift" is

    L = sqrt(V / (V + tau^2)) * exp(tau^2 D^2 / (2 V (V + tau^2)))

Under no lift L is a martingale, so by Ville's inequality the always-valid p-value
``min over looks of 1/L`` stays below alpha with probability at most alpha however
often and whenever one looks; the set of lifts theta with L(theta) < 1/alpha is a
confidence sequence:

    D +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V)))

intersected over the looks. A decision is made only when the always-valid p < alpha.

**Mixing variance tau^2** (a setting, ``tau2``): the squared size of the lifts one
expects. A tau near the true lift decides fastest; too small or too large only slows
the test, it never breaks its validity. Default: ``(effect_size * pooled_sd)^2`` with
``effect_size`` 0.1, a lift of a tenth of a unit's standard deviation (for a 10%
conversion rate, tau = 0.03: three percentage points). The plug-in variances make the
guarantee asymptotic (Johari et al., section 4), which the A/A simulation checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.fixed import Interval, a, relative_lift_arrays
from ghaf.experiments.stats.groups import GroupStats, check_alpha, jsonable, number

Array = npt.NDArray[np.float64]
DEFAULT_EFFECT_SIZE = 0.1
"""Default tau as a fraction of the pooled per-unit standard deviation."""


@dataclass(frozen=True)
class SequentialResult:
    """Every number one look of the mSPRT used and produced."""

    test: str
    control: GroupStats
    treatment: GroupStats
    alpha: float
    tau2: float
    absolute_lift: float
    variance: float
    """V: the variance of the lift estimate at this look."""
    likelihood_ratio: float
    p_value: float
    """Always valid: the smallest 1/L over this and the earlier looks (capped at 1)."""
    ci: Interval
    """The confidence sequence at this look, intersected with the earlier looks'."""
    relative_lift: float
    relative_ci: Interval
    looks: int
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> SequentialResult:
        """Back from :meth:`to_dict`: a stored look, to pass as the next look's history."""
        return cls(
            test=str(record["test"]),
            control=GroupStats.from_dict(record["control"]),
            treatment=GroupStats.from_dict(record["treatment"]),
            alpha=float(record["alpha"]),
            tau2=number(record["tau2"]),
            absolute_lift=number(record["absolute_lift"]),
            variance=number(record["variance"]),
            likelihood_ratio=number(record["likelihood_ratio"]),
            p_value=number(record["p_value"]),
            ci=Interval.from_dict(record["ci"]),
            relative_lift=number(record["relative_lift"]),
            relative_ci=Interval.from_dict(record["relative_ci"]),
            looks=int(record["looks"]),
            significant=bool(record["significant"]),
        )


def log_likelihood_ratio(lift: Array, variance: Array, tau2: Array | float) -> Array:
    """log L of the normal-mixture SPRT against no lift (arrays broadcast)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = variance + tau2
        out = 0.5 * np.log(variance / total) + tau2 * lift**2 / (2 * variance * total)
    return np.asarray(out, dtype=np.float64)


def always_valid_p(log_lr: Array, axis: int = -1) -> Array:
    """Running always-valid p-values along ``axis`` (the looks): min(1, min 1/L so far).

    NaN looks (no data yet) leave the running value where it was."""
    p = np.minimum(1.0, np.exp(-np.nan_to_num(log_lr, nan=-np.inf)))
    return np.asarray(np.minimum.accumulate(p, axis=axis), dtype=np.float64)


def half_width(variance: Array, tau2: Array | float, alpha: float) -> Array:
    """Half-width of the confidence sequence at each look (before intersecting)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = variance + tau2
        width = np.sqrt(
            variance * total / tau2 * (2 * math.log(1 / alpha) + np.log(total / variance))
        )
    return np.asarray(width, dtype=np.float64)


def mixing_variance(
    control: GroupStats,
    treatment: GroupStats,
    *,
    tau2: float | None = None,
    effect_size: float = DEFAULT_EFFECT_SIZE,
) -> float:
    """The tau^2 to use: ``tau2`` when given, else ``(effect_size * pooled_sd)^2``."""
    if tau2 is not None:
        if not (math.isfinite(tau2) and tau2 > 0):
            raise InvalidInputError(
                f"tau2 {tau2} must be a positive number", hint="e.g. --tau2 0.0009"
            )
        return tau2
    dof = control.n + treatment.n - 2
    if dof <= 0:
        return math.nan
    pooled = ((control.n - 1) * control.variance + (treatment.n - 1) * treatment.variance) / dof
    return float((effect_size**2) * pooled)


def msprt(
    control: GroupStats,
    treatment: GroupStats,
    *,
    alpha: float = 0.05,
    tau2: float | None = None,
    effect_size: float = DEFAULT_EFFECT_SIZE,
    history: Sequence[SequentialResult] = (),
) -> SequentialResult:
    """One look of the mSPRT on the lift of ``treatment`` over ``control``.

    Pass the earlier looks' results as ``history`` (oldest first; the last one alone
    suffices, since each look already carries the earlier ones) so tau^2, the p-value and
    the confidence sequence carry over; a first look needs none. A stored look comes
    back with :meth:`SequentialResult.from_dict`.
    """
    check_alpha(alpha)
    mix = mixing_variance(control, treatment, tau2=tau2, effect_size=effect_size)
    if history:
        mix = history[-1].tau2  # tau^2 is fixed for the life of the test
    mc, mt = a(control.mean), a(treatment.mean)
    vc, vt = a(control.variance), a(treatment.variance)
    nc, nt = a(control.n), a(treatment.n)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = float(vc / nc + vt / nt)
    lift = float(mt - mc)
    log_lr = float(log_likelihood_ratio(a(lift), a(variance), mix))
    p_now = math.exp(-log_lr) if math.isfinite(log_lr) else math.nan
    p = min(1.0, p_now) if not math.isnan(p_now) else math.nan
    width = float(half_width(a(variance), mix, alpha))
    low, high = lift - width, lift + width
    rel, rse = relative_lift_arrays(mc, vc, nc, mt, vt, nt)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_width = float(half_width(rse**2, mix / mc**2, alpha))
    rel_low, rel_high = float(rel) - rel_width, float(rel) + rel_width
    for earlier in history:
        if not math.isnan(earlier.p_value):
            p = earlier.p_value if math.isnan(p) else min(p, earlier.p_value)
        if math.isfinite(earlier.ci.low):
            low, high = max(low, earlier.ci.low), min(high, earlier.ci.high)
            rel_low = max(rel_low, earlier.relative_ci.low)
            rel_high = min(rel_high, earlier.relative_ci.high)
    return SequentialResult(
        test="msprt",
        control=control,
        treatment=treatment,
        alpha=alpha,
        tau2=mix,
        absolute_lift=lift,
        variance=variance,
        likelihood_ratio=math.exp(log_lr) if log_lr < 700 else math.inf,
        p_value=p,
        ci=Interval(low, high, 1 - alpha),
        relative_lift=float(rel),
        relative_ci=Interval(rel_low, rel_high, 1 - alpha),
        looks=len(history) + 1,
        significant=bool(p < alpha),
    )
