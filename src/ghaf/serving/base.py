"""Serving's interfaces: the ``Runtime`` Protocol, tensor signatures and served-model specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from ghaf.errors import InvalidInputError

Array = npt.NDArray[Any]

# Open Inference Protocol v2 datatypes and their NumPy equivalents.
OIP_TO_NUMPY: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
}
NUMPY_TO_OIP: dict[str, str] = {value: key for key, value in OIP_TO_NUMPY.items()}
_ARROW_TO_OIP: dict[str, str] = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "halffloat": "FP16",
    "float": "FP32",
    "float32": "FP32",
    "double": "FP64",
    "float64": "FP64",
}


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor: OIP datatype and shape (``-1`` = any size, the batch axis first)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """What a model takes and returns.

    A tabular model takes one 2-D tensor ``input`` (rows x ``columns``); ``columns``
    name its features, so the records endpoint can accept objects keyed by column.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    columns: tuple[str, ...] = ()

    @property
    def n_features(self) -> int:
        return self.inputs[0].shape[-1] if self.inputs and len(self.inputs[0].shape) > 1 else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_json() for spec in self.inputs],
            "outputs": [spec.to_json() for spec in self.outputs],
            "columns": list(self.columns),
        }

    @classmethod
    def tabular(
        cls,
        columns: Sequence[str],
        *,
        datatype: str = "FP32",
        outputs: Sequence[TensorSpec] = (),
    ) -> Signature:
        """A model over ``columns`` taking one ``input`` tensor of shape [-1, len(columns)]."""
        spec = TensorSpec("input", datatype, (-1, len(columns)))
        return cls((spec,), tuple(outputs), tuple(columns))

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Signature:
        """Read either this class's JSON or the registry's Arrow-schema JSON.

        The registry form is ``{"inputs": {"fields": [{"name", "type"}...]}, ...}`` or a
        list of ``{"name", "type"}``; each field becomes a column of the ``input`` tensor.
        """
        inputs = body.get("inputs", ())
        fields = inputs.get("fields", ()) if isinstance(inputs, Mapping) else inputs
        if fields and "datatype" in fields[0]:
            specs = tuple(_spec(item) for item in fields)
            outs = tuple(_spec(item) for item in body.get("outputs", ()) or ())
            return cls(specs, outs, tuple(body.get("columns", ()) or ()))
        columns = [str(item["name"]) for item in fields]
        kinds = {_ARROW_TO_OIP.get(str(item.get("type", "double")), "FP64") for item in fields}
        datatype = "FP32" if kinds == {"FP32"} else "FP64"
        return cls.tabular(columns, datatype=datatype)


def _spec(item: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(
        str(item["name"]), str(item["datatype"]), tuple(int(d) for d in item["shape"])
    )


class Runtime(Protocol):
    """A loaded model that scores batches.

    ``predict`` is called from a worker thread with a 2-D array (rows x features) and
    returns named output arrays whose first axis is the rows. It must be thread-safe
    only for one caller at a time: the batcher never calls it concurrently.
    """

    flavor: str
    signature: Signature

    def predict(self, batch: Array) -> dict[str, Array]: ...

    def warmup(self) -> None:
        """Run once on a dummy batch so the first request pays no lazy initialization."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """A model to serve: where its files are, what it is and which project owns it.

    ``project`` is the registry's (requests are authorized there); ``None`` for a model
    directory given on the command line, which belongs to the home's default project.
    """

    name: str
    version: str
    flavor: str
    path: Path
    signature: Signature | None = None
    options: dict[str, Any] = field(default_factory=dict)
    project: str | None = None


def as_matrix(batch: Array, n_features: int, dtype: str = "float32") -> Array:
    """A C-contiguous 2-D array of ``dtype`` with ``n_features`` columns, or a clear error."""
    array = np.asarray(batch)
    if array.ndim == 1 and n_features:
        array = array.reshape(-1, n_features)
    if array.ndim != 2 or (n_features and array.shape[1] != n_features):
        raise InvalidInputError(
            f"input has shape {list(array.shape)}; expected [rows, {n_features}]",
            hint="send one row per model input row with every feature",
        )
    return np.ascontiguousarray(array, dtype=dtype)
