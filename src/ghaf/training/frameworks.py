"""Fitting and predicting per framework: scikit-learn, LightGBM, XGBoost, PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ghaf.errors import InvalidInputError
from ghaf.training.base import TrainData

EpochLogger = Callable[[int, float], None]
"""Called with (epoch, mean training loss) by iterative trainers."""

_SKLEARN: dict[str, tuple[str, str, str]] = {
    # name: (module, classifier, regressor)
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", "Ridge"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier", "RandomForestRegressor"),
    "gradient_boosting": (
        "sklearn.ensemble",
        "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor",
    ),
}


def _sklearn(task: str, params: Mapping[str, Any], seed: int) -> Any:
    import importlib

    options = dict(params)
    name = str(options.pop("estimator", "logistic_regression"))
    if name not in _SKLEARN:
        raise InvalidInputError(
            f"sklearn estimator {name!r} is not supported",
            hint=f"use one of {', '.join(_SKLEARN)}",
        )
    module, classifier, regressor = _SKLEARN[name]
    cls = getattr(
        importlib.import_module(module), classifier if task == "classification" else regressor
    )
    if "random_state" in cls().get_params():
        options.setdefault("random_state", seed)
    return cls(**options)


def fit(
    framework: str,
    task: str,
    params: Mapping[str, Any],
    data: TrainData,
    seed: int,
    device: str,
    on_epoch: EpochLogger,
) -> Any:
    """Train one model; returns it (PyTorch: the module, in eval mode, on the CPU)."""
    if framework == "sklearn":
        model = _sklearn(task, params, seed)
        model.fit(data.x, data.y)
        return model
    if framework == "lightgbm":
        import lightgbm

        options: dict[str, Any] = {
            "verbose": -1,
            "deterministic": True,
            "force_row_wise": True,
            "n_jobs": 1,
            **params,
            "random_state": seed,
        }
        cls = lightgbm.LGBMClassifier if task == "classification" else lightgbm.LGBMRegressor
        return cls(**options).fit(data.x, data.y)
    if framework == "xgboost":
        import xgboost

        options = {"tree_method": "hist", "n_jobs": 1, **params, "random_state": seed}
        options["device"] = device
        xcls = xgboost.XGBClassifier if task == "classification" else xgboost.XGBRegressor
        return xcls(**options).fit(data.x, data.y)
    if framework == "pytorch":
        from ghaf.training.torch_loop import fit_mlp

        return fit_mlp(task, params, data, seed, device, on_epoch)
    raise InvalidInputError(f"framework {framework!r} is not supported")  # pragma: no cover


def predict(framework: str, task: str, model: Any, x: np.ndarray) -> np.ndarray:
    """Positive-class probability (binary), class probabilities (multi-class) or values."""
    if framework == "pytorch":
        from ghaf.training.torch_loop import predict_mlp

        return predict_mlp(task, model, x)
    if task == "classification":
        proba = np.asarray(model.predict_proba(x))
        return proba[:, 1] if proba.shape[1] == 2 else proba
    return np.asarray(model.predict(x), dtype=np.float64)


def evaluate(task: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Validation metrics: AUC, log loss and accuracy (binary); RMSE, MAE and R² (regression)."""
    from sklearn import metrics

    if task == "classification":
        if predicted.ndim == 1:
            out = {
                "valid_accuracy": float(metrics.accuracy_score(y, predicted >= 0.5)),
                "valid_log_loss": float(metrics.log_loss(y, np.clip(predicted, 1e-7, 1 - 1e-7))),
            }
            if len(np.unique(y)) == 2:
                out["valid_auc"] = float(metrics.roc_auc_score(y, predicted))
            return out
        return {"valid_accuracy": float(metrics.accuracy_score(y, predicted.argmax(axis=1)))}
    return {
        "valid_rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
        "valid_mae": float(metrics.mean_absolute_error(y, predicted)),
        "valid_r2": float(metrics.r2_score(y, predicted)),
    }
