"""One evaluation of a model on labelled rows: metrics, slices, fairness, robustness, comparison."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ghaf.errors import InvalidInputError
from ghaf.evaluation.compare import bootstrap_compare
from ghaf.evaluation.metrics import (
    Predict,
    calibration_curve,
    classification_metrics,
    fairness_metrics,
    flatten,
    regression_metrics,
    robustness,
    slice_metrics,
)

EVALUATION_FILE = "evaluation.json"
"""Name of the evaluation written beside a model's files (read by gates)."""


@dataclass
class Evaluation:
    """Everything measured about one model on one evaluation set (JSON-able)."""

    task: str
    metrics: dict[str, float]
    slices: dict[str, Any] = field(default_factory=dict)
    fairness: dict[str, Any] = field(default_factory=dict)
    robustness: dict[str, float] = field(default_factory=dict)
    comparison: dict[str, Any] | None = None
    curves: dict[str, Any] = field(default_factory=dict)

    def flat_metrics(self) -> dict[str, float]:
        """Flat ``name -> value``: ``auc``, ``fairness.gender.demographic_parity_ratio``..."""
        out = dict(self.metrics)
        flatten("fairness", self.fairness, out)
        flatten("robustness", self.robustness, out)
        if self.comparison is not None:
            flatten("comparison", self.comparison, out)
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), allow_nan=True, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Evaluation:
        body = json.loads(text)
        return cls(**body)

    def write(self, directory: Path) -> Path:
        """Write ``evaluation.json`` into ``directory`` (e.g. a model directory)."""
        path = directory / EVALUATION_FILE
        path.write_text(self.to_json())
        return path


def _downsample(xs: NDArray[Any], ys: NDArray[Any], points: int = 200) -> dict[str, list[float]]:
    if xs.size > points:
        keep = np.unique(np.linspace(0, xs.size - 1, points).astype(np.int64))
        xs, ys = xs[keep], ys[keep]
    return {"x": [float(v) for v in xs], "y": [float(v) for v in ys]}


def evaluate(
    y_true: ArrayLike,
    y_score: ArrayLike,
    *,
    task: str = "classification",
    threshold: float = 0.5,
    slices: Mapping[str, ArrayLike] | None = None,
    sensitive: Mapping[str, ArrayLike] | None = None,
    predict: Predict | None = None,
    features: NDArray[np.float64] | None = None,
    champion_score: ArrayLike | None = None,
    compare_metric: str | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> Evaluation:
    """Evaluate scores against labels.

    Args:
        task: ``classification`` (scores are positive-class probabilities) or ``regression``.
        slices: columns to report metrics per value of.
        sensitive: attributes to measure fairness over (classification only).
        predict, features: when both given, robustness under noise and missing values.
        champion_score: the champion's scores on the same rows; adds a bootstrap comparison
            on ``compare_metric`` (default ``auc`` or ``mae``).
    """
    if task not in ("classification", "regression"):
        raise InvalidInputError(
            f"task {task!r} is unknown", hint="use classification or regression"
        )
    truth = np.asarray(y_true)
    score = np.asarray(y_score, dtype=np.float64)
    result = Evaluation(task=task, metrics={})
    if task == "classification":
        from sklearn.metrics import precision_recall_curve, roc_curve

        result.metrics = classification_metrics(truth, score, threshold=threshold)
        if np.unique(truth).size == 2:
            fpr, tpr, _ = roc_curve(truth, score)
            precision, recall, _ = precision_recall_curve(truth, score)
            result.curves["roc"] = _downsample(fpr, tpr)
            result.curves["pr"] = _downsample(recall[::-1], precision[::-1])
        mean_pred, observed = calibration_curve(truth, score)
        result.curves["calibration"] = {"x": mean_pred, "y": observed}
        if sensitive:
            result.fairness = fairness_metrics(truth, score, sensitive, threshold=threshold)
    else:
        result.metrics = regression_metrics(truth, score)
    if slices:
        result.slices = slice_metrics(truth, score, slices, task=task, threshold=threshold)
    if predict is not None and features is not None:
        result.robustness = robustness(predict, features, threshold=threshold, seed=seed)
    if champion_score is not None:
        metric = compare_metric or ("auc" if task == "classification" else "mae")
        result.comparison = bootstrap_compare(
            truth, champion_score, score, metric=metric, confidence=confidence, seed=seed
        ).to_dict()
    return result
