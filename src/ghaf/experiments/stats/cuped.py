"""CUPED: less variance from a pre-period covariate (Deng, Xu, Kohavi, Walker 2013).

Each unit's metric y becomes y - theta (x - mean(x)), with x the same unit's pre-period
value and theta = cov(y, x) / var(x) over all units pooled (one theta for every variant,
so the adjustment cannot create a lift: x is independent of assignment). The adjusted
means keep their expectation; their variance shrinks by about corr(y, x)^2. The adjusted
per-variant summaries feed the fixed (Welch) and the sequential tests unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.groups import GroupStats, jsonable


@dataclass(frozen=True)
class CupedResult:
    """theta, the variance before and after (pooled within variants), and the adjusted
    summaries of each variant."""

    theta: float
    covariate_mean: float
    variance_before: float
    variance_after: float
    variance_reduction: float
    """1 - variance_after / variance_before."""
    groups: tuple[GroupStats, ...]
    raw_groups: tuple[GroupStats, ...]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result

    def group(self, name: str) -> GroupStats:
        return next(g for g in self.groups if g.name == name)


def theta_of(metric: npt.ArrayLike, covariate: npt.ArrayLike) -> float:
    """cov(y, x) / var(x) over all units.

    Raises:
        InvalidInputError: the covariate does not vary (or has under two values).
    """
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    if x.size < 2 or not np.nanvar(x) > 0:
        raise InvalidInputError(
            "the CUPED covariate does not vary across units",
            hint="pass a pre-period metric per unit (e.g. last month's spend) or drop --covariate",
        )
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc * xc).sum())


def _pooled_within(groups: list[GroupStats]) -> float:
    dof = sum(g.n - 1 for g in groups if g.n > 1)
    total = sum((g.n - 1) * g.variance for g in groups if g.n > 1)
    return total / dof if dof else float("nan")


def cuped(metric: npt.ArrayLike, covariate: npt.ArrayLike, variants: npt.ArrayLike) -> CupedResult:
    """Adjust ``metric`` by ``covariate`` (unit by unit) and summarise per variant.

    Raises:
        InvalidInputError: arrays of different lengths, a NaN covariate, or one that
            does not vary.
    """
    y = np.asarray(metric, dtype=np.float64)
    x = np.asarray(covariate, dtype=np.float64)
    labels = np.asarray(variants)
    if not y.shape == x.shape == labels.shape or y.ndim != 1:
        raise InvalidInputError(
            f"metric, covariate and variant have {y.shape}, {x.shape}, {labels.shape} values",
            hint="give one metric, covariate and variant per unit",
        )
    if np.isnan(x).any():
        raise InvalidInputError(
            f"the CUPED covariate is missing for {int(np.isnan(x).sum())} units",
            hint="fill the pre-period value (0 for units with no history) or drop --covariate",
        )
    theta = theta_of(y, x)
    adjusted = y - theta * (x - x.mean())
    names = sorted({str(v) for v in labels.tolist()})
    label_text = labels.astype(str)
    groups = [GroupStats.from_values(n, adjusted[label_text == n]) for n in names]
    raw = [GroupStats.from_values(n, y[label_text == n]) for n in names]
    before, after = _pooled_within(raw), _pooled_within(groups)
    return CupedResult(
        theta=theta,
        covariate_mean=float(x.mean()),
        variance_before=before,
        variance_after=after,
        variance_reduction=1 - after / before if before > 0 else float("nan"),
        groups=tuple(groups),
        raw_groups=tuple(raw),
    )
