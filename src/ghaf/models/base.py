"""Model flavors: the ``Flavor`` Protocol, the loaded-model wrapper and input conversion."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pyarrow as pa

from ghaf.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ghaf.models.custom_code import CodePolicy

MODEL_FILE = "ghaf-model.json"
"""Written by every flavor's ``save``: which flavor, which files, and flavor options."""


class Flavor(Protocol):
    """A way to store one kind of model in safe, native files and load it back.

    A loader takes data only: nothing in ``ghaf-model.json`` names code to import. Code a
    model needs of its own is a file inside its directory, run only under the project's
    code policy (:mod:`ghaf.models.custom_code`).
    """

    name: str
    FILE: str
    """The model file ``save`` writes (a single-file model registers under this name)."""
    FORMATS: dict[str, str]
    """Each file the loader reads -> the format its content must be (``ghaf.models.formats``)."""

    def save(self, model: Any, directory: Path, **options: Any) -> None:
        """Write ``model`` into ``directory`` (created), including ``ghaf-model.json``."""
        ...

    def load(self, directory: Path, *, code_policy: CodePolicy | None = None) -> LoadedModel:
        """Load the model saved in ``directory``; refuse unsafe content.

        ``code_policy``: what custom code the model's project allows (None: none).
        """
        ...


@dataclass
class ModelMeta:
    """The contents of ``ghaf-model.json``."""

    flavor: str
    files: list[str]
    options: dict[str, Any] = field(default_factory=dict)

    def write(self, directory: Path) -> None:
        body = {"flavor": self.flavor, "files": self.files, "options": self.options}
        (directory / MODEL_FILE).write_text(json.dumps(body, indent=2, sort_keys=True))

    @classmethod
    def read(cls, directory: Path) -> ModelMeta:
        path = directory / MODEL_FILE
        if not path.is_file():
            raise NotFoundError(
                f"{path} does not exist: {directory} is not a Ghaf model directory",
                hint="save the model with ghaf.models.save_model or run.log_model first",
            )
        try:
            body = json.loads(path.read_text())
            return cls(str(body["flavor"]), list(body["files"]), dict(body.get("options", {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"{path} is not valid model metadata: {exc}",
                hint="re-save the model with ghaf.models.save_model",
            ) from exc


def to_frame(data: Any) -> Any:
    """Arrow tables and record batches become pandas (feature names kept); others unchanged."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data.to_pandas()
    return data


def to_matrix(data: Any, dtype: Any = np.float32) -> np.ndarray[Any, Any]:
    """Any tabular input as a 2-D NumPy array of ``dtype``."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        columns = [np.asarray(col.to_numpy(zero_copy_only=False)) for col in data.columns]
        return np.column_stack(columns).astype(dtype, copy=False)
    if hasattr(data, "to_numpy"):
        return np.asarray(data.to_numpy(), dtype=dtype)
    array = np.asarray(data, dtype=dtype)
    return array.reshape(1, -1) if array.ndim == 1 else array


class LoadedModel:
    """A loaded model of any flavor: ``predict`` and ``predict_proba`` on Arrow/pandas/NumPy.

    ``raw`` is the native object (estimator, booster, ONNX session, ``nn.Module``...).
    """

    def __init__(self, flavor: str, raw: Any) -> None:
        self.flavor = flavor
        self.raw = raw

    def predict(self, data: Any) -> np.ndarray[Any, Any]:
        return np.asarray(self.raw.predict(to_frame(data)))

    def predict_proba(self, data: Any) -> np.ndarray[Any, Any]:
        if not hasattr(self.raw, "predict_proba"):
            raise InvalidInputError(
                f"this {self.flavor} model has no predict_proba", hint="call predict instead"
            )
        return np.asarray(self.raw.predict_proba(to_frame(data)))

    def __repr__(self) -> str:
        return f"LoadedModel(flavor={self.flavor!r}, raw={type(self.raw).__name__})"


def schema_to_json(schema: pa.Schema) -> dict[str, Any]:
    """An Arrow schema as JSON: readable fields plus the exact IPC form."""
    return {
        "fields": [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema],
        "ipc": base64.b64encode(schema.serialize().to_pybytes()).decode(),
    }


def schema_from_json(body: dict[str, Any]) -> pa.Schema:
    """The Arrow schema stored by :func:`schema_to_json`."""
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(body["ipc"])))


def infer_schema(data: Any, prefix: str = "f") -> pa.Schema:
    """The Arrow schema of an example input or output (Arrow, pandas or NumPy)."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        return data.schema
    if hasattr(data, "dtypes") and hasattr(data, "columns"):
        return pa.Schema.from_pandas(data, preserve_index=False)
    array = np.asarray(data)
    if array.ndim <= 1:
        return pa.schema([pa.field(prefix, pa.from_numpy_dtype(array.dtype))])
    kind = pa.from_numpy_dtype(array.dtype)
    return pa.schema([pa.field(f"{prefix}{i}", kind) for i in range(array.shape[1])])
