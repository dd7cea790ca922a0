"""Sample size of a two-proportion test, planned before the experiment starts.

Cohen's effect size h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) and the normal power
equation with both tails, solved for n per variant (statsmodels' ``NormalIndPower``
with ``proportion_effectsize``, the reference in the tests), rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy import optimize, stats

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.groups import check_alpha, jsonable


@dataclass(frozen=True)
class SampleSize:
    """Units needed per variant to detect ``mde`` on ``baseline`` at ``alpha``/``power``."""

    baseline: float
    mde: float
    """Absolute lift to detect (0.02: two percentage points)."""
    alpha: float
    power: float
    ratio: float
    """Treatment units per control unit."""
    effect_size: float
    n_control: int
    n_treatment: int
    n_total: int

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def effect_size_h(p1: float, p0: float) -> float:
    """Cohen's h between two proportions."""
    return 2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p0))


def power_at(n_control: float, effect: float, alpha: float, ratio: float = 1.0) -> float:
    """Power of the two-sided normal test at ``n_control`` units in control."""
    crit = stats.norm.isf(alpha / 2)
    shift = abs(effect) * math.sqrt(n_control / (1 + 1 / ratio))
    return float(stats.norm.sf(crit - shift) + stats.norm.cdf(-crit - shift))


def two_proportion_sample_size(
    baseline: float, mde: float, *, alpha: float = 0.05, power: float = 0.8, ratio: float = 1.0
) -> SampleSize:
    """Units per variant for a two-sided two-proportion test.

    Raises:
        InvalidInputError: a rate outside (0, 1), a zero lift, power outside (alpha, 1).
    """
    check_alpha(alpha)
    target = baseline + mde
    if not (0 < baseline < 1 and 0 < target < 1) or mde == 0:
        raise InvalidInputError(
            f"baseline {baseline} and baseline + mde {target} must lie in (0, 1), mde not 0",
            hint="e.g. --baseline 0.10 --mde 0.02 (two percentage points)",
        )
    if not alpha < power < 1:
        raise InvalidInputError(f"power {power} must lie in (alpha, 1)", hint="e.g. 0.8")
    if not ratio > 0:
        raise InvalidInputError(f"ratio {ratio} must be positive", hint="1 for an even split")
    h = effect_size_h(target, baseline)
    crit = stats.norm.isf(alpha / 2)
    guess = ((crit + stats.norm.ppf(power)) / abs(h)) ** 2 * (1 + 1 / ratio)
    n = optimize.brentq(
        lambda x: power_at(x, h, alpha, ratio) - power, 1e-3, max(10.0, 4 * guess), xtol=1e-10
    )
    n_control = math.ceil(n)
    n_treatment = math.ceil(n * ratio)
    return SampleSize(
        baseline=baseline,
        mde=mde,
        alpha=alpha,
        power=power,
        ratio=ratio,
        effect_size=h,
        n_control=n_control,
        n_treatment=n_treatment,
        n_total=n_control + n_treatment,
    )
