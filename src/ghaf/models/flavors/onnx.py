"""ONNX models, run with ONNX Runtime on CPU."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ghaf.errors import InvalidInputError, MissingDependencyError
from ghaf.models.base import LoadedModel, ModelMeta, to_matrix
from ghaf.models.custom_code import CodePolicy
from ghaf.models.formats import check_format

name = "onnx"
FILE = "model.onnx"
FORMATS = {FILE: "onnx"}
"""The file the loader reads and the format its content must be."""


def save(model: Any, directory: Path, **options: Any) -> None:
    """Write an ``onnx.ModelProto``, serialized bytes, or an existing ``.onnx`` file."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILE
    if isinstance(model, Path | str):
        shutil.copyfile(model, target)
    elif isinstance(model, bytes):
        target.write_bytes(model)
    else:
        target.write_bytes(model.SerializeToString())
    ModelMeta(name, [FILE], dict(options)).write(directory)


class OnnxModel(LoadedModel):
    """An ONNX Runtime session; the first output is the prediction, a second the scores."""

    def __init__(self, session: Any) -> None:
        super().__init__(name, session)
        self._input = session.get_inputs()[0]
        self._outputs = [o.name for o in session.get_outputs()]
        kind = self._input.type
        self._dtype = (
            np.int64 if "int64" in kind else np.float64 if "double" in kind else np.float32
        )

    def _run(self, data: Any) -> list[Any]:
        matrix = to_matrix(data, self._dtype)
        return list(self.raw.run(self._outputs, {self._input.name: matrix}))

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self._run(data)[0])

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        outputs = self._run(data)
        if len(outputs) < 2:
            raise InvalidInputError(
                "this ONNX model has a single output and no probabilities",
                hint="call predict instead",
            )
        scores = outputs[1]
        if isinstance(scores, list):  # a ZipMap output: one {label: p} dict per row
            keys = sorted(scores[0]) if scores else []
            return np.asarray([[row[k] for k in keys] for row in scores], dtype=np.float64)
        return np.asarray(scores)


def load(directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
    check_format(directory / FILE, FORMATS[FILE])  # by content: a renamed pickle is refused
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("onnxruntime", "ml") from exc
    session = onnxruntime.InferenceSession(
        str(directory / FILE), providers=["CPUExecutionProvider"]
    )
    return OnnxModel(session)
