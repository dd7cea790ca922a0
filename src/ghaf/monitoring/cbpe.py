"""Performance of a binary classifier: realized once labels arrive, estimated before (CBPE).

Confidence-based performance estimation (NannyML's CBPE) reads the metric a labelled
window would show off the model's own probabilities: if they are calibrated, row ``i``
is positive with probability ``p_i``, so a prediction at threshold ``t`` is right with
probability ``p_i`` (when ``p_i >= t``) or ``1 - p_i``, and a pair of rows is ranked
right with probability ``p_i (1 - p_j)``. The expectations below are those sums; they
stay valid under covariate shift (the inputs move, ``P(y | x)`` does not), which is
when a monitor needs them, and not under concept drift, which only labels can show.
Probabilities that are not calibrated can be mapped first (:func:`fit_calibration`, an
isotonic fit on rows whose labels came in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ghaf.errors import InvalidInputError

FloatArray = NDArray[np.float64]
MIN_CALIBRATION_ROWS = 200
"""Labelled rows (with both classes) needed before a calibration map is fitted."""
CALIBRATION_BINS = 1000
_EPS = 1e-15


@dataclass(frozen=True)
class Estimate:
    """Expected performance of an unlabelled window (CBPE)."""

    rows: int
    accuracy: float
    roc_auc: float | None
    positive_rate: float
    """The expected share of positive labels (the mean probability)."""
    threshold: float
    calibrated: bool
    """Whether the probabilities were mapped by a calibration fitted on labelled rows."""


@dataclass(frozen=True)
class Performance:
    """Realized performance on labelled rows."""

    rows: int
    accuracy: float
    roc_auc: float | None
    log_loss: float
    positive_rate: float
    """The share of positive labels."""
    predicted_positive_rate: float
    threshold: float


def _probabilities(values: ArrayLike, what: str = "probabilities") -> FloatArray:
    p = np.asarray(values, dtype=np.float64).ravel()
    if p.size and (not np.isfinite(p).all() or p.min() < 0.0 or p.max() > 1.0):
        raise InvalidInputError(
            f"{what} must be finite and in [0, 1]",
            hint="pass the positive class's probability (predict_proba[:, 1])",
        )
    return p


def _labels(values: ArrayLike, size: int) -> FloatArray:
    y = np.asarray(values, dtype=np.float64).ravel()
    if y.size != size:
        raise InvalidInputError(
            f"{y.size} labels for {size} probabilities", hint="pass one label per prediction"
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise InvalidInputError("labels must be 0 or 1", hint="binarize the outcome first")
    return y


def expected_accuracy(probabilities: ArrayLike, threshold: float = 0.5) -> float:
    """The accuracy a calibrated model is expected to show at ``threshold``."""
    p = _probabilities(probabilities)
    if p.size == 0:
        raise InvalidInputError("no probabilities to estimate from", hint="pass a non-empty window")
    return float(np.mean(np.where(p >= threshold, p, 1.0 - p)))


def _tie_groups(scores: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp]]:
    """(ascending order, each sorted position's group start, its group end)."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    new = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    starts = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    ends = np.concatenate((starts[1:], [scores.size]))
    return order, starts[group], ends[group]


def expected_roc_auc(probabilities: ArrayLike, scores: ArrayLike | None = None) -> float | None:
    """The ROC AUC a calibrated model is expected to show (ties count one half).

    The expected Mann-Whitney count of (positive, negative) pairs ranked right, over the
    expected number of such pairs: sum_i sum_{j != i} p_i (1 - p_j) [s_i > s_j] (+ half
    on ties) / (sum p sum (1 - p) - sum p (1 - p)). ``scores`` rank the rows (default:
    the probabilities themselves). None when no pair can be both classes.
    """
    p = _probabilities(probabilities)
    s = p if scores is None else np.asarray(scores, dtype=np.float64).ravel()
    q = 1.0 - p
    pairs = float(p.sum() * q.sum() - np.sum(p * q))
    if p.size < 2 or pairs <= _EPS:
        return None
    order, start, end = _tie_groups(s)
    ps, qs = p[order], q[order]
    below = np.concatenate(([0.0], np.cumsum(qs)))  # sum of (1 - p) over positions < k
    tied = below[end] - below[start] - qs  # the other rows of the same score
    right = float(np.sum(ps * (below[start] + 0.5 * tied)))
    return right / pairs


def roc_auc(scores: ArrayLike, labels: ArrayLike) -> float | None:
    """ROC AUC of ``scores`` for 0/1 ``labels`` (Mann-Whitney with tied ranks); None
    when a class is absent."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = _labels(labels, s.size)
    positives = float(y.sum())
    negatives = float(y.size - positives)
    if positives == 0 or negatives == 0:
        return None
    order, start, end = _tie_groups(s)
    ranks = np.empty(s.size)
    ranks[order] = (start + end + 1) / 2.0  # average 1-based rank of each tie group
    return float(
        (np.sum(ranks[y == 1]) - positives * (positives + 1) / 2) / (positives * negatives)
    )


def realized_binary(
    probabilities: ArrayLike, labels: ArrayLike, *, threshold: float = 0.5
) -> Performance:
    """Accuracy, ROC AUC, log loss and rates of labelled predictions.

    Raises:
        InvalidInputError: no rows, probabilities outside [0, 1], labels not 0/1.
    """
    p = _probabilities(probabilities)
    y = _labels(labels, p.size)
    if p.size == 0:
        raise InvalidInputError("no labelled predictions", hint="wait for labels to arrive")
    predicted = p >= threshold
    clipped = np.clip(p, _EPS, 1 - _EPS)
    loss = -np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))
    return Performance(
        rows=int(p.size),
        accuracy=float(np.mean(predicted == (y == 1))),
        roc_auc=roc_auc(p, y),
        log_loss=float(loss),
        positive_rate=float(y.mean()),
        predicted_positive_rate=float(predicted.mean()),
        threshold=threshold,
    )


@dataclass(frozen=True)
class Calibration:
    """A monotone map of probabilities (isotonic regression, linear between knots)."""

    knots: tuple[float, ...]
    values: tuple[float, ...]
    rows: int

    def apply(self, probabilities: ArrayLike) -> FloatArray:
        p = _probabilities(probabilities)
        out: FloatArray = np.interp(p, self.knots, self.values)
        return out


def _pool_adjacent_violators(y: FloatArray, w: FloatArray) -> FloatArray:
    """The weighted least-squares non-decreasing fit of ``y`` (pool adjacent violators)."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist(), strict=True):
        means.append(value)
        weights.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = weights[-2] + weights[-1]
            means[-2] = (means[-2] * weights[-2] + means[-1] * weights[-1]) / total
            weights[-2] = total
            sizes[-2] += sizes[-1]
            del means[-1], weights[-1], sizes[-1]
    return np.repeat(np.asarray(means), sizes)


def fit_calibration(probabilities: ArrayLike, labels: ArrayLike) -> Calibration | None:
    """An isotonic map from the model's probabilities to observed positive rates, fitted
    on labelled rows (binned to at most 1,000 quantile bins); None below
    :data:`MIN_CALIBRATION_ROWS` rows or without both classes."""
    p = _probabilities(probabilities)
    y = _labels(labels, p.size)
    if p.size < MIN_CALIBRATION_ROWS or y.min() == y.max():
        return None
    order = np.argsort(p, kind="stable")
    p, y = p[order], y[order]
    bins = min(CALIBRATION_BINS, p.size)
    edges = np.linspace(0, p.size, bins + 1).astype(np.int64)
    counts = np.diff(edges).astype(np.float64)
    sums_p = np.add.reduceat(p, edges[:-1])
    sums_y = np.add.reduceat(y, edges[:-1])
    fitted = _pool_adjacent_violators(sums_y / counts, counts)
    knots = sums_p / counts
    keep = np.concatenate(([True], np.diff(knots) > 0))  # np.interp needs increasing knots
    return Calibration(tuple(knots[keep].tolist()), tuple(fitted[keep].tolist()), int(p.size))


def estimate_binary(
    probabilities: ArrayLike, *, threshold: float = 0.5, calibration: Calibration | None = None
) -> Estimate:
    """CBPE's expected accuracy and ROC AUC of an unlabelled window.

    The rows are ranked by the model's own probabilities (what a decision uses); the
    expectations use the calibrated ones when ``calibration`` is given.

    Raises:
        InvalidInputError: no rows, or probabilities outside [0, 1].
    """
    raw = _probabilities(probabilities)
    if raw.size == 0:
        raise InvalidInputError("no predictions to estimate from", hint="pass a non-empty window")
    p = calibration.apply(raw) if calibration is not None else raw
    correct = np.where(raw >= threshold, p, 1.0 - p)
    return Estimate(
        rows=int(raw.size),
        accuracy=float(np.mean(correct)),
        roc_auc=expected_roc_auc(p, raw),
        positive_rate=float(p.mean()),
        threshold=threshold,
        calibrated=calibration is not None,
    )
