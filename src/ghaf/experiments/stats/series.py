"""The goal's lift as units accrued: one look per distinct time (at most 30 shown),
with the fixed-horizon interval beside the sequential confidence sequence.

The two bands side by side are the point of the report: the fixed interval, read daily,
strays from zero by chance; the always-valid one is built to be read that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from ghaf.experiments.stats.fixed import two_sided_p, welch_arrays, z_arrays
from ghaf.experiments.stats.groups import jsonable
from ghaf.experiments.stats.sequential import (
    DEFAULT_EFFECT_SIZE,
    always_valid_p,
    half_width,
    log_likelihood_ratio,
)
from ghaf.experiments.stats.srm import chi_square_arrays

MAX_LOOKS = 30


@dataclass(frozen=True)
class LiftSeries:
    """Per look: time, units, lift, fixed interval and p, sequential interval and p, SRM p."""

    kind: str
    alpha: float
    tau2: float
    times: tuple[str, ...]
    n_control: tuple[int, ...]
    n_treatment: tuple[int, ...]
    lift: tuple[float, ...]
    fixed_low: tuple[float, ...]
    fixed_high: tuple[float, ...]
    fixed_p: tuple[float, ...]
    sequential_low: tuple[float, ...]
    sequential_high: tuple[float, ...]
    sequential_p: tuple[float, ...]
    srm_p: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def _cuts(sorted_times: npt.NDArray[Any]) -> npt.NDArray[np.intp]:
    """Index of the last unit at each distinct time, thinned to MAX_LOOKS evenly."""
    change = np.flatnonzero(sorted_times[1:] != sorted_times[:-1])
    last = np.append(change, sorted_times.size - 1)
    if last.size > MAX_LOOKS:
        last = last[np.unique(np.linspace(0, last.size - 1, MAX_LOOKS).round().astype(int))]
    return np.asarray(last, dtype=np.intp)


def _tup(values: npt.ArrayLike) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64))


def lift_series(
    *,
    times: npt.ArrayLike,
    variants: npt.ArrayLike,
    values: npt.ArrayLike,
    arms: tuple[str, str],
    alpha: float,
    tau2: float | None = None,
    weights: tuple[float, float] = (1.0, 1.0),
) -> LiftSeries:
    """Cumulative looks over ``times``; ``tau2`` None takes the default at the last look."""
    t = np.asarray(times)
    order = np.argsort(t, kind="stable")
    t = t[order]
    v = np.asarray(variants)[order]
    y = np.asarray(values, dtype=np.float64)[order]
    valid = ~np.isnan(y)
    present = y[valid]
    kind = "proportion" if present.size and np.isin(present, (0.0, 1.0)).all() else "mean"
    cuts = _cuts(t) if t.size else np.zeros(0, dtype=np.intp)
    stats_by_arm = []
    for arm in arms:
        member = v == arm
        used = member & valid
        units = np.cumsum(member)[cuts].astype(np.float64)
        n = np.cumsum(used)[cuts].astype(np.float64)
        s1 = np.cumsum(np.where(used, y, 0.0))[cuts]
        s2 = np.cumsum(np.where(used, y * y, 0.0))[cuts]
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = s1 / n
            var = (s2 - n * mean**2) / (n - 1)
        stats_by_arm.append((units, n, mean, np.maximum(var, 0.0)))
    (uc, nc, mc, vc), (ut, nt, mt, vt) = stats_by_arm
    if kind == "proportion":
        lift, se, _, stat = z_arrays(mc, nc, mt, nt)
        p_fixed = two_sided_p(stat)
        crit = np.full_like(lift, float(stats.norm.isf(alpha / 2)))
    else:
        lift, se, stat, df = welch_arrays(mc, vc, nc, mt, vt, nt)
        p_fixed = two_sided_p(stat, df)
        crit = np.asarray(stats.t.isf(alpha / 2, df), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = vc / nc + vt / nt
        if tau2 is None and cuts.size:
            pooled = ((nc[-1] - 1) * vc[-1] + (nt[-1] - 1) * vt[-1]) / (nc[-1] + nt[-1] - 2)
            tau2 = float(DEFAULT_EFFECT_SIZE**2 * pooled)
    mix = float(tau2) if tau2 is not None else float("nan")
    p_seq = always_valid_p(log_likelihood_ratio(lift, variance, mix))
    width = half_width(variance, mix, alpha)
    with np.errstate(invalid="ignore"):
        low = np.fmax.accumulate(lift - width) if cuts.size else lift
        high = np.fmin.accumulate(lift + width) if cuts.size else lift
    _, srm_p = chi_square_arrays(np.stack([uc, ut], axis=-1), np.asarray(weights))
    return LiftSeries(
        kind=kind,
        alpha=alpha,
        tau2=mix,
        times=tuple(str(x) for x in t[cuts]),
        n_control=tuple(int(x) for x in nc),
        n_treatment=tuple(int(x) for x in nt),
        lift=_tup(lift),
        fixed_low=_tup(lift - crit * se),
        fixed_high=_tup(lift + crit * se),
        fixed_p=_tup(p_fixed),
        sequential_low=_tup(low),
        sequential_high=_tup(high),
        sequential_p=_tup(p_seq),
        srm_p=_tup(srm_p),
    )
