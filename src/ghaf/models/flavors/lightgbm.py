"""LightGBM models in LightGBM's native text format (boosters and scikit-learn wrappers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import MissingDependencyError
from ghaf.models.base import LoadedModel, ModelMeta, to_frame
from ghaf.models.custom_code import CodePolicy
from ghaf.models.formats import check_format

name = "lightgbm"
FILE = "model.lgb.txt"
FORMATS = {FILE: "lightgbm"}
"""The file the loader reads and the format its content must be."""


def _lgb() -> Any:
    try:
        import lightgbm
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("lightgbm", "ml") from exc
    return lightgbm


def save(model: Any, directory: Path, **options: Any) -> None:
    """Write a ``Booster`` or a fitted ``LGBMModel`` as LightGBM's text model file."""
    directory.mkdir(parents=True, exist_ok=True)
    booster = model.booster_ if hasattr(model, "booster_") else model
    booster.save_model(str(directory / FILE))
    opts: dict[str, Any] = dict(options)
    if hasattr(model, "classes_"):
        opts["classes"] = np.asarray(model.classes_).tolist()
    opts["objective"] = str(booster.params.get("objective", ""))
    ModelMeta(name, [FILE], opts).write(directory)


class LightGBMModel(LoadedModel):
    """A LightGBM booster; classifiers get ``predict_proba`` and label ``predict``."""

    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        super().__init__(name, booster)
        self.classes = None if classes is None else np.asarray(classes)

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        raw = np.asarray(self.raw.predict(to_frame(data)))
        return np.column_stack([1.0 - raw, raw]) if raw.ndim == 1 else raw

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        if self.classes is None:
            return np.asarray(self.raw.predict(to_frame(data)))
        return np.asarray(self.classes[np.argmax(self.predict_proba(data), axis=1)])


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    check_format(directory / FILE, FORMATS[FILE])  # by content: a renamed pickle is refused
    meta = ModelMeta.read(directory)
    booster = _lgb().Booster(model_file=str(directory / FILE))
    return LightGBMModel(booster, meta.options.get("classes"))
