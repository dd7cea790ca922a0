"""scikit-learn models in skops format: no pickle, types checked (ghaf.models.skops_files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.models.base import LoadedModel, ModelMeta
from ghaf.models.custom_code import CodePolicy
from ghaf.models.formats import check_format
from ghaf.models.skops_files import load_skops, skops_io

name = "skops"
FILE = "model.skops"
FORMATS = {FILE: "skops"}
"""The file the loader reads and the format its content must be."""


def save(model: Any, directory: Path, **options: Any) -> None:
    """Write a fitted scikit-learn estimator (or pipeline) as ``model.skops``."""
    directory.mkdir(parents=True, exist_ok=True)
    skops_io().dump(model, directory / FILE)
    ModelMeta(name, [FILE], {"class": type(model).__qualname__, **options}).write(directory)


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    """Load ``model.skops``, refusing any type :func:`ghaf.models.skops_files.accepted` refuses."""
    check_format(directory / FILE, FORMATS[FILE])  # by content: a renamed pickle is refused
    return LoadedModel(name, load_skops(directory / FILE))
