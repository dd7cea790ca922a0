"""XGBoost models in XGBoost's native UBJSON format (boosters and scikit-learn wrappers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.errors import InvalidInputError, MissingDependencyError
from ghaf.models.base import LoadedModel, ModelMeta
from ghaf.models.custom_code import CodePolicy
from ghaf.models.formats import check_format

name = "xgboost"
FILE = "model.ubj"
FORMATS = {FILE: "xgboost"}
"""The file the loader reads and the format its content must be."""
_WRAPPERS = ("XGBClassifier", "XGBRegressor", "XGBRanker")


def _xgb() -> Any:
    try:
        import xgboost
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("xgboost", "ml") from exc
    return xgboost


def save(model: Any, directory: Path, **options: Any) -> None:
    """Write a ``Booster`` or a fitted ``XGBModel`` with ``save_model`` (UBJSON)."""
    directory.mkdir(parents=True, exist_ok=True)
    model.save_model(str(directory / FILE))
    wrapper = type(model).__name__ if type(model).__name__ in _WRAPPERS else None
    ModelMeta(name, [FILE], {"wrapper": wrapper, **options}).write(directory)


class _BoosterModel(LoadedModel):
    def predict(self, data: Any) -> Any:
        xgb = _xgb()
        return self.raw.predict(xgb.DMatrix(data))


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    check_format(directory / FILE, FORMATS[FILE])  # by content: a renamed pickle is refused
    xgb = _xgb()
    meta = ModelMeta.read(directory)
    wrapper = meta.options.get("wrapper")
    if wrapper is None:
        booster = xgb.Booster()
        booster.load_model(str(directory / FILE))
        return _BoosterModel(name, booster)
    if wrapper not in _WRAPPERS:
        raise InvalidInputError(
            f"ghaf-model.json names an unknown XGBoost wrapper {wrapper!r}",
            hint=f"use one of {', '.join(_WRAPPERS)}",
        )
    model = getattr(xgb, wrapper)()
    model.load_model(str(directory / FILE))
    return LoadedModel(name, model)
