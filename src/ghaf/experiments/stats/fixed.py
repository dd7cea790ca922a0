"""Fixed-horizon tests: two-proportion z and Welch's t, looked at once at the planned n.

Lift is treatment minus control. Intervals are given for the absolute lift and for the
relative lift (treatment/control - 1, by the delta method). The array functions are the
implementation; the scalar ones wrap them, so simulations run the same code as users.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from ghaf.experiments.stats.groups import GroupStats, check_alpha, jsonable, number

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Interval:
    """A two-sided interval at ``level`` (1 - alpha)."""

    low: float
    high: float
    level: float

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Interval:
        return cls(number(record["low"]), number(record["high"]), float(record["level"]))

    def contains(self, value: float) -> bool:
        return bool(self.low <= value <= self.high)


@dataclass(frozen=True)
class FixedResult:
    """Every number a fixed-horizon test used and produced."""

    test: str
    control: GroupStats
    treatment: GroupStats
    alpha: float
    absolute_lift: float
    se: float
    """Standard error of the lift used for the interval (unpooled)."""
    se_null: float
    """Standard error used for the statistic (pooled under H0 for z; equal to ``se`` for t)."""
    statistic: float
    df: float | None
    p_value: float
    ci: Interval
    relative_lift: float
    relative_se: float
    relative_ci: Interval
    significant: bool

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def relative_lift_arrays(
    mc: Array, vc: Array, nc: Array, mt: Array, vt: Array, nt: Array
) -> tuple[Array, Array]:
    """Relative lift mt/mc - 1 and its delta-method standard error
    sqrt(vt/nt / mc^2 + mt^2 vc/nc / mc^4)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = mt / mc - 1.0
        se = np.sqrt(vt / nt / mc**2 + mt**2 * vc / nc / mc**4)
    return rel, se


def welch_arrays(
    mc: Array, vc: Array, nc: Array, mt: Array, vt: Array, nt: Array
) -> tuple[Array, Array, Array, Array]:
    """Welch's t on summaries: (lift, se, t, df) with Welch-Satterthwaite df."""
    with np.errstate(divide="ignore", invalid="ignore"):
        sc, st = vc / nc, vt / nt
        se = np.sqrt(sc + st)
        lift = mt - mc
        t = lift / se
        df = (sc + st) ** 2 / (sc**2 / (nc - 1) + st**2 / (nt - 1))
    return lift, se, t, df


def z_arrays(pc: Array, nc: Array, pt: Array, nt: Array) -> tuple[Array, Array, Array, Array]:
    """Two-proportion z on rates: (lift, unpooled se, pooled se, z); z uses the pooled
    rate under H0 (as statsmodels' ``proportions_ztest``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (pc * nc + pt * nt) / (nc + nt)
        se_null = np.sqrt(pooled * (1 - pooled) * (1 / nc + 1 / nt))
        se = np.sqrt(pc * (1 - pc) / nc + pt * (1 - pt) / nt)
        lift = pt - pc
        z = lift / se_null
    return lift, se, se_null, z


def two_sided_p(statistic: Array, df: Array | None = None) -> Array:
    """Two-sided p-value of a z (df None) or t statistic."""
    tail = np.abs(statistic)
    p = 2 * (stats.norm.sf(tail) if df is None else stats.t.sf(tail, df))
    return np.asarray(p, dtype=np.float64)


def a(value: float) -> Array:
    """A scalar as a 0-d float64 array, for the array functions."""
    return np.asarray(value, dtype=np.float64)


def _f(value: Any) -> float:
    return float(np.asarray(value))


def _interval(centre: float, half: float, alpha: float) -> Interval:
    return Interval(centre - half, centre + half, 1 - alpha)


def _relative(
    control: GroupStats, treatment: GroupStats, alpha: float, variances: tuple[float, float]
) -> tuple[float, float, Interval]:
    vc, vt = variances
    rel, rse = relative_lift_arrays(
        a(control.mean),
        a(vc),
        a(control.n),
        a(treatment.mean),
        a(vt),
        a(treatment.n),
    )
    z = _f(stats.norm.ppf(1 - alpha / 2))
    return _f(rel), _f(rse), _interval(_f(rel), z * _f(rse), alpha)


def two_proportion_z(
    control: GroupStats, treatment: GroupStats, *, alpha: float = 0.05
) -> FixedResult:
    """Two-proportion z test (pooled SE for the statistic, unpooled Wald SE for the
    interval: statsmodels' ``proportions_ztest`` and ``confint_proportions_2indep``)."""
    check_alpha(alpha)
    pc, pt = a(control.mean), a(treatment.mean)
    lift, se, se_null, z = z_arrays(pc, a(control.n), pt, a(treatment.n))
    p = two_sided_p(z)
    crit = _f(stats.norm.ppf(1 - alpha / 2))
    variances = (_f(pc * (1 - pc)), _f(pt * (1 - pt)))
    rel, rse, rci = _relative(control, treatment, alpha, variances)
    return FixedResult(
        test="two_proportion_z",
        control=control,
        treatment=treatment,
        alpha=alpha,
        absolute_lift=_f(lift),
        se=_f(se),
        se_null=_f(se_null),
        statistic=_f(z),
        df=None,
        p_value=_f(p),
        ci=_interval(_f(lift), crit * _f(se), alpha),
        relative_lift=rel,
        relative_se=rse,
        relative_ci=rci,
        significant=bool(_f(p) < alpha),
    )


def welch_t(control: GroupStats, treatment: GroupStats, *, alpha: float = 0.05) -> FixedResult:
    """Welch's unequal-variance t test (scipy's ``ttest_ind(equal_var=False)``), interval
    from the t quantile at the Welch-Satterthwaite degrees of freedom."""
    check_alpha(alpha)
    lift, se, t, df = welch_arrays(
        a(control.mean),
        a(control.variance),
        a(control.n),
        a(treatment.mean),
        a(treatment.variance),
        a(treatment.n),
    )
    p = two_sided_p(t, df)
    crit = _f(stats.t.ppf(1 - alpha / 2, df))
    rel, rse, rci = _relative(control, treatment, alpha, (control.variance, treatment.variance))
    return FixedResult(
        test="welch_t",
        control=control,
        treatment=treatment,
        alpha=alpha,
        absolute_lift=_f(lift),
        se=_f(se),
        se_null=_f(se),
        statistic=_f(t),
        df=_f(df),
        p_value=_f(p),
        ci=_interval(_f(lift), crit * _f(se), alpha),
        relative_lift=rel,
        relative_se=rse,
        relative_ci=rci,
        significant=bool(_f(p) < alpha),
    )
