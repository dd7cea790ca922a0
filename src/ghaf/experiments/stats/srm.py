"""Sample-ratio mismatch: did the units arrive in the planned split?

A chi-square goodness-of-fit test of the variants' unit counts against the planned
weights. p < 0.001 (GrowthBook's and Kohavi et al.'s threshold) flags a mismatch, and a
flagged experiment gets no decision: a broken assignment or logging path biases every
metric, whatever the p-values say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from ghaf.errors import InvalidInputError
from ghaf.experiments.stats.groups import jsonable

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SrmResult:
    """The counts, the planned weights, and the chi-square test of one against the other."""

    variants: tuple[str, ...]
    counts: tuple[int, ...]
    weights: tuple[float, ...]
    """Planned weights, normalised to sum to 1."""
    expected: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    threshold: float
    mismatch: bool

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = jsonable(self)
        return result


def chi_square_arrays(
    counts: npt.ArrayLike, weights: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Chi-square statistic and p-value per row of ``counts`` (last axis: variants)."""
    observed = np.asarray(counts, dtype=np.float64)
    share = np.asarray(weights, dtype=np.float64)
    share = share / share.sum()
    expected = observed.sum(axis=-1, keepdims=True) * share
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = ((observed - expected) ** 2 / expected).sum(axis=-1)
    p = stats.chi2.sf(statistic, observed.shape[-1] - 1)
    return np.asarray(statistic, dtype=np.float64), np.asarray(p, dtype=np.float64)


def sample_ratio_check(
    counts: Mapping[str, int],
    weights: Mapping[str, float] | None = None,
    *,
    threshold: float = SRM_THRESHOLD,
) -> SrmResult:
    """Test ``counts`` (units per variant) against planned ``weights`` (default equal).

    Raises:
        InvalidInputError: fewer than two variants, weights naming other variants, or a
            weight that is not positive.
    """
    names = tuple(sorted(counts))
    if len(names) < 2:
        raise InvalidInputError(
            f"a sample-ratio check needs at least two variants, got {list(names)}",
            hint="check the variant column: every unit must name its variant",
        )
    planned = dict.fromkeys(names, 1.0) if weights is None else dict(weights)
    if set(planned) != set(names):
        raise InvalidInputError(
            f"weights name {sorted(planned)} but the data has variants {list(names)}",
            hint="give one weight per variant, e.g. --weights control=50,treatment=50",
        )
    if any(not (w > 0) for w in planned.values()):
        raise InvalidInputError(
            f"weights {planned} must all be positive numbers",
            hint="a variant planned to get no traffic should not be in the data",
        )
    observed = np.array([counts[n] for n in names], dtype=np.float64)
    share = np.array([planned[n] for n in names], dtype=np.float64)
    share = share / share.sum()
    statistic, p = chi_square_arrays(observed, share)
    p_value = float(p)
    return SrmResult(
        variants=names,
        counts=tuple(int(counts[n]) for n in names),
        weights=tuple(float(s) for s in share),
        expected=tuple(float(e) for e in observed.sum() * share),
        statistic=float(statistic),
        df=len(names) - 1,
        p_value=p_value,
        threshold=threshold,
        mismatch=bool(p_value < threshold),
    )
