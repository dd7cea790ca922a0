"""Drift on what the model says: its score distribution, and the label rate when labels exist."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ghaf.errors import InvalidInputError
from ghaf.monitoring import stats


@dataclass(frozen=True)
class ScoreDrift:
    """Two windows of model scores compared."""

    ks_statistic: float
    p_value: float
    psi: float
    js: float
    reference_mean: float
    current_mean: float
    drifted: bool


@dataclass(frozen=True)
class LabelRateDrift:
    """The positive-label rate of two windows compared (chi-square on the 2 x 2 table)."""

    reference_rate: float
    current_rate: float
    statistic: float
    p_value: float
    drifted: bool


def _clean(values: ArrayLike, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    array = array[~np.isnan(array)]
    if array.size == 0:
        raise InvalidInputError(f"the {what} window has no values", hint="pass non-empty scores")
    return np.sort(array)


def score_drift(
    reference: ArrayLike, current: ArrayLike, *, alpha: float = 0.05, bins: int = 10
) -> ScoreDrift:
    """KS test on model scores plus PSI and JS on the reference's decile bins."""
    ref, cur = _clean(reference, "reference"), _clean(current, "current")
    pair = stats.two_sample(ref, cur)
    edges = stats.quantile_edges(ref, bins)
    counts = np.vstack([stats.bin_counts(ref, edges), stats.bin_counts(cur, edges)]).astype(float)
    return ScoreDrift(
        pair.ks_statistic,
        pair.ks_pvalue,
        float(stats.psi(counts[0], counts[1])),
        float(stats.jensen_shannon(counts[0], counts[1])),
        float(ref.mean()),
        float(cur.mean()),
        pair.ks_pvalue <= alpha,
    )


def label_rate_drift(
    reference: ArrayLike, current: ArrayLike, *, alpha: float = 0.05
) -> LabelRateDrift:
    """Has the share of positive labels moved? Labels are 0/1 or booleans; NaN is unlabelled."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    cur = np.asarray(current, dtype=np.float64).ravel()
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        raise InvalidInputError("a window has no labels", hint="pass labelled rows")
    if not (np.isin(ref, (0.0, 1.0)).all() and np.isin(cur, (0.0, 1.0)).all()):
        raise InvalidInputError("labels must be 0/1", hint="binarize the label column first")
    ref_pos, cur_pos = int(ref.sum()), int(cur.sum())
    statistic, p_value, _ = stats.chi_square(
        np.array([ref.size - ref_pos, ref_pos]), np.array([cur.size - cur_pos, cur_pos])
    )
    return LabelRateDrift(
        ref_pos / ref.size, cur_pos / cur.size, statistic, p_value, p_value <= alpha
    )
