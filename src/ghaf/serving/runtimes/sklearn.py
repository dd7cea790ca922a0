"""scikit-learn models stored with skops (no pickle): predict_proba or predict on a batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghaf.serving.base import Array, Signature, as_matrix
from ghaf.serving.runtimes import find_model_file
from ghaf.serving.runtimes._tabular import column_of, tabular_signature, warm


class SklearnRuntime:
    """A scikit-learn estimator; classifiers return ``probabilities``, others ``predictions``."""

    flavor = "skops"

    def __init__(self, model: Any, signature: Signature | None) -> None:
        self.model = model
        self._proba = hasattr(model, "predict_proba")
        n_features = int(getattr(model, "n_features_in_", 0))
        n_out = len(getattr(model, "classes_", [0])) if self._proba else 1
        name = "probabilities" if self._proba else "predictions"
        self.signature = tabular_signature(signature, n_features, n_out, name)
        self._output = self.signature.outputs[0].name
        self._dtype = "float64" if self.signature.inputs[0].datatype == "FP64" else "float32"

    @classmethod
    def load(
        cls,
        model_dir: Path,
        signature: Signature | None = None,
        *,
        allowed_files: list[str] | None = None,
        **_options: Any,
    ) -> SklearnRuntime:
        from ghaf.models.skops_files import load_skops  # types checked (no function, no eval)

        path = find_model_file(model_dir, (".skops",), allowed_files)
        return cls(load_skops(path), signature)

    def predict(self, batch: Array) -> dict[str, Array]:
        rows = as_matrix(batch, self.signature.n_features, self._dtype)
        if self._proba:
            return {self._output: self.model.predict_proba(rows)}
        return {self._output: column_of(self.model.predict(rows))}

    def warmup(self) -> None:
        warm(self)
