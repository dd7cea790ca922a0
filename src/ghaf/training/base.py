"""What a training is asked to do (TrainSpec), the data it gets, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ghaf.errors import InvalidInputError

Framework = Literal["sklearn", "lightgbm", "xgboost", "pytorch"]
FRAMEWORKS: tuple[str, ...] = ("sklearn", "lightgbm", "xgboost", "pytorch")
Task = Literal["classification", "regression"]
DeviceRequest = Literal["auto", "cpu", "cuda"]
DISTRIBUTED_FRAMEWORKS: tuple[str, ...] = ("pytorch", "xgboost")
"""Frameworks that train on several Ray Train workers (``TrainSpec.workers > 1``)."""


@dataclass(frozen=True)
class TrainSpec:
    """One training: framework, task, hyper-parameters, seed and device.

    ``params`` go to the model (sklearn: ``estimator`` names the class, e.g.
    ``logistic_regression`` or ``random_forest``; pytorch: ``hidden``, ``epochs``,
    ``batch_size``, ``lr``). ``device``: ``auto`` takes CUDA when present, ``cuda`` insists.
    """

    framework: Framework
    task: Task = "classification"
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: DeviceRequest = "auto"
    experiment: str = "training"
    name: str | None = None
    log_model: bool = False
    inputs: Sequence[str] = ()
    """Lineage node ids of the data used (e.g. ``dataset:transactions:3``)."""
    workers: int = 1
    """Data-parallel Ray Train workers (:data:`DISTRIBUTED_FRAMEWORKS`); 1 trains here.

    More than one trains on the Ray cluster this process is connected to, else the one
    ``train(..., ray_address=)`` names, else ``settings.ray_address``, else a new local
    loopback-only node (``ghaf.training.ray_train``)."""

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            raise InvalidInputError(
                f"framework {self.framework!r} is not supported",
                hint=f"use one of {', '.join(FRAMEWORKS)}",
            )
        if self.task not in ("classification", "regression"):
            raise InvalidInputError(
                f"task {self.task!r} is not supported", hint="use classification or regression"
            )
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise InvalidInputError(
                f"workers is {self.workers!r}", hint="use a whole number of workers, 1 or more"
            )
        if self.workers > 1 and self.framework not in DISTRIBUTED_FRAMEWORKS:
            raise InvalidInputError(
                f"framework {self.framework!r} does not train on {self.workers} workers",
                hint=f"use workers=1, or framework {' or '.join(DISTRIBUTED_FRAMEWORKS)}",
            )
        if self.device not in ("auto", "cpu", "cuda"):
            raise InvalidInputError(
                f"device {self.device!r} is not supported", hint="use auto, cpu or cuda"
            )


@dataclass(frozen=True)
class TrainData:
    """Features and target as arrays; a validation split is optional (then no metrics)."""

    x: np.ndarray
    y: np.ndarray
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or len(self.x) != len(self.y):
            raise InvalidInputError(
                f"x has shape {self.x.shape} and y {self.y.shape}",
                hint="x is 2-D (rows, features) and y has one value per row",
            )
        if len(self.x) == 0:
            raise InvalidInputError("training data has no rows", hint="pass at least one row")

    @classmethod
    def from_table(
        cls,
        table: Any,
        target: str,
        *,
        features: Sequence[str] | None = None,
        valid_fraction: float = 0.2,
        seed: int = 0,
    ) -> TrainData:
        """Split an Arrow table or pandas frame into shuffled train and validation arrays."""
        frame = table.to_pandas() if hasattr(table, "to_pandas") else table
        if target not in frame.columns:
            raise InvalidInputError(
                f"target column {target!r} is not in the data",
                hint=f"columns are {', '.join(map(str, frame.columns))}",
            )
        names = list(features) if features is not None else [c for c in frame if c != target]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise InvalidInputError(
                f"feature column {missing[0]!r} is not in the data", hint="check the names"
            )
        x = frame[names].to_numpy(dtype=np.float32)
        y = frame[target].to_numpy()
        order = np.random.default_rng(seed).permutation(len(x))
        cut = len(x) - int(len(x) * valid_fraction)
        train, valid = order[:cut], order[cut:]
        return cls(
            x[train],
            y[train],
            x[valid] if len(valid) else None,
            y[valid] if len(valid) else None,
            tuple(names),
        )


@dataclass
class TrainResult:
    """A trained model and everything recorded about its training."""

    model: Any
    run_id: str
    framework: str
    task: str
    device: str
    seed: int
    params: dict[str, Any]
    metrics: dict[str, float]
    cpu_s: float
    wall_s: float
    gpu_s: float
    cost: float
    samples_per_s: float
    model_source: str | None = None
    """``run:<id>/model`` when the model was logged (for ``register_model``)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions (class probabilities of the positive class for binary classifiers)."""
        from ghaf.training.frameworks import predict

        return predict(self.framework, self.task, self.model, x)
