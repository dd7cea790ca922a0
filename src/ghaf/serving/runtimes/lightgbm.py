"""LightGBM boosters in their native text format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ghaf.serving.base import Array, Signature, as_matrix
from ghaf.serving.runtimes import find_model_file
from ghaf.serving.runtimes._tabular import column_of, tabular_signature, warm


class LightGBMRuntime:
    """A ``lightgbm.Booster``; binary objectives output [1-p, p] as ``probabilities``."""

    flavor = "lightgbm"

    def __init__(self, booster: Any, signature: Signature | None, threads: int = 1) -> None:
        self.booster = booster
        self._threads = threads
        objective = str(booster.params.get("objective", ""))
        self._binary = objective.startswith(("binary", "cross_entropy"))
        self._multi = objective.startswith(("multiclass", "softmax"))
        n_out = 2 if self._binary else int(booster.num_model_per_iteration())
        name = "probabilities" if (self._binary or self._multi) else "predictions"
        self.signature = tabular_signature(signature, booster.num_feature(), n_out, name)
        self._output = self.signature.outputs[0].name

    @classmethod
    def load(
        cls,
        model_dir: Path,
        signature: Signature | None = None,
        *,
        allowed_files: list[str] | None = None,
        threads: int = 1,
        **_options: Any,
    ) -> LightGBMRuntime:
        import lightgbm

        path = find_model_file(model_dir, (".txt", ".lgb"), allowed_files)
        return cls(lightgbm.Booster(model_file=str(path)), signature, threads)

    def predict(self, batch: Array) -> dict[str, Array]:
        rows = as_matrix(batch, self.signature.n_features, "float64")
        scores = np.asarray(self.booster.predict(rows, num_threads=self._threads))
        if self._binary:
            return {self._output: np.column_stack([1.0 - scores, scores])}
        return {self._output: column_of(scores)}

    def warmup(self) -> None:
        warm(self)
