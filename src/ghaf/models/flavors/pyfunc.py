"""Generic Python models: a data payload plus the code that builds the model, both inside
the model directory.

The payload is pickled plain data (dicts, lists, NumPy arrays): scanned and unpickled
with a data-only allow-list, so it cannot name code. The code is ``code/<name>.py``,
signed with the directory, defining ``build(payload)``; it is custom code, run only
where the model's project allows it and with its imports guarded
(:mod:`ghaf.models.custom_code`). Nothing in ``ghaf-model.json`` names code to import.
"""

from __future__ import annotations

import pickle  # nosec B403 - writes data; reading goes through the allow-list
from pathlib import Path
from typing import Any

from ghaf.errors import InvalidInputError, PolicyViolationError
from ghaf.models.base import MODEL_FILE, LoadedModel, ModelMeta
from ghaf.models.custom_code import (
    CodePolicy,
    call_build,
    copy_code,
    load_code,
    refuse_code_options,
)
from ghaf.models.formats import check_format
from ghaf.models.safe_pickle import restricted_load

name = "pyfunc"
FILE = "payload.pkl"
FORMATS = {FILE: "data-pickle"}
"""The payload must be a pickle of plain data (no estimator, no code)."""
NEEDS_CODE = True
"""Every pyfunc model runs custom code: its project's code policy decides."""


def save(payload: Any, directory: Path, *, code: Path | str | None = None, **options: Any) -> None:
    """Write ``payload`` (plain data) and copy ``code`` (a ``.py`` file) into ``directory``.

    The code's ``build(payload)`` must return an object with ``predict`` (and optionally
    ``predict_proba``); it may import only what the project's code policy allows.

    Raises:
        InvalidInputError: no code file, an entry point instead of one, or a payload
            that is not plain data.
    """
    refuse_code_options(options)
    if code is None:
        raise InvalidInputError(
            "a pyfunc model needs code=PATH: a .py file defining build(payload)",
            hint="the file is copied into the model directory and signed with it",
        )
    directory.mkdir(parents=True, exist_ok=True)
    relative = copy_code(code, directory)
    with (directory / FILE).open("wb") as handle:
        pickle.dump(payload, handle, protocol=5)
    try:
        check_format(directory / FILE, FORMATS[FILE])
    except PolicyViolationError as exc:
        raise InvalidInputError(
            f"the pyfunc payload is not plain data: {exc.headline}",
            hint="pass dicts, lists, numbers, strings and NumPy arrays; put code in the file",
        ) from exc
    ModelMeta(name, [FILE, relative], {"code": relative, **options}).write(directory)


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    """Run the model's code under ``code_policy`` and build the model from the payload.

    Raises:
        PolicyViolationError: the project does not allow the code or one of its imports,
            or the payload is not plain data.
        UserCodeError: the code raised.
    """
    meta = ModelMeta.read(directory)
    relative = meta.options.get("code")
    if not isinstance(relative, str):
        raise PolicyViolationError(
            f"{MODEL_FILE} of this pyfunc model names no code file inside the directory",
            hint="re-save it with ghaf.models.save_model(payload, dir, flavor='pyfunc', code=PATH)",
        )
    module = load_code(directory, relative, code_policy)
    check_format(directory / FILE, FORMATS[FILE])
    model = call_build(module, relative, restricted_load(directory / FILE))
    if not hasattr(model, "predict"):
        raise InvalidInputError(
            f"{relative}: build returned a {type(model).__name__} without predict",
            hint="return an object with predict(data)",
        )
    return LoadedModel(name, model)
