"""A third-party model flavor for the backend-table tests: plain JSON weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ghaf.models.base import LoadedModel, ModelMeta

name = "toy"
FILE = "toy.json"


def save(model: Any, directory: Path, **options: Any) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / FILE).write_text(json.dumps(model))
    ModelMeta(name, [FILE], dict(options)).write(directory)


def load(directory: Path) -> LoadedModel:
    return LoadedModel(name, json.loads((directory / FILE).read_text()))
