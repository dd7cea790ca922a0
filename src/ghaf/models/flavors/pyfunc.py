"""Generic Python models: code by reference ("module:function") plus a scanned data payload.

The payload is pickled data (dicts, lists, NumPy arrays); at load it is scanned and
unpickled with an allow-list, so it cannot name code. The code comes from the
entry point, which must be importable where the model is loaded.
"""

from __future__ import annotations

import importlib
import pickle  # nosec B403
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ghaf.errors import InvalidInputError, UserCodeError
from ghaf.models.base import LoadedModel, ModelMeta
from ghaf.models.safe_pickle import restricted_load

name = "pyfunc"
FILE = "payload.pkl"
_ENTRY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def resolve_entry_point(ref: str) -> Callable[..., Any]:
    """Import ``module:attr`` and return the callable."""
    if not _ENTRY.match(ref):
        raise InvalidInputError(
            f"entry point {ref!r} is not 'module:function'",
            hint="e.g. entry_point='my_package.models:build'",
        )
    module_name, _, attr = ref.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(
            f"entry point {ref!r} cannot be imported: {exc}",
            hint="install the package that defines it where the model is loaded",
        ) from exc
    if not callable(target):
        raise InvalidInputError(f"entry point {ref!r} is not callable", hint="point at a function")
    return target  # type: ignore[no-any-return]


def save(payload: Any, directory: Path, *, entry_point: str | None = None, **options: Any) -> None:
    """Write ``payload`` (plain data) and the ``entry_point`` that turns it into a model.

    ``entry_point(payload)`` must return an object with ``predict`` (and optionally
    ``predict_proba``).
    """
    if entry_point is None:
        raise InvalidInputError(
            "a pyfunc model needs entry_point='module:function'",
            hint="the function receives the payload and returns an object with predict",
        )
    resolve_entry_point(entry_point)
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / FILE).open("wb") as handle:
        pickle.dump(payload, handle, protocol=5)
    ModelMeta(name, [FILE], {"entry_point": entry_point, **options}).write(directory)


def load(directory: Path) -> LoadedModel:
    meta = ModelMeta.read(directory)
    payload = restricted_load(directory / FILE)
    build = resolve_entry_point(str(meta.options["entry_point"]))
    try:
        model = build(payload)
    except Exception as exc:
        raise UserCodeError(
            f"pyfunc entry point {meta.options['entry_point']} raised {type(exc).__name__}: {exc}",
            hint="fix the model code",
        ) from exc
    if not hasattr(model, "predict"):
        raise InvalidInputError(
            f"{meta.options['entry_point']} returned an object without predict",
            hint="return an object with predict(data)",
        )
    return LoadedModel(name, model)
