"""Shared code of the tabular runtimes: signature inference and warm-up."""

from __future__ import annotations

from typing import Any

import numpy as np

from ghaf.serving.base import Array, Signature, TensorSpec


def tabular_signature(
    given: Signature | None, n_features: int, n_outputs: int, output: str, dtype: str = "FP32"
) -> Signature:
    """The given signature, or one inferred from the model's feature and output counts."""
    if given is not None and given.inputs:
        if given.outputs:
            return given
        outputs = (TensorSpec(output, "FP64", (-1, n_outputs)),)
        return Signature(given.inputs, outputs, given.columns)
    columns = [f"f{i}" for i in range(n_features)]
    outputs = (TensorSpec(output, "FP64", (-1, n_outputs)),)
    return Signature.tabular(columns, datatype=dtype, outputs=outputs)


def warm(runtime: Any) -> None:
    """Score one and a few rows of zeros so lazy initialization happens at load."""
    n_features = runtime.signature.n_features
    for rows in (1, 8):
        runtime.predict(np.zeros((rows, n_features), dtype=np.float32))


def column_of(values: Array) -> Array:
    """A 1-D output as a column (rows x 1), so every output's first axis is the rows."""
    return values.reshape(-1, 1) if values.ndim == 1 else values
