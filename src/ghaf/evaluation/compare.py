"""Champion vs challenger: a paired bootstrap confidence interval for a metric difference."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ghaf.errors import InvalidInputError

Metric = Callable[[NDArray[Any], NDArray[np.float64]], float]

HIGHER_IS_BETTER = {"auc": True, "pr_auc": True, "accuracy": True, "r2": True}
"""Direction of metrics; losses (log_loss, brier, mae...) are lower-better."""

# Per-row losses whose mean is the metric: bootstrapped with one matrix product.
_ROW_METRICS: dict[str, Callable[[NDArray[Any], NDArray[np.float64]], NDArray[np.float64]]] = {
    "accuracy": lambda y, p: ((p >= 0.5) == (y == 1)).astype(np.float64),
    "brier": lambda y, p: (p - y) ** 2,
    "log_loss": lambda y, p: (
        -(y * np.log(np.clip(p, 1e-15, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-15, 1)))
    ),
    "mae": lambda y, p: np.abs(p - y),
    "mse": lambda y, p: (p - y) ** 2,
}


def _auc(y: NDArray[Any], p: NDArray[np.float64]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _pr_auc(y: NDArray[Any], p: NDArray[np.float64]) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p))


_WHOLE_METRICS: dict[str, Metric] = {"auc": _auc, "pr_auc": _pr_auc}


@dataclass(frozen=True)
class Comparison:
    """Challenger minus champion on ``metric``, with a ``confidence`` bootstrap interval.

    ``improvement`` is signed so that positive is better whichever direction the metric
    has; ``ci_low``/``ci_high`` bound the improvement.
    """

    metric: str
    champion: float
    challenger: float
    improvement: float
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    p_better: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def bootstrap_compare(
    y_true: ArrayLike,
    champion_score: ArrayLike,
    challenger_score: ArrayLike,
    *,
    metric: str = "auc",
    confidence: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> Comparison:
    """Paired percentile bootstrap over the evaluation rows (both models see each resample).

    Raises:
        InvalidInputError: unknown metric, mismatched lengths or a bad confidence.
    """
    truth = np.asarray(y_true)
    champ = np.asarray(champion_score, dtype=np.float64)
    chall = np.asarray(challenger_score, dtype=np.float64)
    if not truth.shape == champ.shape == chall.shape or truth.ndim != 1:
        raise InvalidInputError(
            "labels, champion scores and challenger scores must be 1-D and the same length",
            hint="score the same evaluation rows with both models",
        )
    if not 0.5 <= confidence < 1:
        raise InvalidInputError(f"confidence {confidence} is outside [0.5, 1)", hint="e.g. 0.95")
    sign = 1.0 if HIGHER_IS_BETTER.get(metric, False) else -1.0
    rng = np.random.default_rng(seed)
    n = truth.size
    if metric in _ROW_METRICS:
        row = _ROW_METRICS[metric]
        delta_rows = row(truth, chall) - row(truth, champ)
        base_champ, base_chall = float(row(truth, champ).mean()), float(row(truth, chall).mean())
        # Multinomial counts are a resample with replacement; one product gives every mean.
        counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
        diffs = counts @ delta_rows / n
    elif metric in _WHOLE_METRICS:
        fn = _WHOLE_METRICS[metric]
        base_champ, base_chall = fn(truth, champ), fn(truth, chall)
        diffs = np.empty(resamples)
        for i in range(resamples):
            idx = rng.integers(0, n, n)
            y = truth[idx]
            if np.unique(y).size < 2:
                diffs[i] = np.nan
                continue
            diffs[i] = fn(y, chall[idx]) - fn(y, champ[idx])
        diffs = diffs[~np.isnan(diffs)]
    else:
        known = sorted({*_ROW_METRICS, *_WHOLE_METRICS})
        raise InvalidInputError(
            f"metric {metric!r} cannot be bootstrapped", hint=f"use one of {', '.join(known)}"
        )
    improvements = sign * diffs
    alpha = (1 - confidence) / 2
    low, high = np.quantile(improvements, [alpha, 1 - alpha])
    return Comparison(
        metric=metric,
        champion=base_champ,
        challenger=base_chall,
        improvement=sign * (base_chall - base_champ),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        resamples=int(improvements.size),
        p_better=float(np.mean(improvements > 0)),
    )
