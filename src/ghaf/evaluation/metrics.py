"""Evaluation metrics: classification, regression, calibration, slices, fairness, robustness."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ghaf.errors import InvalidInputError

Predict = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""Scores for a feature matrix (probability of the positive class, or a regression value)."""


def _arrays(y_true: ArrayLike, y_score: ArrayLike) -> tuple[NDArray[Any], NDArray[np.float64]]:
    truth = np.asarray(y_true)
    score = np.asarray(y_score, dtype=np.float64)
    if truth.ndim != 1 or score.ndim != 1 or truth.shape != score.shape:
        raise InvalidInputError(
            f"labels {truth.shape} and scores {score.shape} must be 1-D and the same length",
            hint="pass one score per row (the positive-class probability)",
        )
    if truth.size == 0:
        raise InvalidInputError("no rows to evaluate", hint="pass a non-empty evaluation set")
    return truth, score


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, bins: int = 10) -> float:
    """ECE: the row-weighted mean |observed rate - mean predicted| over equal-width bins."""
    truth, prob = _arrays(y_true, y_prob)
    index = np.clip((prob * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    observed = np.bincount(index, weights=truth.astype(np.float64), minlength=bins)
    predicted = np.bincount(index, weights=prob, minlength=bins)
    used = counts > 0
    gaps = np.abs(observed[used] - predicted[used])
    return float(gaps.sum() / truth.size)


def calibration_curve(
    y_true: ArrayLike, y_prob: ArrayLike, bins: int = 10
) -> tuple[list[float], list[float]]:
    """(mean predicted, observed rate) per non-empty equal-width bin, for plots."""
    truth, prob = _arrays(y_true, y_prob)
    index = np.clip((prob * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins).astype(np.float64)
    observed = np.bincount(index, weights=truth.astype(np.float64), minlength=bins)
    predicted = np.bincount(index, weights=prob, minlength=bins)
    used = counts > 0
    return (predicted[used] / counts[used]).tolist(), (observed[used] / counts[used]).tolist()


def classification_metrics(
    y_true: ArrayLike, y_prob: ArrayLike, *, threshold: float = 0.5
) -> dict[str, float]:
    """AUC, PR-AUC (average precision), log loss, Brier, ECE and the confusion at ``threshold``."""
    from sklearn import metrics as skm

    truth, prob = _arrays(y_true, y_prob)
    labels = np.unique(truth)
    if not set(labels.tolist()) <= {0, 1}:
        raise InvalidInputError(
            f"labels must be 0/1 for binary classification, got {labels[:5].tolist()}",
            hint="encode the positive class as 1",
        )
    predicted = (prob >= threshold).astype(np.int64)
    tn, fp, fn, tp = skm.confusion_matrix(truth, predicted, labels=[0, 1]).ravel()
    both = labels.size == 2
    result = {
        "auc": float(skm.roc_auc_score(truth, prob)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(truth, prob)) if both else float("nan"),
        "log_loss": float(skm.log_loss(truth, np.clip(prob, 1e-15, 1 - 1e-15), labels=[0, 1])),
        "brier": float(skm.brier_score_loss(truth, prob)),
        "ece": expected_calibration_error(truth, prob),
        "accuracy": float((tp + tn) / truth.size),
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        "threshold": float(threshold),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
        "rows": float(truth.size),
    }
    p, r = result["precision"], result["recall"]
    result["f1"] = 2 * p * r / (p + r) if p + r else 0.0
    return result


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """RMSE, MAE and R²."""
    truth, pred = _arrays(y_true, y_pred)
    truth = truth.astype(np.float64)
    error = pred - truth
    total = float(((truth - truth.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else float("nan"),
        "rows": float(truth.size),
    }


def slice_metrics(
    y_true: ArrayLike,
    y_score: ArrayLike,
    columns: Mapping[str, ArrayLike],
    *,
    task: str = "classification",
    threshold: float = 0.5,
    min_rows: int = 1,
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics per value of each declared column: ``{column: {value: metrics}}``."""
    truth, score = _arrays(y_true, y_score)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, values in columns.items():
        column = np.asarray(values)
        if column.shape != truth.shape:
            raise InvalidInputError(
                f"slice column {name!r} has {column.size} rows, labels have {truth.size}",
                hint="pass one value per evaluated row",
            )
        out[name] = {}
        for value in np.unique(column):
            mask = column == value
            if int(mask.sum()) < min_rows:
                continue
            if task == "classification":
                out[name][str(value)] = classification_metrics(
                    truth[mask], score[mask], threshold=threshold
                )
            else:
                out[name][str(value)] = regression_metrics(truth[mask], score[mask])
    return out


def fairness_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    sensitive: Mapping[str, ArrayLike],
    *,
    threshold: float = 0.5,
) -> dict[str, dict[str, Any]]:
    """Per sensitive attribute: demographic parity difference/ratio, equalized odds
    difference (``fairlearn``), and the selection rate per group."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        selection_rate,
    )

    truth, prob = _arrays(y_true, y_prob)
    predicted = (prob >= threshold).astype(np.int64)
    out: dict[str, dict[str, Any]] = {}
    for name, values in sensitive.items():
        groups = np.asarray(values).astype(str)
        if groups.shape != truth.shape:
            raise InvalidInputError(
                f"sensitive attribute {name!r} has {groups.size} rows, labels have {truth.size}",
                hint="pass one value per evaluated row",
            )
        frame = MetricFrame(
            metrics=selection_rate, y_true=truth, y_pred=predicted, sensitive_features=groups
        )
        out[name] = {
            "demographic_parity_difference": float(
                demographic_parity_difference(truth, predicted, sensitive_features=groups)
            ),
            "demographic_parity_ratio": float(
                demographic_parity_ratio(truth, predicted, sensitive_features=groups)
            ),
            "equalized_odds_difference": float(
                equalized_odds_difference(truth, predicted, sensitive_features=groups)
            ),
            "selection_rate": {str(k): float(v) for k, v in frame.by_group.items()},
        }
    return out


def robustness(
    predict: Predict,
    features: NDArray[np.float64],
    *,
    noise: float = 0.1,
    missing: float = 0.1,
    threshold: float = 0.5,
    seed: int = 0,
) -> dict[str, float]:
    """Prediction stability under Gaussian feature noise (``noise`` x each column's sd)
    and under values replaced by NaN (share ``missing``).

    Returns the mean absolute score change and the share of decisions (at
    ``threshold``) that flip, for each perturbation.
    """
    rng = np.random.default_rng(seed)
    base = np.asarray(predict(features), dtype=np.float64)
    scale = np.nanstd(features, axis=0, keepdims=True)
    noisy = features + rng.normal(size=features.shape) * scale * noise
    holed = features.copy()
    holed[rng.random(features.shape) < missing] = np.nan
    result: dict[str, float] = {}
    for label, perturbed in (("noise", noisy), ("missing", holed)):
        try:
            score = np.asarray(predict(perturbed), dtype=np.float64)
        except ValueError:
            # Models that refuse NaN are not robust to missing values: say so, don't crash.
            result[f"{label}_score_shift"] = float("nan")
            result[f"{label}_flip_rate"] = 1.0
            continue
        result[f"{label}_score_shift"] = float(np.mean(np.abs(score - base)))
        result[f"{label}_flip_rate"] = float(np.mean((score >= threshold) != (base >= threshold)))
    return result


def flatten(
    prefix: str, nested: Mapping[str, Any], out: dict[str, float] | None = None
) -> dict[str, float]:
    """``{"a": {"b": 1}}`` -> ``{"prefix.a.b": 1.0}`` (numbers only), for gates and tracking."""
    out = {} if out is None else out
    for key, value in nested.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flatten(name, value, out)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def as_columns(table: Any, names: Sequence[str]) -> dict[str, NDArray[Any]]:
    """Pick columns from a pyarrow Table or pandas DataFrame as NumPy arrays."""
    out: dict[str, NDArray[Any]] = {}
    for name in names:
        try:
            column = table[name]
        except KeyError as exc:
            raise InvalidInputError(
                f"column {name!r} is not in the evaluation data",
                hint="declare slices/sensitive attributes that exist in the data",
            ) from exc
        out[name] = np.asarray(column.to_numpy() if hasattr(column, "to_numpy") else column)
    return out
