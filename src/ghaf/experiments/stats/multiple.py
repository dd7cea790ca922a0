"""Multiple-metric correction: Holm-Bonferroni (family-wise error) and Benjamini-Hochberg
(false discovery rate), step-wise on the sorted p-values, vectorised.

Own code rather than statsmodels' ``multipletests`` (the reference in the tests) so the
engine needs no statsmodels at run time; both are a few lines on sorted arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.groups import check_alpha, jsonable

Method = Literal["holm", "bh"]


@dataclass(frozen=True)
class Adjusted:
    """Raw and adjusted p-values of a family of metrics, and which are rejected."""

    method: str
    alpha: float
    names: tuple[str, ...]
    p_values: tuple[float, ...]
    adjusted: tuple[float, ...]
    rejected: tuple[bool, ...]

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def _holm(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def _bh(p: np.ndarray) -> np.ndarray:
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def adjust(
    p_values: Sequence[float],
    *,
    method: Method = "holm",
    alpha: float = 0.05,
    names: Sequence[str] | None = None,
) -> Adjusted:
    """Adjust a family of p-values; a metric is rejected when its adjusted p <= alpha
    (as statsmodels' ``multipletests``).

    Raises:
        InvalidInputError: an unknown method, a p-value outside [0, 1] or NaN.
    """
    check_alpha(alpha)
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or not np.all((p >= 0) & (p <= 1)):
        raise InvalidInputError(
            f"p-values {list(p_values)} must be numbers in [0, 1]",
            hint="a metric with no data has no p-value: leave it out or wait for data",
        )
    if method == "holm":
        adjusted = _holm(p)
    elif method == "bh":
        adjusted = _bh(p)
    else:
        raise InvalidInputError(f"unknown correction {method!r}", hint="use holm or bh")
    labels = tuple(names) if names is not None else tuple(str(i) for i in range(p.size))
    return Adjusted(
        method=method,
        alpha=alpha,
        names=labels,
        p_values=tuple(float(x) for x in p),
        adjusted=tuple(float(x) for x in adjusted),
        rejected=tuple(bool(x <= alpha) for x in adjusted),
    )
