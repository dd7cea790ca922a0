"""Finding a pipeline by ``module:attribute`` (a ``Pipeline`` or a function returning one)."""

from __future__ import annotations

import importlib
import json
from typing import Any

from ghaf.errors import InvalidInputError, NotFoundError
from ghaf.pipelines.pipeline import Pipeline
from ghaf.pipelines.step import Step


def load_pipeline(target: str) -> Pipeline:
    """Import ``module:attribute`` and return the pipeline it names.

    Raises:
        InvalidInputError: the target is not ``module:attribute`` or not a pipeline.
        NotFoundError: the module or attribute does not exist.
    """
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(
            f"pipeline {target!r} is not MODULE:ATTRIBUTE",
            hint="e.g. ghaf.pipelines.examples:numbers",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise NotFoundError(
            f"module {module_name!r} of pipeline {target!r} cannot be imported: {exc}",
            hint="check the module path and that it is on PYTHONPATH",
        ) from exc
    value: Any = getattr(module, attribute, None)
    if value is None:
        raise NotFoundError(f"{module_name} has no attribute {attribute!r}")
    if callable(value) and not isinstance(value, Pipeline | Step):
        try:
            value = value()
        except TypeError as exc:
            raise InvalidInputError(
                f"{target} could not be called without arguments: {exc}",
                hint="point at a Pipeline or a function without required arguments",
            ) from exc
    if not isinstance(value, Pipeline):
        raise InvalidInputError(
            f"{target} is a {type(value).__name__}, not a Pipeline",
            hint="point at a Pipeline or a function that returns one",
        )
    return value


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["rows=10", "name=x"]`` -> ``{"rows": 10, "name": "x"}`` (JSON values where they parse)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"parameter {pair!r} is not KEY=VALUE", hint="--param rows=10")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params
