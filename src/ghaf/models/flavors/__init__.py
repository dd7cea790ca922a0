"""Model flavors: each module saves one kind of model in safe files and loads it back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.backends import backend_names, flavor_module
from ghaf.errors import InvalidInputError
from ghaf.models.base import Flavor, LoadedModel, ModelMeta
from ghaf.models.checks import check_model_dir
from ghaf.models.custom_code import CodePolicy


def get_flavor(name: str) -> Flavor:
    """The module implementing flavor ``name`` (from the one table in ``ghaf.backends``)."""
    module: Flavor = flavor_module(name)
    return module


def infer_flavor(model: Any) -> str:
    """Guess the flavor from the model's type."""
    module = type(model).__module__.split(".")[0]
    if module == "lightgbm":
        return "lightgbm"
    if module == "xgboost":
        return "xgboost"
    if module == "onnx" or isinstance(model, bytes):
        return "onnx"
    if module == "torch" or hasattr(model, "state_dict"):
        return "pytorch"
    if module == "sklearn" or hasattr(model, "fit"):
        return "skops"
    raise InvalidInputError(
        f"cannot tell the flavor of a {type(model).__qualname__}",
        hint=f"pass flavor= one of {', '.join(backend_names('flavors'))}",
    )


def save_model(model: Any, directory: Path, *, flavor: str | None = None, **options: Any) -> str:
    """Save ``model`` into ``directory`` with ``flavor`` (inferred when None); returns it."""
    chosen = flavor or infer_flavor(model)
    get_flavor(chosen).save(model, directory, **options)
    return chosen


def load_model_dir(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    """Load the model in ``directory`` with the flavor its ``ghaf-model.json`` names.

    The directory is inspected first (:func:`ghaf.models.checks.check_model_dir`): links,
    metadata naming code, a file whose content is not its flavor's format, and custom
    code that ``code_policy`` (the model's project's) does not allow are refused before
    anything is read.

    Raises:
        PolicyViolationError: naming the file and what was refused.
    """
    ModelMeta.read(directory)
    inspection = check_model_dir(directory, code_policy=code_policy)
    loaded: LoadedModel = get_flavor(str(inspection.flavor)).load(
        directory, code_policy=code_policy
    )
    return loaded


__all__ = ["get_flavor", "infer_flavor", "load_model_dir", "save_model"]
