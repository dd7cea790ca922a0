"""scikit-learn models in skops format: no pickle, types checked against an allow-list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.errors import MissingDependencyError, PolicyViolationError
from ghaf.models.base import LoadedModel, ModelMeta
from ghaf.models.custom_code import CodePolicy
from ghaf.models.formats import check_format

name = "skops"
FILE = "model.skops"
FORMATS = {FILE: "skops"}
"""The file the loader reads and the format its content must be."""
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "lightgbm.", "xgboost.", "builtins.")
"""Types a skops file may contain without review: estimators and their array state."""


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:  # pragma: no cover - skops is in the ml extra
        raise MissingDependencyError("skops", "ml") from exc
    return sio


def save(model: Any, directory: Path, **options: Any) -> None:
    """Write a fitted scikit-learn estimator (or pipeline) as ``model.skops``."""
    directory.mkdir(parents=True, exist_ok=True)
    _skops().dump(model, directory / FILE)
    ModelMeta(name, [FILE], {"class": type(model).__qualname__, **options}).write(directory)


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    """Load ``model.skops``, refusing any type outside :data:`TRUSTED_PREFIXES`."""
    check_format(directory / FILE, FORMATS[FILE])  # by content: a renamed pickle is refused
    sio = _skops()
    path = directory / FILE
    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if refused:
        raise PolicyViolationError(
            f"{path} contains types that are not trusted: {', '.join(sorted(refused))}",
            hint="re-save the model with scikit-learn types only, or review and re-register it",
        )
    return LoadedModel(name, sio.load(path, trusted=untrusted))
